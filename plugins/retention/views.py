"""The plugin's pages: the dashboard (``/retention``, with its CSV), "My clients"
(``/retention/mine``), and the forms of the customer page (loss reason, account manager) and of
a call task (its outcome)."""

from __future__ import annotations

from datetime import date

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from helpdesk import (
    Customer,
    Ticket,
    ValidationError,
    customer_groupings,
    db,
    login_required,
    utcnow,
)
from plugins.retention import report, segments, service
from plugins.retention.compute import figures_of
from plugins.retention.models import AccountManager, CallTask

bp = Blueprint("retention", __name__, template_folder="templates")
MAX_ID = 2**31 - 1
CUSTOMER_URL = f"/retention/customers/<int(max={MAX_ID}):customer_id>"
OPEN_STATUSES = ("new", "open", "pending")


def _customer(customer_id: int) -> Customer:
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        abort(404)
    return customer


def _as_of() -> tuple[date, str | None]:
    """The page's reference date, and the error when ``as_of`` is not one (today then)."""
    try:
        return service.parse_as_of(request.args.get("as_of")), None
    except ValidationError as exc:
        return utcnow().date(), exc.errors["as_of"]


@bp.get("/retention")
@login_required
def dashboard():
    """Who we lost in the last 12 months and what it cost, why, who came back, and who is
    drying up (sortable, CSV); every figure defined on the page."""
    as_of, error = _as_of()
    sort = request.args.get("sort", "aov_change")
    sort = sort if sort in report.SORT_KEYS else "aov_change"
    descending = request.args.get("dir", "asc") == "desc"
    csv_wanted = request.args.get("format") == "csv" and error is None
    limit = None if csv_wanted else current_app.config["RETENTION_DASHBOARD_ROWS"]
    drying, drying_total = report.drying_rows(as_of, sort, descending, limit)
    scores = service.last_scores([row.customer for row in drying]) if drying else None
    for row in drying if scores is not None else ():
        row.last_score = scores.get(row.customer.id)
    if csv_wanted:
        return Response(
            report.to_csv(drying, as_of, with_scores=scores is not None),
            mimetype="text/csv",
            headers={
                "Content-Disposition": f'attachment; filename="drying-up-{as_of.isoformat()}.csv"'
            },
        )
    lost = service.lost_totals(as_of)
    return render_template(
        "retention/dashboard.html",
        as_of=as_of,
        error=error,
        summary=service.summary(as_of, lost, drying_total),
        bars=report.month_bars(service.monthly_lost(as_of, lost.by_day)),
        drying=drying,
        drying_total=drying_total,
        with_scores=scores is not None,
        changes_text=report.changes_text,
        sort=sort,
        descending=descending,
        sort_keys=report.SORT_KEYS,
        rules=service.rules(),
    ), (400 if error else 200)


@bp.get("/retention/segments")
@login_required
def segments_page():
    """Per client category and month: clients, purchases, revenue and AOV, complaints, lost."""
    as_of, error = _as_of()
    grouping = customer_groupings().get("category")
    found = segments.segments(as_of, grouping, service.lost_in_period(as_of))
    return render_template(
        "retention/segments.html",
        as_of=as_of,
        error=error,
        segments=found,
        grouping=grouping.label if grouping is not None else "",
        money=service.money,
    ), (400 if error else 200)


@bp.get("/retention/mine")
@login_required
def mine():
    """My clients: each client I manage with status, last order, AOV trend, open tickets,
    and the calls I have to make."""
    as_of = utcnow().date()
    ids = list(
        db.session.scalars(
            select(AccountManager.customer_id).where(AccountManager.agent_id == current_user.id)
        )
    )
    customers = (
        {c.id: c for c in db.session.scalars(select(Customer).where(Customer.id.in_(ids)))}
        if ids
        else {}
    )
    figures = figures_of(ids, as_of, service.rules()) if ids else {}
    open_tickets = (
        dict(
            db.session.execute(
                select(Ticket.customer_id, func.count())
                .where(Ticket.customer_id.in_(ids), Ticket.status.in_(OPEN_STATUSES))
                .group_by(Ticket.customer_id)
            ).all()
        )
        if ids
        else {}
    )
    tasks = service.open_tasks_for(current_user)
    task_customers = {
        c.id: c
        for c in db.session.scalars(
            select(Customer).where(Customer.id.in_({t.customer_id for t in tasks}))
        )
    }
    scores = service.last_scores(list(customers.values())) if customers else None
    rows = [
        (customers[cid], figures[cid], open_tickets.get(cid, 0), (scores or {}).get(cid))
        for cid in sorted(customers, key=lambda i: customers[i].display_name.casefold())
    ]
    return render_template(
        "retention/mine.html",
        rows=rows,
        with_scores=scores is not None,
        tasks=tasks,
        task_customers=task_customers,
        reasons=service.reasons(),
        trend=report.trend_points,
        percent=service.percent,
        money=service.money,
        as_of=as_of,
    )


@bp.post(f"{CUSTOMER_URL}/loss-reason")
@login_required
def set_reason(customer_id: int):
    """Record why the client left, from the customer page."""
    customer = _customer(customer_id)
    try:
        service.record_loss_reason(
            customer, request.form.get("reason"), request.form.get("note", ""), current_user
        )
    except ValidationError as exc:
        db.session.rollback()
        flash(_("Reason not recorded: %(e)s", e="; ".join(exc.errors.values())), "error")
        return redirect(url_for("customers.show", customer_id=customer_id)), 303
    flash(_("Reason recorded."), "success")
    return redirect(url_for("customers.show", customer_id=customer_id))


@bp.post(f"{CUSTOMER_URL}/manager")
@login_required
def set_manager(customer_id: int):
    """Set or remove the client's account manager, from the customer page."""
    customer = _customer(customer_id)
    try:
        agent = service.agent_by_email(request.form.get("agent", ""))
        service.set_account_manager(customer, agent)
    except ValidationError as exc:
        db.session.rollback()
        flash(_("Manager not changed: %(e)s", e="; ".join(exc.errors.values())), "error")
        return redirect(url_for("customers.show", customer_id=customer_id)), 303
    flash(_("Account manager changed."), "success")
    return redirect(url_for("customers.show", customer_id=customer_id))


@bp.post(f"/retention/tasks/<int(max={MAX_ID}):task_id>")
@login_required
def record_call(task_id: int):
    """Record the outcome of a call task."""
    task = db.session.get(CallTask, task_id)
    if task is None:
        abort(404)
    back = request.form.get("back") == "customer"
    target = (
        url_for("customers.show", customer_id=task.customer_id)
        if back
        else url_for("retention.mine")
    )
    try:
        service.record_call(task, request.form, current_user)
    except ValidationError as exc:
        db.session.rollback()
        flash(_("Call not recorded: %(e)s", e="; ".join(exc.errors.values())), "error")
        return redirect(target), 303
    flash(_("Call recorded."), "success")
    return redirect(target)
