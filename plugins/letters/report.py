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

from helpdesk import Ticket, db
from plugins.letters.models import OUTCOMES, Claim

# What granting costs the business (an apology or a declined claim costs nothing).
COSTLY = ("refund", "gift_certificate", "replacement", "repair")


@dataclass
class Month:
    """One month's claims: how many were made and granted, and the amounts by currency."""

    month: str
    asked: int = 0
    granted: int = 0
    declined: int = 0
    asked_amount: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    granted_amount: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))


@dataclass
class Report:
    """The whole report over a period."""

    months: list[Month]
    by_outcome: dict[str, int]
    cost: dict[str, Decimal]
    resolved: int
    average_hours: Decimal | None


def claims_report(start: date, end: date) -> Report:
    """Claims made from ``start`` to ``end`` (inclusive), in one query."""
    rows = db.session.execute(
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
    months: dict[str, Month] = {}
    by_outcome = dict.fromkeys(OUTCOMES, 0)
    cost: dict[str, Decimal] = defaultdict(Decimal)
    hours: list[float] = []
    for made, wanted, asked, currency, granted, amount, opened, resolved in rows:
        key = made.strftime("%Y-%m")
        month = months.setdefault(key, Month(key))
        month.asked += 1
        by_outcome[wanted] = by_outcome.get(wanted, 0) + 1
        if asked is not None and currency:
            month.asked_amount[currency] += asked
        if granted == "declined":
            month.declined += 1
        elif granted:
            month.granted += 1
            if amount is not None and currency:
                month.granted_amount[currency] += amount
                if granted in COSTLY:
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
    )


def amounts(values: dict[str, Decimal]) -> str:
    """``12.5 EUR; 3 USD`` (one figure per currency)."""
    return "; ".join(f"{value.normalize():f} {code}" for code, value in sorted(values.items()))


def to_csv(report: Report) -> str:
    """One row per month and currency."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["month", "asked", "granted", "declined", "currency", "amount_asked", "amount_granted"]
    )
    for month in report.months:
        currencies = sorted(set(month.asked_amount) | set(month.granted_amount)) or [""]
        for currency in currencies:
            writer.writerow(
                [
                    month.month,
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
