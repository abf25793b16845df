"""helpdesk: a small help-desk core whose business features are plugins.

This module is the public API. Plugins import from here and nowhere else in ``helpdesk``
(``from helpdesk import hookimpl, db, Ticket``): everything else may change in any release.
"""

from __future__ import annotations

import pluggy
from flask_login import login_required

from helpdesk.app import create_app
from helpdesk.core.errors import Conflict, HelpdeskError, NotFound, TooLarge, ValidationError
from helpdesk.core.events import commit
from helpdesk.core.events import queue as queue_event
from helpdesk.core.models import (
    Agent,
    Customer,
    Message,
    Order,
    Team,
    Ticket,
    UTCDateTime,
    utcnow,
)
from helpdesk.core.money import ExactDecimal
from helpdesk.core.orders import clean_currency, currency_places, in_currency_units, parse_amount
from helpdesk.core.outbox import ChannelUnavailable, Delivery, DeliveryRefused, enqueue
from helpdesk.core.pricing import price_policy
from helpdesk.core.ratelimit import RateLimited
from helpdesk.core.views.api import api_auth_required
from helpdesk.core.views.decorators import admin_required
from helpdesk.extensions import db

hookimpl = pluggy.HookimplMarker("helpdesk")

__all__ = [
    "Agent",
    "ChannelUnavailable",
    "Conflict",
    "Customer",
    "Delivery",
    "DeliveryRefused",
    "ExactDecimal",
    "HelpdeskError",
    "Message",
    "NotFound",
    "Order",
    "RateLimited",
    "Team",
    "Ticket",
    "TooLarge",
    "UTCDateTime",
    "ValidationError",
    "admin_required",
    "api_auth_required",
    "clean_currency",
    "commit",
    "create_app",
    "currency_places",
    "db",
    "enqueue",
    "hookimpl",
    "in_currency_units",
    "login_required",
    "parse_amount",
    "price_policy",
    "queue_event",
    "utcnow",
]
