"""The bonus report: per month, bonus accrued, redeemed, expired, reversed and the liability
at the month's end (what the business owes in bonus: every balance); and how many customers
are in each tier."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, select, type_coerce

from helpdesk import ExactDecimal, Order, OrderRefund, db
from plugins.loyalty import ledger, tiers
from plugins.loyalty.models import PLACES, LedgerEntry

MONEY = ExactDecimal(PLACES)
KINDS = ("accrual", "redemption", "expiry", "reversal", "adjustment")
CHART_HEIGHT = 120


@dataclass
class Month:
    """One month of bonus."""

    month: str
    sums: dict[str, Decimal]
    liability: Decimal


def _month_of(column: Any) -> Any:
    if db.session.get_bind().dialect.name == "postgresql":
        return func.to_char(column, "YYYY-MM")
    return func.strftime("%Y-%m", column)


def monthly() -> list[Month]:
    """Every month with movements, oldest first (one grouped query)."""
    month = _month_of(LedgerEntry.created_at).label("month")
    columns = [
        type_coerce(func.sum(case((LedgerEntry.kind == kind, LedgerEntry.amount), else_=0)), MONEY)
        for kind in KINDS
    ]
    rows = db.session.execute(
        select(month, *columns, type_coerce(func.sum(LedgerEntry.amount), MONEY))
        .group_by(month)
        .order_by(month)
    )
    months, running = [], Decimal(0)
    for name, *sums, net in rows:
        running += net or 0
        values = {k: ledger.money(abs(v or 0)) for k, v in zip(KINDS, sums, strict=True)}
        months.append(Month(name, values, ledger.money(running)))
    return months


def chart_bars(months: list[Month]) -> list[dict[str, Any]]:
    """Bars of the liability per month, scaled to the chart's height."""
    top = max((m.liability for m in months), default=Decimal(0)) or Decimal(1)
    return [
        {
            "month": m.month,
            "x": index * 30 + 5,
            "height": int(m.liability * CHART_HEIGHT / top),
            "value": m.liability,
        }
        for index, m in enumerate(months)
    ]


def to_csv(months: list[Month]) -> str:
    """The monthly table as CSV."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["month", *KINDS, "liability"])
    for m in months:
        writer.writerow([m.month, *(m.sums[k] for k in KINDS), m.liability])
    return out.getvalue()


def tier_distribution() -> list[tuple[str, int]]:
    """How many customers are in each tier (and none), by lifetime spend in the programme
    currency less refunds (two grouped queries)."""
    currency = ledger.currency()
    bought = dict(
        db.session.execute(
            select(Order.customer_id, func.sum(Order.amount))
            .where(Order.currency == currency)
            .group_by(Order.customer_id)
        ).all()
    )
    refunded = db.session.execute(
        select(Order.customer_id, func.sum(OrderRefund.amount))
        .join(Order, Order.id == OrderRefund.order_id)
        .where(Order.currency == currency)
        .group_by(Order.customer_id)
    )
    for customer_id, amount in refunded:
        bought[customer_id] = Decimal(bought.get(customer_id) or 0) - amount
    levels = tiers.configured()
    counts = {tier.name: 0 for tier in levels}
    none = 0
    for amount in bought.values():
        reached = [tier for tier in levels if Decimal(amount or 0) >= tier.threshold]
        if reached:
            counts[reached[-1].name] += 1
        else:
            none += 1
    return [("—", none), *counts.items()]
