"""The agents' browser UI: the queue, search, the ticket page and its actions, phone tickets,
and attachment downloads. Every page needs a logged-in agent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from helpdesk.core import attachments, services
from helpdesk.core.errors import Conflict, ValidationError
from helpdesk.core.models import (
    KINDS,
    OPEN_STATUSES,
    PRIORITIES,
    STATUSES,
    Agent,
    Attachment,
    Customer,
    Message,
    Team,
    Ticket,
    TicketEvent,
    utcnow,
)
from helpdesk.core.queue import MAX_ID, SORTS, QueueFilter, list_tickets
from helpdesk.extensions import db

bp = Blueprint("agent", __name__)

# How many of the customer's other tickets the ticket page lists.
OTHER_TICKETS_SHOWN = 5
# Where a ticket an agent opens came from.
CHANNELS = ("phone", "walk-in")
TRUE_VALUES = ("1", "on", "true", "yes")
_LABELS_KEY = "helpdesk_labels"
# How statuses, priorities, kinds, sort orders, sources and fields read on the pages.
LABELS = {
    "new": _l("New"),
    "open": _l("Open"),
    "pending": _l("Pending"),
    "resolved": _l("Resolved"),
    "closed": _l("Closed"),
    "low": _l("Low"),
    "normal": _l("Normal"),
    "high": _l("High"),
    "urgent": _l("Urgent"),
    "complaint": _l("Complaint"),
    "support": _l("Support request"),
    "activity": _l("Last activity"),
    "due": _l("Due date"),
    "created": _l("Newest first"),
    "web": _l("web form"),
    "email": _l("e-mail"),
    "api": _l("API"),
    "phone": _l("phone call"),
    "walk-in": _l("walk-in"),
    "status": _l("status"),
    "priority": _l("priority"),
    "kind": _l("kind"),
    "assignee": _l("assignee"),
    "team": _l("team"),
    "subject": _l("subject"),
    "body": _l("message"),
    "attachments": _l("attachments"),
    "target": _l("target ticket"),
    "channel": _l("contact"),
    "version": _l("version"),
    "customer.email": _l("customer's e-mail"),
    "customer.name": _l("customer's name"),
    "customer.phone": _l("customer's phone"),
}


def label(value: Any) -> str:
    """The readable (translated) name of a status, priority, kind, sort, source or field
    (translated once per request: a page shows the same few many times)."""
    cache = g.setdefault(_LABELS_KEY, {})
    try:
        return cache[value]
    except KeyError:
        cache[value] = str(LABELS.get(value, value))
        return cache[value]
    except TypeError:  # not a name at all (an event's odd data): shown as it is
        return str(value)


def badge(kind: str, value: str) -> Markup:
    """A status or priority as a badge (class ``<kind>-<value>``)."""
    return Markup('<span class="badge {}-{}">{}</span>').format(kind, value, label(value))


def when(moment: datetime | None) -> Markup:
    """A moment as a ``<time>`` (date and UTC time), or a dash when there is none."""
    if not moment:
        return Markup('<span class="muted">—</span>')
    return Markup('<time datetime="{}"><span>{}</span> <span>{} UTC</span></time>').format(
        moment.strftime("%Y-%m-%dT%H:%M:%SZ"), moment.strftime("%Y-%m-%d"), moment.strftime("%H:%M")
    )


@bp.context_processor
def _template_helpers() -> dict[str, Any]:
    return {"label": label, "badge": badge, "when": when, "queue_url": _queue_url}


def _choices() -> dict[str, Any]:
    """What the filter and edit forms offer: statuses, priorities, kinds, agents, teams."""
    return {
        "statuses": STATUSES,
        "open_statuses": OPEN_STATUSES,
        "priorities": PRIORITIES,
        "kinds": KINDS,
        "sorts": SORTS,
        "agents": list(
            db.session.scalars(select(Agent).where(Agent.active.is_(True)).order_by(Agent.name))
        ),
        "teams": list(db.session.scalars(select(Team).order_by(Team.name))),
    }


def _queue_url(**changes: Any) -> str:
    """The queue URL with the current arguments, ``changes`` applied (``None`` drops one). The
    changed arguments come last, in the order given: a template may build a link once with an
    empty last value and append each row's own."""
    args: dict[str, list[str]] = {key: request.args.getlist(key) for key in request.args}
    args.pop("page", None)
    for key, value in changes.items():
        args.pop(key, None)
        if value is not None:
            args[key] = value if isinstance(value, list) else [str(value)]
    return url_for("agent.queue", **args)


