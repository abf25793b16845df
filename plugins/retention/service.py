"""The plugin's rules: reading a reference date, the summary and the client lists read from
the spans (``plugins.retention.spans``), loss reasons, account managers and call tasks.

Money leaves this module rounded half-up to the currency's places, once, from exact sums; it is
always a mapping currency → amount, never a sum across currencies. Counts are of clients.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, Inexact, localcontext
from fractions import Fraction
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from helpdesk import (
    Agent,
    Customer,
    Ticket,
    ValidationError,
    call_each,
    currency_places,
    db,
    utcnow,
)
from plugins.retention import aggregates, spans
from plugins.retention.compute import drying_up_of, figures_of
from plugins.retention.definitions import DryingUp, Figures, Rules, months_of_days
from plugins.retention.models import MONEY_PLACES, AccountManager, CallTask, LossReason

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
LIST_STATUSES = ("lost", "drying_up", "at_risk", "regular", "won_back")
MAX_NOTE_LENGTH = 2000
# Digits of the decimal context sums are added in (an inexact sum raises instead).
EXACT_DIGITS = 60


# --- reading input ------------------------------------------------------------------------


def parse_as_of(value: str | None) -> date:
    """The reference date from ``YYYY-MM-DD`` (today, UTC, when absent or empty).

    Raises ``ValidationError`` on ``as_of`` for anything else: another format, a day not in
    the calendar, a year before 1900 or a date after today."""
    if value is None or value == "":
        return utcnow().date()
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValidationError({"as_of": "must be a date written YYYY-MM-DD"})
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValidationError({"as_of": f"{value!r} is not a date in the calendar"}) from None
    if day.year < 1900:
        raise ValidationError({"as_of": "must not be before 1900-01-01"})
    if day > utcnow().date():
        raise ValidationError({"as_of": "must not be in the future"})
    return day


def rules() -> Rules:
    """The definitions' thresholds from the settings."""
    return Rules.from_config(current_app.config)


def reasons() -> dict[str, bool | None]:
    """The configured loss reasons: name → beyond our control (``True``), ours (``False``) or
    not known (``None``)."""
    return dict(current_app.config["RETENTION_REASONS"])


# --- money --------------------------------------------------------------------------------


def round_money(value: Fraction | Decimal, currency: str) -> Decimal:
    """``value`` rounded half-up (away from zero) to ``currency``'s places, exactly."""
    places = currency_places(currency)
    scaled = Fraction(value) * 10**places
    units = math.floor(abs(scaled) + Fraction(1, 2))
    return Decimal(units if scaled >= 0 else -units).scaleb(-places)


def money(values: Mapping[str, Fraction | Decimal]) -> dict[str, str]:
    """Money per currency as JSON carries it: ``{"EUR": "400.00"}``, by currency code."""
    return {c: str(round_money(v, c)) for c, v in sorted(values.items())}


def percent(value: Fraction) -> Decimal:
    """A percentage rounded half-up to two places."""
    scaled = value * 100
    units = math.floor(abs(scaled) + Fraction(1, 2))
    return Decimal(units if scaled >= 0 else -units).scaleb(-2)


def add_up(values: Iterable[Mapping[str, Fraction | Decimal]]) -> dict[str, Fraction]:
    """The exact sums per currency of many clients' figures (never across currencies).
    ``Decimal`` amounts are added as decimals, in a context that raises rather than round
    (far quicker than fractions, and as exact)."""
    decimals: dict[str, Decimal] = defaultdict(Decimal)
    fractions: dict[str, Fraction] = defaultdict(Fraction)
    with localcontext() as context:
        context.prec = EXACT_DIGITS
        context.traps[Inexact] = True
        for mapping in values:
            for currency, amount in mapping.items():
                if isinstance(amount, Decimal):
                    decimals[currency] += amount
                else:
                    fractions[currency] += amount
    return {
        currency: Fraction(decimals.get(currency, 0)) + fractions.get(currency, 0)
        for currency in decimals.keys() | fractions.keys()
    }


# --- the summary --------------------------------------------------------------------------


