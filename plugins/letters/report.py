"""The report "Complaints and what they cost": claims by outcome wanted, asked versus granted
per month (count and amount, per currency: money is never summed across currencies), the cost
of what was granted, and how long a claimed ticket takes to resolve."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from helpdesk import Grouping, Ticket, db, spreadsheet_safe
from plugins.letters.models import OUTCOMES, Claim

# What granting costs the business (an apology or a declined claim costs nothing).
COSTLY = ("refund", "gift_certificate", "replacement", "repair")


@dataclass
class Month:
    """One month's claims (or one group of customers'): how many were made and granted, and
    the amounts by currency; ``month`` is the month, or the group's name."""

    month: str
    asked: int = 0
    granted: int = 0
    declined: int = 0
    asked_amount: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    granted_amount: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))


@dataclass
class Report:
    """The whole report over a period; ``groups``: the same figures as a month's per group of
    customers (their client category), when a plugin offers a grouping."""

    months: list[Month]
    by_outcome: dict[str, int]
    cost: dict[str, Decimal]
    resolved: int
    average_hours: Decimal | None
    grouping: str = ""
    groups: list[Month] = field(default_factory=list)


def claims_report(start: date, end: date, grouping: Grouping | None = None) -> Report:
    """Claims made from ``start`` to ``end`` (inclusive), in one query; broken down by
    ``grouping`` too when given (``helpdesk.customer_groupings()``)."""
    query = (
        select(
            Claim.created_at,
            Claim.outcome_wanted,
            Claim.amount_claimed,
            Claim.currency,
            Claim.granted,
            Claim.granted_amount,
            Ticket.created_at,
            Ticket.resolved_at,
        )
        .join(Ticket, Ticket.id == Claim.ticket_id)
        .where(
            Claim.created_at >= datetime.combine(start, time.min, UTC),
            Claim.created_at <= datetime.combine(end, time.max, UTC),
        )
    )
    if grouping is not None:
        groups_of, customer_id, group_name = grouping.subquery()
        query = query.add_columns(group_name).outerjoin(
            groups_of, customer_id == Ticket.customer_id
        )
    months: dict[str, Month] = {}
    groups: dict[str, Month] = {}
    by_outcome = dict.fromkeys(OUTCOMES, 0)
    cost: dict[str, Decimal] = defaultdict(Decimal)
    hours: list[float] = []
    for (
        made,
        wanted,
        asked,
        currency,
        granted,
        amount,
        opened,
        resolved,
        *group,
    ) in db.session.execute(query):
        key = made.strftime("%Y-%m")
        month = months.setdefault(key, Month(key))
        _count(month, asked, currency, granted, amount)
        if grouping is not None:
            name = group[0] if group[0] is not None else grouping.otherwise
            _count(groups.setdefault(name, Month(name)), asked, currency, granted, amount)
        by_outcome[wanted] = by_outcome.get(wanted, 0) + 1
        if granted in COSTLY and amount is not None and currency:
            cost[currency] += amount
        if granted and resolved is not None:
            hours.append((resolved - opened).total_seconds() / 3600)
    average = Decimal(str(round(sum(hours) / len(hours), 1))) if hours else None
    return Report(
        months=[months[k] for k in sorted(months)],
        by_outcome=by_outcome,
        cost=dict(cost),
        resolved=len(hours),
        average_hours=average,
        grouping=grouping.label if grouping is not None else "",
        groups=sorted(groups.values(), key=lambda g: (-g.asked, g.month.casefold())),
    )


def _count(
    row: Month, asked: Decimal | None, currency: str | None, granted: str | None, amount: Any
) -> None:
    """Count one claim in ``row`` (a month, or a group of customers)."""
    row.asked += 1
    if asked is not None and currency:
        row.asked_amount[currency] += asked
    if granted == "declined":
        row.declined += 1
    elif granted:
        row.granted += 1
        if amount is not None and currency:
            row.granted_amount[currency] += amount


def amounts(values: dict[str, Decimal]) -> str:
    """``12.5 EUR; 3 USD`` (one figure per currency)."""
    return "; ".join(f"{value.normalize():f} {code}" for code, value in sorted(values.items()))


def to_csv(report: Report, *, by_group: bool = False) -> str:
    """One row per month and currency; ``by_group``: per group of customers (client category)
    and currency instead."""
    out = io.StringIO()
    writer = csv.writer(out)
    first = "group" if by_group else "month"
    writer.writerow(
        [first, "asked", "granted", "declined", "currency", "amount_asked", "amount_granted"]
    )
    for month in report.groups if by_group else report.months:
        currencies = sorted(set(month.asked_amount) | set(month.granted_amount)) or [""]
        for currency in currencies:
            writer.writerow(
                [
                    spreadsheet_safe(month.month),
                    month.asked,
                    month.granted,
                    month.declined,
                    currency,
                    month.asked_amount.get(currency, ""),
                    month.granted_amount.get(currency, ""),
                ]
            )
    return out.getvalue()


def chart(report: Report, height: int = 160) -> list[dict[str, Any]]:
    """Two bars per month (asked, granted): ``x``, heights and ``y`` in px."""
    top = max((m.asked for m in report.months), default=0)
    bars = []
    for index, month in enumerate(report.months):
        asked = int(month.asked / top * height) if top else 0
        granted = int(month.granted / top * height) if top else 0
        bars.append(
            {
                "month": month.month,
                "x": 40 + index * 56,
                "asked": asked,
                "granted": granted,
                "asked_y": height - asked + 10,
                "granted_y": height - granted + 10,
                "asked_count": month.asked,
                "granted_count": month.granted,
            }
        )
    return bars