def _queue_filters() -> QueueFilter:
    """The filters of this request; with neither a status nor a search, the open tickets."""
    filters = QueueFilter.from_args(
        request.args, max_search_length=current_app.config["MAX_SEARCH_LENGTH"]
    )
    if "status" not in request.args and not filters.q:
        filters.statuses = list(OPEN_STATUSES)
    return filters


@bp.route("/tickets")
@login_required
def queue():
    """The ticket queue: filters, search, counts per status, one page of tickets."""
    try:
        filters = _queue_filters()
    except ValidationError as exc:
        return render_template(
            "agent/queue.html",
            filters=QueueFilter(statuses=list(OPEN_STATUSES)),
            page=None,
            counts=services.status_counts(),
            customer=None,
            errors=exc.errors,
            now=utcnow(),
            **_choices(),
        ), 422
    customer = None
    if filters.customer_id is not None:
        customer = db.session.get(Customer, filters.customer_id)
        if customer is None:
            abort(404)
    team_ids = None if filters.team_id is None else [filters.team_id]
    return render_template(
        "agent/queue.html",
        filters=filters,
        page=list_tickets(filters, agent=current_user),
        counts=services.status_counts(team_ids),
        customer=customer,
        errors={},
        now=utcnow(),
        **_choices(),
    )


def _parse_id(text: str) -> int | None:
    """``text`` as a row id (ASCII digits, within the database's integer range), or ``None``."""
    text = text.strip()
    if text.isascii() and text.isdigit() and int(text) <= MAX_ID:
        return int(text)
    return None


def _ticket_or_404(ticket_id: int) -> Ticket:
    if ticket_id > MAX_ID:
        abort(404)
    ticket = db.session.scalar(
        select(Ticket)
        .options(joinedload(Ticket.team), joinedload(Ticket.assignee))
        .where(Ticket.id == ticket_id)
    )
    if ticket is None:
        abort(404)
    return ticket


def _render_ticket(ticket: Ticket, status: int = 200, **context: Any):
    """The ticket page: conversation, history, customer card and action forms.

    A fixed number of queries whatever the number of messages, attachments or events.
    """
    messages = db.session.scalars(
        select(Message)
        .where(Message.ticket_id == ticket.id)
        .options(
            joinedload(Message.agent),
            joinedload(Message.customer),
            selectinload(Message.attachments),
        )
        .order_by(Message.id)
    ).all()
    history = db.session.scalars(
        select(TicketEvent)
        .where(TicketEvent.ticket_id == ticket.id)
        .options(joinedload(TicketEvent.agent), joinedload(TicketEvent.customer))
        .order_by(TicketEvent.id)
    ).all()
    other_tickets = db.session.scalars(
        select(Ticket)
        .where(Ticket.customer_id == ticket.customer_id, Ticket.id != ticket.id)
        .order_by(Ticket.last_activity_at.desc(), Ticket.id.desc())
        .limit(OTHER_TICKETS_SHOWN + 1)
    ).all()
    context.setdefault("reply", {})
    context.setdefault("errors", {})
    context.setdefault("failed", None)
    return render_template(
        "agent/ticket.html",
        ticket=ticket,
        messages=messages,
        history=history,
        other_tickets=other_tickets[:OTHER_TICKETS_SHOWN],
        more_tickets=len(other_tickets) > OTHER_TICKETS_SHOWN,
        now=utcnow(),
        **_choices(),
        **context,
    ), status


