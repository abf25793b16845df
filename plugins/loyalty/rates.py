"""Accrual rates per client category. The category of a customer is read through the hooks of
the categories plugin (its customer JSON field ``category``), so when that plugin is disabled
or absent every customer accrues at ``LOYALTY_ACCRUAL_PERCENT``."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from helpdesk import Customer, ValidationError, call_each, db, parse_amount
from plugins.loyalty.models import CategoryRate

HUNDRED = Decimal(100)


def percents_for(customer_ids: Iterable[int]) -> dict[int, Decimal]:
    """The rate set for each customer's category, for those whose category has one (one
    query for the customers, one hook call for their categories); the others accrue at the
    programme default."""
    ids = set(customer_ids)
    if not ids or db.session.scalar(select(CategoryRate.category_id).limit(1)) is None:
        return {}
    customers = list(db.session.scalars(select(Customer).where(Customer.id.in_(ids))))
    categories: dict[int, int] = {}
    for fields in call_each("helpdesk_customer_json", customers=customers):
        for customer_id, extra in (fields or {}).items():
            value = extra.get("category") if isinstance(extra, dict) else None
            if isinstance(value, dict) and isinstance(value.get("id"), int):
                categories.setdefault(customer_id, value["id"])
    set_rates = rates()
    return {
        customer_id: set_rates[category_id]
        for customer_id, category_id in categories.items()
        if category_id in set_rates
    }


def category_choices() -> list[tuple[str, str]]:
    """``(id, name)`` of every client category, from the categories plugin's queue filter
    (empty when it is disabled)."""
    for filters in call_each("helpdesk_queue_filters"):
        for spec in filters or []:
            if isinstance(spec, dict) and spec.get("name") == "category":
                choices = spec.get("choices")
                return list(choices() if callable(choices) else choices or [])
    return []


def rates() -> dict[int, Decimal]:
    """Every rate set, by category id."""
    return {r.category_id: r.accrual_percent for r in db.session.scalars(select(CategoryRate))}


def set_rate(category_id: int, value: Any) -> None:
    """Set (or, with an empty value, clear) the accrual percent of a category; commits."""
    row = db.session.get(CategoryRate, category_id)
    if value is None or (isinstance(value, str) and not value.strip()):
        if row is not None:
            db.session.delete(row)
        db.session.commit()
        return
    percent = parse_amount(value, "accrual_percent")
    if not 0 <= percent <= HUNDRED or percent != percent.quantize(Decimal("0.01")):
        raise ValidationError({"accrual_percent": "must be 0 to 100, at most 2 decimals"})
    if row is None:
        db.session.add(CategoryRate(category_id=category_id, accrual_percent=percent))
    else:
        row.accrual_percent = percent
    db.session.commit()