def lost_in_period(as_of: date) -> list[spans.Lost]:
    """Clients lost at D who became lost in the period (365 days) up to D."""
    spans.ensure_current()
    return spans.lost_since(as_of, as_of - timedelta(days=rules().period_days))


def lost_totals(as_of: date) -> aggregates.LostTotals:
    """How many clients lost at D became lost in the period up to D, and their money."""
    spans.ensure_current()
    return aggregates.lost_totals(as_of, as_of - timedelta(days=rules().period_days))


def lifetime_value_lost(
    spend_by_days: Mapping[int, Mapping[str, Decimal]], rule: Rules
) -> dict[str, Fraction]:
    """The clients' lifetime value lost added up per currency: each client's total spend ÷
    months between first and last order × the expected lifetime, summed exactly, from their
    spends added up by the days between first and last order (``LostTotals.spend_by_days``).
    The quotients are added as whole numbers over one common denominator, the amounts in
    units of their last place (a sum of ``Fraction`` objects would reduce by a growing gcd at
    every step), and divided once: no digit changes."""
    if not spend_by_days:
        return {}
    months = {days: months_of_days(days) for days in spend_by_days}
    # spend ÷ (a / b) = spend × b ÷ a; over the common multiple of every a, then × lifetime.
    common = math.lcm(*(value.numerator for value in months.values()))
    scale = 10**MONEY_PLACES
    totals: dict[str, int] = defaultdict(int)
    for days, amounts in spend_by_days.items():
        factor = months[days].denominator * (common // months[days].numerator)
        for currency, amount in amounts.items():
            units = Fraction(amount) * scale
            if units.denominator != 1:
                raise ValueError(f"{amount} has more than {MONEY_PLACES} places")
            totals[currency] += units.numerator * factor
    lifetime = Fraction(rule.lifetime_months)
    return {
        currency: Fraction(total, common * scale) * lifetime for currency, total in totals.items()
    }


def reason_breakdown(recorded: Mapping[str, int], clients: int) -> list[dict[str, Any]]:
    """How many of ``clients`` lost clients left for each reason (``recorded``: reason →
    clients with it), in the configured order; ``not_recorded`` counts those nobody asked
    yet."""
    configured = reasons()
    rows = [
        {"reason": name, "count": recorded.get(name, 0), "beyond_control": beyond}
        for name, beyond in configured.items()
    ]
    rows += [
        {"reason": name, "count": n, "beyond_control": None}
        for name, n in sorted(recorded.items())
        if name not in configured
    ]
    not_recorded = clients - sum(recorded.values())
    rows.append({"reason": "not_recorded", "count": not_recorded, "beyond_control": None})
    return rows


def summary(
    as_of: date, lost: aggregates.LostTotals | None = None, drying_up: int | None = None
) -> dict[str, Any]:
    """The three questions at D: who we lost in the last 12 months and what it cost, why,
    who came back, and how many are drying up (see the API's ``/retention/summary``), from
    the spans (``lost``, ``drying_up``: ``lost_totals``'s answer and the number of drying-up
    clients when the caller has them)."""
    spans.ensure_current()
    lost = lost_totals(as_of) if lost is None else lost
    period = rules().period_days
    if drying_up is None:
        drying_up = spans.count_at(as_of, "drying_up", period)
    recorded = aggregates.lost_reasons(as_of, as_of - timedelta(days=period))
    return {
        "as_of": as_of.isoformat(),
        "lost_12m": {
            "count": lost.count,
            "revenue_before": money(add_up(lost.revenue_by_days.values())),
            "lifetime_value_lost": money(lifetime_value_lost(lost.spend_by_days, rules())),
        },
        "won_back_12m": {"count": spans.count_at(as_of, "won_back", period)},
        "drying_up": {"count": drying_up},
        "reasons": reason_breakdown(recorded, lost.count),
    }


def monthly_lost(as_of: date, by_day: Mapping[date, int]) -> list[tuple[str, int]]:
    """``(YYYY-MM, clients who became lost that month)`` for each month of the period up to
    D, oldest first (``by_day``: ``LostTotals.by_day``)."""
    start = as_of - timedelta(days=rules().period_days - 1)
    months = []
    cursor = date(start.year, start.month, 1)
    while cursor <= as_of:
        months.append(cursor.strftime("%Y-%m"))
        cursor = date(cursor.year + cursor.month // 12, cursor.month % 12 + 1, 1)
    counts: Counter[str] = Counter()
    for day, count in by_day.items():
        counts[day.strftime("%Y-%m")] += count
    return [(month, counts.get(month, 0)) for month in months]


# --- client lists -------------------------------------------------------------------------


@dataclass
class ClientRow:
    """One client of a list with what the page and the API show of them."""

    customer: Customer
    # ``DryingUp`` on the drying-up list (``with_drying_up``).
    figures: Figures | DryingUp | None
    manager: Agent | None
    complaints_90d: int = 0
    # The client's last survey score (``last_scores``), when the surveys plugin gives it.
    last_score: int | None = None


def clients(as_of: date, status: str) -> list[spans.Listed]:
    """The clients of ``status`` at D (``won_back``: whoever won back in the period; ``lost``:
    every lost client), latest last purchase first."""
    if status not in LIST_STATUSES:
        allowed = ", ".join(LIST_STATUSES)
        raise ValidationError({"status": f"must be one of {allowed}"})
    spans.ensure_current()
    found = spans.listed_at(as_of, status, rules().period_days)
    return sorted(found, key=lambda item: (item.last_day, item.customer_id), reverse=True)


def drying_up_listed(as_of: date) -> list[int]:
    """The ids of ``clients(as_of, "drying_up")``, in its order."""
    spans.ensure_current()
    return aggregates.drying_up_listed(as_of)


def count(as_of: date, status: str) -> int:
    """How many clients ``clients`` would list."""
    spans.ensure_current()
    return spans.count_at(as_of, status, rules().period_days)


def client_rows(ids: list[int], as_of: date) -> list[ClientRow]:
    """Rows for the clients ``ids`` (in that order) with customer, manager and complaints in
    the 90 days up to D, without figures (``with_figures``): three queries whatever the number
    of rows."""
    if not ids:
        return []
    found = {c.id: c for c in db.session.scalars(select(Customer).where(Customer.id.in_(ids)))}
    managers = managers_of(ids)
    complaints = complaints_of(ids, as_of, current_app.config["RETENTION_COMPLAINT_DAYS"])
    return [
        ClientRow(found[cid], None, managers.get(cid), complaints.get(cid, 0))
        for cid in ids
        if cid in found
    ]


def sort_values(ids: list[int], key: str, as_of: date) -> dict[int, Any]:
    """What the drying-up list sorts the clients ``ids`` by for ``key`` (``name``: the name
    shown, casefolded; ``manager``: their manager's name, casefolded; ``complaints``: their
    complaints in the days up to D), read as plain columns (one query); a client without a
    value is left out."""
    if key == "complaints":
        return complaints_of(ids, as_of, current_app.config["RETENTION_COMPLAINT_DAYS"])
    if key == "manager":
        query = (
            select(AccountManager.customer_id, Agent.name)
            .join(Agent, Agent.id == AccountManager.agent_id)
            .where(AccountManager.customer_id.in_(ids))
        )
        return {cid: name.casefold() for cid, name in db.session.execute(query)}
    if key == "name":
        query = select(Customer.id, Customer.name, Customer.email).where(Customer.id.in_(ids))
        return {cid: (name or email).casefold() for cid, name, email in db.session.execute(query)}
    raise ValueError(f"no sort key {key!r}")


def with_figures(rows: list[ClientRow], as_of: date) -> list[ClientRow]:
    """``rows`` with each client's figures at D, computed from their orders (one query)."""
    figures = figures_of([row.customer.id for row in rows], as_of, rules())
    for row in rows:
        row.figures = figures[row.customer.id]
    return rows


def with_drying_up(rows: list[ClientRow], as_of: date) -> list[ClientRow]:
    """``rows`` of drying-up clients with what the drying-up list shows of each at D
    (``DryingUp``): their span's last purchase and signals, the rest from their recent
    orders (two queries)."""
    if not rows:
        return rows
    shown = spans.shown_at([row.customer.id for row in rows], as_of)
    found = drying_up_of(shown, as_of, rules())
    for row in rows:
        row.figures = found.get(row.customer.id)
    return [row for row in rows if row.figures is not None]


def last_scores(customers: list[Customer]) -> dict[int, int | None] | None:
    """Each client's last survey score, read from the customer JSON the enabled plugins give
    (``surveys_last_score``, from the surveys plugin) in one hook call; ``None`` when no
    enabled plugin gives scores (the column is then left out)."""
    found: dict[int, int | None] | None = None
    for answer in call_each("helpdesk_customer_json", customers=customers):
        for customer_id, fields in (answer or {}).items():
            if isinstance(fields, dict) and "surveys_last_score" in fields:
                found = {} if found is None else found
                found[customer_id] = fields["surveys_last_score"]
    return found


def managers_of(customer_ids: Iterable[int]) -> dict[int, Agent]:
    """Each client's account manager (one query)."""
    ids = list(customer_ids)
    if not ids:
        return {}
    rows = db.session.execute(
        select(AccountManager.customer_id, Agent)
        .join(Agent, Agent.id == AccountManager.agent_id)
        .where(AccountManager.customer_id.in_(ids))
    )
    return {cid: agent for cid, agent in rows}


def complaints_of(customer_ids: Iterable[int], as_of: date, days: int) -> dict[int, int]:
    """Complaint tickets each client opened in the ``days`` up to D (one grouped query)."""
    ids = list(customer_ids)
    if not ids:
        return {}
    until = datetime.combine(as_of + timedelta(days=1), time.min, UTC)
    since = until - timedelta(days=days)
    rows = db.session.execute(
        select(Ticket.customer_id, func.count())
        .where(
            Ticket.customer_id.in_(ids),
            Ticket.kind == "complaint",
            Ticket.created_at >= since,
            Ticket.created_at < until,
        )
        .group_by(Ticket.customer_id)
    )
    return dict(rows.all())


def interval_days(value: Fraction | None) -> int | float | None:
    """The usual interval for JSON: whole days, or a half day (a median of two gaps)."""
    if value is None:
        return None
    return int(value) if value.denominator == 1 else float(value)


def row_json(row: ClientRow) -> dict[str, Any]:
    """A client of ``/retention/customers`` as JSON (money per currency, as strings)."""
    f = row.figures
    manager = row.manager
    return {
        "customer": {"id": row.customer.id, "email": row.customer.email, "name": row.customer.name},
        "status": f.status,
        "signals": list(f.signals),
        "stopped_lines": list(f.stopped_lines),
        "last_order_at": f.last_day.isoformat() if f.last_day else None,
        "orders_count": f.purchases,
        "spend_total": money(f.spend_total),
        "usual_interval_days": interval_days(f.usual_interval),
        "aov_last_90d": money(f.aov_last),
        "aov_prev_90d": money(f.aov_prev),
        "aov_change_percent": {c: str(percent(v)) for c, v in f.aov_change_percent.items()},
        "lost_on": f.lost_on.isoformat() if f.lost_on else None,
        "won_back_on": f.won_back_on.isoformat() if f.won_back_on else None,
        "revenue_before": money(f.revenue_before),
        "lifetime_value_lost": money(f.lifetime_value_lost),
        "account_manager": None
        if manager is None
        else {"id": manager.id, "email": manager.email, "name": manager.name},
        "complaints_90d": row.complaints_90d,
    }


# --- loss reasons and account managers ----------------------------------------------------


def record_loss_reason(
    customer: Customer, reason: Any, note: Any, agent: Agent | None
) -> LossReason:
    """Record why ``customer`` left (one of the configured reasons) with an optional note;
    a later answer replaces an earlier one."""
    configured = reasons()
    if not isinstance(reason, str) or reason not in configured:
        raise ValidationError({"reason": f"must be one of {', '.join(configured)}"})
    if note is None:
        note = ""
    if not isinstance(note, str):
        raise ValidationError({"note": "must be text"})
    note = note.strip()
    if len(note) > MAX_NOTE_LENGTH:
        raise ValidationError({"note": f"is too long (at most {MAX_NOTE_LENGTH} characters)"})
    row = db.session.get(LossReason, customer.id) or LossReason(customer_id=customer.id)
    row.reason, row.note = reason, note
    row.agent_id = agent.id if agent is not None else None
    row.recorded_at = utcnow()
    db.session.add(row)
    db.session.commit()
    return row


def loss_reason_of(customer: Customer) -> LossReason | None:
    """The recorded reason ``customer`` left, if any."""
    return db.session.get(LossReason, customer.id)


def agent_by_email(value: Any) -> Agent | None:
    """The active agent with this e-mail (``None`` for ``None``: no manager)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValidationError({"agent": "must be an agent's e-mail or null"})
    agent = db.session.scalar(select(Agent).where(func.lower(Agent.email) == value.strip().lower()))
    if agent is None or not agent.active:
        raise ValidationError({"agent": f"{value[:100]!r} is not an active agent"})
    return agent


def set_account_manager(customer: Customer, agent: Agent | None) -> None:
    """Make ``agent`` the client's permanent account manager (``None`` removes it); their open
    call tasks follow the new manager."""
    row = db.session.get(AccountManager, customer.id)
    if agent is None:
        if row is not None:
            db.session.delete(row)
    elif row is None:
        db.session.add(AccountManager(customer_id=customer.id, agent_id=agent.id))
    else:
        row.agent_id, row.assigned_at = agent.id, utcnow()
    for task in open_tasks_of_customer(customer):
        task.agent_id = agent.id if agent is not None else None
    db.session.commit()


def manager_of(customer: Customer) -> Agent | None:
    """The client's account manager, if any."""
    return managers_of([customer.id]).get(customer.id)


# --- call tasks ---------------------------------------------------------------------------


def open_tasks_of_customer(customer: Customer) -> list[CallTask]:
    """The client's calls still to make, oldest first."""
    return list(
        db.session.scalars(
            select(CallTask)
            .where(CallTask.customer_id == customer.id, CallTask.done_at.is_(None))
            .order_by(CallTask.id)
        )
    )


def open_tasks_for(agent: Agent) -> list[CallTask]:
    """The calls ``agent`` has to make: their own clients', and the unassigned ones when they
    are in the retention team."""
    query = select(CallTask).where(CallTask.done_at.is_(None))
    team = current_app.config["RETENTION_TEAM"]
    if team and any(t.name == team for t in agent.teams):
        query = query.where((CallTask.agent_id == agent.id) | CallTask.agent_id.is_(None))
    else:
        query = query.where(CallTask.agent_id == agent.id)
    return list(db.session.scalars(query.order_by(CallTask.id).limit(500)))


def record_call(task: CallTask, data: Mapping[str, Any], agent: Agent | None) -> CallTask:
    """Close a call task with its outcome: ``reached`` (yes/no), ``reason`` learned (a
    configured reason or empty; recorded as the client's loss reason), ``offer`` made,
    ``next_date`` (``YYYY-MM-DD``, optional) and a ``note``."""
    if task.done_at is not None:
        raise ValidationError({"task": "this call was already recorded"})
    errors: dict[str, str] = {}
    reached = data.get("reached")
    if reached not in ("yes", "no", True, False):
        errors["reached"] = "must be yes or no"
    reason = data.get("reason") or ""
    if reason and reason not in reasons():
        errors["reason"] = f"must be one of {', '.join(reasons())}"
    next_date = None
    if data.get("next_date"):
        try:
            next_date = date.fromisoformat(str(data["next_date"]))
        except ValueError:
            errors["next_date"] = "must be a date written YYYY-MM-DD"
    texts = {}
    for field in ("offer", "note"):
        value = data.get(field) or ""
        if not isinstance(value, str) or len(value) > MAX_NOTE_LENGTH:
            errors[field] = f"must be text of at most {MAX_NOTE_LENGTH} characters"
        texts[field] = value.strip() if isinstance(value, str) else ""
    if errors:
        raise ValidationError(errors)
    task.reached = reached in ("yes", True)
    task.reason_learned, task.offer_made, task.note = reason, texts["offer"], texts["note"]
    task.next_date, task.done_at = next_date, utcnow()
    if reason:
        customer = db.session.get(Customer, task.customer_id)
        record_loss_reason(customer, reason, texts["note"], agent)
    db.session.commit()
    return task