@bp.route("/tickets/<int:ticket_id>")
@login_required
def ticket(ticket_id: int):
    """One ticket: the whole conversation, the customer, the history, the actions."""
    return _render_ticket(_ticket_or_404(ticket_id))


@bp.route("/tickets/<int:ticket_id>/reply", methods=["POST"])
@login_required
def reply(ticket_id: int):
    """Add a reply to the customer, or an internal note, perhaps changing the status too."""
    ticket = _ticket_or_404(ticket_id)
    form = {
        "body": request.form.get("body", ""),
        "internal": request.form.get("internal", "").lower() in TRUE_VALUES,
        "status": request.form.get("status", ""),
    }
    try:
        uploads = attachments.read_uploads(request.files.getlist("attachments"))
        message = services.add_message(
            ticket,
            body=form["body"],
            author=current_user,
            internal=form["internal"],
            uploads=uploads,
            new_status=form["status"] or None,
            source="web",
        )
    except ValidationError as exc:
        return _render_ticket(
            ticket, exc.status_code, reply=form, errors=exc.errors, failed="reply"
        )
    except Conflict as exc:
        return _render_ticket(ticket, exc.status_code, reply=form, alert=exc.message)
    flash(_("Internal note added.") if message.internal else _("Reply sent."), "info")
    return redirect(url_for("agent.ticket", ticket_id=ticket.id, _anchor=f"message-{message.id}"))


def _submitted_changes(ticket: Ticket) -> dict[str, str]:
    """The fields of the edit form that differ from the ticket as it is now.

    Unchanged fields are left out, so a field the agent did not touch (say, an assignee who
    has since been deactivated) is never sent back as a change.
    """
    current = {
        "status": ticket.status,
        "priority": ticket.priority,
        "kind": ticket.kind,
        "assignee": ticket.assignee.email if ticket.assignee else "",
        "team": str(ticket.team_id) if ticket.team_id else "",
    }
    return {
        field: request.form[field]
        for field in services.TICKET_FIELDS
        if field in request.form and request.form[field] != current[field]
    }


@bp.route("/tickets/<int:ticket_id>/update", methods=["POST"])
@login_required
def update(ticket_id: int):
    """Change status, priority, kind, assignee or team, if nobody changed the ticket meanwhile."""
    ticket = _ticket_or_404(ticket_id)
    version = _parse_id(request.form.get("version", ""))
    if version is None:
        errors = {"version": _("The form is incomplete. Reload the page and try again.")}
        return _render_ticket(ticket, 422, errors=errors, failed="update")
    try:
        changed = services.update_ticket(
            ticket, _submitted_changes(ticket), actor=current_user, expected_version=version
        )
    except ValidationError as exc:
        return _render_ticket(ticket, exc.status_code, errors=exc.errors, failed="update")
    except Conflict as exc:
        db.session.expire_all()
        return _render_ticket(_ticket_or_404(ticket_id), exc.status_code, alert=exc.message)
    if changed:
        names = ", ".join(label(field) for field in changed)
        flash(_("Saved: %(fields)s.", fields=names), "info")
    else:
        flash(_("Nothing changed."), "info")
    return redirect(url_for("agent.ticket", ticket_id=ticket.id))


def _merge_target(raw: str, source: Ticket) -> Ticket:
    """The ticket named by ``raw`` (``123`` or ``#123``), or a ``ValidationError``."""
    number = _parse_id(raw.strip().removeprefix("#"))
    if number is None:
        raise ValidationError({"target": _("Enter a ticket number, such as #123.")})
    target = db.session.get(Ticket, number)
    if target is None:
        raise ValidationError({"target": _("There is no ticket #%(id)s.", id=number)})
    if target.id == source.id:
        raise ValidationError({"target": _("A ticket cannot be merged into itself.")})
    return target


