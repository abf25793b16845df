"""The price policy: what a customer pays and whether they must pay first, from the offers of
the enabled plugins (``helpdesk_price_policy``), combined by the ``PRICE_POLICY_COMBINE`` setting.
"""

from __future__ import annotations

import logging
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from flask import current_app

from helpdesk.config import ConfigError
from helpdesk.core.errors import ValidationError
from helpdesk.core.orders import MAX_INTEGER_DIGITS, parse_amount
from helpdesk.plugins import call_each_named

COMBINE_MODES = ("best", "stack")
CENT = Decimal("0.01")
HUNDRED = Decimal(100)
log = logging.getLogger(__name__)


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _amount(value: Any) -> Decimal:
    amount = parse_amount(value, "amount")
    if amount < 0:
        raise ValidationError({"amount": "must be 0 or more"})
    if amount.adjusted() >= MAX_INTEGER_DIGITS:
        raise ValidationError({"amount": f"is too large (at most {MAX_INTEGER_DIGITS} digits)"})
    return _money(amount)


def _offer(plugin: str, offer: Any) -> dict[str, Any] | None:
    """A plugin's offer checked: ``discount`` in 0-100, ``prepayment`` bool, ``reason`` text."""
    if not isinstance(offer, dict):
        log.error("plugin %r: price policy offer %r is not a dict", plugin, offer)
        return None
    try:
        discount = Decimal(str(offer.get("discount_percent", 0)))
    except InvalidOperation:
        discount = Decimal("NaN")
    if not discount.is_finite() or not 0 <= discount <= HUNDRED:
        log.error("plugin %r: discount %r is not within 0-100 %%", plugin, offer)
        return None
    return {
        "discount": discount,
        "prepayment": bool(offer.get("prepayment_required", False)),
        "reason": str(offer.get("reason", "") or plugin),
    }


def price_policy(customer: Any, amount: Any) -> dict[str, Any]:
    """What ``customer`` pays for ``amount`` (text like ``"100.00"``, a ``Decimal`` or an int).

    Returns ``{"amount", "price", "discount_percent", "prepayment_required", "reasons"}``; money
    and the percentage are ``Decimal`` rounded half-up to 2 places, ``reasons`` lists the offers
    that changed the price or asked for prepayment. With ``PRICE_POLICY_COMBINE = "best"`` the
    largest discount applies; with ``"stack"`` every discount applies in turn (10 % and 20 %
    make 28 %). Raises ``ValidationError`` for an amount that is not a number of at most 14
    digits, or negative.
    """
    mode = current_app.config["PRICE_POLICY_COMBINE"]
    if mode not in COMBINE_MODES:
        raise ConfigError(f"PRICE_POLICY_COMBINE must be one of {COMBINE_MODES}, not {mode!r}")
    amount = _amount(amount)
    offers = [
        checked
        for plugin, offer in call_each_named(
            "helpdesk_price_policy", customer=customer, amount=amount
        )
        if (checked := _offer(plugin, offer)) is not None
    ]
    discounted = [offer for offer in offers if offer["discount"] > 0]
    if mode == "best" and discounted:
        discounted = [max(discounted, key=lambda offer: offer["discount"])]
    factor = Decimal(1)
    for offer in discounted:
        factor *= 1 - offer["discount"] / HUNDRED
    prepaying = [offer for offer in offers if offer["prepayment"]]
    reasons = [offer["reason"] for offer in discounted + prepaying]
    return {
        "amount": amount,
        "price": _money(amount * factor),
        "discount_percent": _money((1 - factor) * HUNDRED),
        "prepayment_required": bool(prepaying),
        "reasons": list(dict.fromkeys(reasons)),
    }
