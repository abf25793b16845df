"""Events are hooks fired after the change they announce is committed.

Services ``queue`` an event while they work and call ``commit()`` when done; a rollback drops
the queue, so plugins never hear of a change that did not happen.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from helpdesk.extensions import db
from helpdesk.plugins import call_each

_KEY = "helpdesk_pending_events"
HOLD_KEY = "helpdesk_hold_events"  # set in ``session.info`` by a batch that fires them itself
# (single event, its bulk event, the single event's argument, the bulk event's argument)
_BULK_EVENTS = (
    ("helpdesk_customer_registered", "helpdesk_customers_registered", "customer", "customers"),
    ("helpdesk_order_recorded", "helpdesk_orders_recorded", "order", "orders"),
)


def queue(hook_name: str, **kwargs: Any) -> None:
    """Fire ``hook_name(**kwargs)`` once the current transaction commits."""
    db.session.info.setdefault(_KEY, []).append((hook_name, kwargs))


def commit() -> None:
    """Commit the session, then fire the events queued during the transaction, in order.

    In a session marked with ``HOLD_KEY`` (a batch whose commits only release savepoints,
    see ``helpdesk.core.mail.batch``) the events stay queued: the batch ``take``s them and
    ``fire``s them once its own transaction is committed."""
    db.session.commit()
    if db.session.info.get(HOLD_KEY):
        return
    fire(take())


def take() -> list[tuple[str, dict[str, Any]]]:
    """The events queued in the current session, removed from it."""
    return db.session.info.pop(_KEY, [])


def fire(pending: list[tuple[str, dict[str, Any]]]) -> None:
    """Fire events ``take``n earlier, in order (after the change they announce committed),
    then each bulk event once with all the rows of its single events among them:
    ``helpdesk_customers_registered`` and ``helpdesk_orders_recorded``."""
    for hook_name, kwargs in pending:
        call_each(hook_name, **kwargs)
    for single, bulk, argument, bulk_argument in _BULK_EVENTS:
        rows = [kwargs[argument] for name, kwargs in pending if name == single]
        if rows:
            call_each(bulk, **{bulk_argument: rows})


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(_KEY, None)