@bp.route("/tickets/<int:ticket_id>/merge", methods=["POST"])
@login_required
def merge(ticket_id: int):
    """Merge this ticket into another: its messages move there and it is closed."""
    source = _ticket_or_404(ticket_id)
    raw = request.form.get("target", "")
    try:
        target = services.merge_tickets(source, _merge_target(raw, source), actor=current_user)
    except ValidationError as exc:
        return _render_ticket(
            source, exc.status_code, errors=exc.errors, merge_target=raw, failed="merge"
        )
    except Conflict as exc:
        return _render_ticket(source, exc.status_code, alert=exc.message, merge_target=raw)
    flash(
        _("Ticket #%(source)s was merged into #%(target)s.", source=source.id, target=target.id),
        "info",
    )
    return redirect(url_for("agent.ticket", ticket_id=target.id))


def _new_ticket_form() -> dict[str, str]:
    """What the new-ticket form holds: the submitted values, or a prefill from ``?customer=``."""
    fields = (
        "customer_email",
        "customer_name",
        "customer_phone",
        "subject",
        "body",
        "kind",
        "priority",
        "team",
        "assignee",
        "channel",
    )
    if request.method == "POST":
        return {field: request.form.get(field, "") for field in fields}
    form = dict.fromkeys(fields, "") | {"kind": "support", "channel": "phone"}
    customer_id = _parse_id(request.args.get("customer", ""))
    customer = db.session.get(Customer, customer_id) if customer_id else None
    if customer is not None:
        form.update(
            customer_email=customer.email,
            customer_name=customer.name,
            customer_phone=customer.phone or "",
        )
    return form


@bp.route("/tickets/new", methods=["GET", "POST"])
@login_required
def new_ticket():
    """Open a ticket for a customer who phoned or walked in; the body is the note of the call."""
    form = _new_ticket_form()
    if request.method == "GET":
        return render_template(
            "agent/new_ticket.html", form=form, errors={}, channels=CHANNELS, **_choices()
        )
    try:
        if form["channel"] not in CHANNELS:
            raise ValidationError({"channel": _("Choose how the customer got in touch.")})
        ticket = services.open_ticket(
            subject=form["subject"],
            body=form["body"],
            kind=form["kind"],
            customer_email=form["customer_email"],
            customer_name=form["customer_name"],
            customer_phone=form["customer_phone"],
            priority=form["priority"] or None,
            team=form["team"] or None,
            assignee=form["assignee"] or None,
            opened_by=current_user,
            source=form["channel"],
            uploads=attachments.read_uploads(request.files.getlist("attachments")),
        )
    except ValidationError as exc:
        db.session.rollback()
        return render_template(
            "agent/new_ticket.html",
            form=form,
            errors=exc.errors,
            channels=CHANNELS,
            **_choices(),
        ), exc.status_code
    flash(_("Ticket %(ref)s opened.", ref=ticket.reference), "info")
    return redirect(url_for("agent.ticket", ticket_id=ticket.id))


@bp.route("/tickets/<int:ticket_id>/attachments/<int:attachment_id>")
@login_required
def attachment(ticket_id: int, attachment_id: int):
    """An attachment of this ticket: images shown inline, everything else as a download."""
    row = db.session.get(Attachment, attachment_id) if attachment_id <= MAX_ID else None
    if row is None or row.ticket_id != ticket_id:
        abort(404)
    path = attachments.storage_path(row.storage_key)
    if not path.is_file():
        abort(404)
    inline = attachments.served_inline(row)
    response = send_file(
        path,
        mimetype=row.content_type if inline else "application/octet-stream",
        as_attachment=not inline,
        download_name=row.filename,
        conditional=True,
        max_age=0,
    )
    response.headers["Cache-Control"] = "private, no-cache"
    return response
