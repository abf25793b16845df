"""What a refund of an order does to bonus: the bonus accrued on the refunded part is reversed
and the bonus redeemed on it is given back, in proportion to how much of the order is now
refunded (all of it on a full refund). Amounts are computed on the running total of refunds,
so several partial refunds add up to exactly what a full one would do.

A reversal may need more than the card holds: the balance stops at zero and the rest is owed
(``ledger.debit_or_owe``)."""

from __future__ import annotations

from decimal import Decimal

from helpdesk import Order, db
from plugins.loyalty import cards, ledger
from plugins.loyalty.models import Card, OrderBonus


def on_refund(order: Order) -> None:
    """Reverse and give back bonus for the refunds of ``order`` so far; commits."""
    bonus = db.session.get(OrderBonus, order.id)
    if bonus is None or order.amount <= 0:
        return
    card = ledger.lock(cards.current_card(db.session.get(Card, bonus.card_id)))
    fraction = min(Decimal(1), ledger.refunded(order) / order.amount)
    details = {"order": order}
    give = ledger.money(bonus.redeemed * fraction) - bonus.returned
    if give > 0:
        bonus.returned += give
        ledger.credit(card, "reversal", give, reason="redeemed bonus given back", **details)
    take = ledger.money(bonus.accrued * fraction) - bonus.reversed
    if take > 0:
        bonus.reversed += take
        ledger.debit_or_owe(card, "reversal", take, reason="bonus of a refund", **details)
    db.session.commit()
