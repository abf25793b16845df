"""The plugin's pages: categories for admins (``/categories``), an agent changing a
customer's category (``POST /categories/customers/<id>``) and the report
``/reports/categories``."""

from __future__ import annotations

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
from sqlalchemy import select

from helpdesk import (
    Agent,
    Conflict,
    Customer,
    Team,
    ValidationError,
    admin_required,
    db,
    login_required,
    report_period,
)
from plugins.categories import report, service
from plugins.categories.models import COLORS, PRIORITY_BUMPS, Category

bp = Blueprint("categories", __name__, template_folder="templates")
MAX_ID = 2**31 - 1
CATEGORY_URL = f"/categories/<int(max={MAX_ID}):category_id>"
CURRENCY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _category(category_id: int) -> Category:
    category = db.session.get(Category, category_id)
    if category is None:
        abort(404)
    return category


def _admin_page(status: int = 200, **context):
    """The categories page, with a form's errors and input kept when given."""
    teams = db.session.scalars(select(Team).order_by(Team.name)).all()
    agents = db.session.scalars(select(Agent).where(Agent.active).order_by(Agent.name)).all()
    page = render_template(
        "categories/admin.html",
        categories=service.list_categories(),
        usage=service.usage_counts(),
        teams=teams,
        agents=agents,
        colors=COLORS,
        bumps=PRIORITY_BUMPS,
        default_name=current_app.config["CATEGORIES_DEFAULT"],
        errors=context.pop("errors", {}),
        **context,
    )
    return page, status


@bp.get("/categories")
@admin_required
def index():
    """Every category with its rules, a form per category and one for a new one."""
    return _admin_page()


@bp.post("/categories")
@admin_required
def create():
    """Add a category."""
    try:
        service.create_category(request.form.to_dict())
    except ValidationError as exc:
        return _admin_page(422, errors=exc.errors, new=request.form.to_dict())
    flash(_("Category added."), "success")
    return redirect(url_for(".index"))


@bp.post(CATEGORY_URL)
@admin_required
def update(category_id: int):
    """Change a category's name, colour, rules or retired state."""
    category = _category(category_id)
    data = request.form.to_dict()
    data.setdefault("prepayment_required", "")
    data.setdefault("retired", "")
    try:
        service.update_category(category, data)
    except ValidationError as exc:
        db.session.rollback()
        return _admin_page(422, errors=exc.errors, edit_id=category_id, edit=data)
    flash(_("Category saved."), "success")
    return redirect(url_for(".index"))


@bp.post(CATEGORY_URL + "/move")
@admin_required
def move(category_id: int):
    """Move a category one place up or down."""
    service.move_category(_category(category_id), -1 if request.form.get("to") == "up" else 1)
    return redirect(url_for(".index"))


@bp.post(CATEGORY_URL + "/delete")
@admin_required
def delete(category_id: int):
    """Delete a category nobody is in, or move its customers to another one first."""
    category = _category(category_id)
    target = request.form.get("reassign_to", "")
    try:
        reassign = service.choosable(target, "reassign_to") if target else None
        service.delete_category(category, reassign_to=reassign, agent=current_user)
    except (ValidationError, Conflict) as exc:
        db.session.rollback()
        message = exc.message if isinstance(exc, Conflict) else "; ".join(exc.errors.values())
        return _admin_page(409 if isinstance(exc, Conflict) else 422, delete_error=message)
    flash(_("Category deleted."), "success")
    return redirect(url_for(".index"))


@bp.post(f"/categories/customers/<int(max={MAX_ID}):customer_id>")
@login_required
def change_customer(customer_id: int):
    """An agent puts a customer in another category, saying why."""
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        abort(404)
    try:
        category = service.choosable(request.form.get("category"))
        service.set_customer_category(
            customer, category, agent=current_user, reason=request.form.get("reason", "")
        )
    except ValidationError as exc:
        db.session.rollback()
        flash(_("Category not changed: %(e)s", e="; ".join(exc.errors.values())), "error")
        return redirect(url_for("customers.show", customer_id=customer_id)), 303
    flash(_("Category changed."), "success")
    return redirect(url_for("customers.show", customer_id=customer_id))


@bp.get("/reports/categories")
@login_required
def report_page():
    """Which category pays? The table (sortable), a bar chart and a CSV export."""
    start, end, errors = report_period()
    currency = (
        request.args.get("currency", "").strip().upper() or current_app.config["DEFAULT_CURRENCY"]
    )
    if len(currency) != 3 or not set(currency) <= CURRENCY_CHARS:
        errors["currency"] = _("must be a 3-letter currency code")
        currency = current_app.config["DEFAULT_CURRENCY"]
    sort = request.args.get("sort", "revenue")
    sort = sort if sort in report.SORT_KEYS else "revenue"
    descending = request.args.get("dir", "desc") != "asc"
    default = service.default_category()
    rows, total = report.category_report(start, end, currency, default.id if default else None)
    rows = report.sort_rows(rows, sort, descending)
    if request.args.get("format") == "csv" and not errors:
        name = f"categories-{start.isoformat()}-{end.isoformat()}-{currency}.csv"
        return Response(
            report.to_csv(rows, currency),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    args = {"from": start.isoformat(), "to": end.isoformat(), "currency": currency}
    return render_template(
        "categories/report.html",
        rows=rows,
        total=total,
        bars=report.chart_bars(rows),
        args=args,
        sort=sort,
        descending=descending,
        sort_keys=report.SORT_KEYS,
        errors=errors,
    ), (422 if errors else 200)
