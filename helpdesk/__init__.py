"""helpdesk: a small help-desk core whose business features are plugins.

This module is the public API. Plugins import from here and nowhere else in ``helpdesk``
(``from helpdesk import hookimpl, db, Ticket``): everything else may change in any release.
"""

from __future__ import annotations

import pluggy
from flask_login import login_required

from helpdesk.app import create_app
from helpdesk.core import openapi_parts
from helpdesk.core.attachments import Upload, read_uploads
from helpdesk.core.customers import find_or_create_customer
from helpdesk.core.errors import Conflict, HelpdeskError, NotFound, TooLarge, ValidationError
from helpdesk.core.events import commit
from helpdesk.core.events import queue as queue_event
from helpdesk.core.exports import spreadsheet_safe
from helpdesk.core.groupings import Grouping, customer_groupings
from helpdesk.core.models import (
    Agent,
    Customer,
    Message,
    Order,
    OrderLine,
    OrderRefund,
    Team,
    Ticket,
    UTCDateTime,
    utcnow,
)
from helpdesk.core.money import ExactDecimal
from helpdesk.core.notify import notify_agents
from helpdesk.core.orders import clean_currency, currency_places, in_currency_units, parse_amount
from helpdesk.core.outbox import ChannelUnavailable, Delivery, DeliveryRefused, enqueue
from helpdesk.core.panels import render_panel
from helpdesk.core.pricing import price_policy
from helpdesk.core.ratelimit import RateLimited
from helpdesk.core.ratelimit import hit as rate_limit_hit
from helpdesk.core.services import add_message, open_ticket, update_ticket
from helpdesk.core.tokens import ticket_link_token
from helpdesk.core.views.api import api_auth_required, json_body
from helpdesk.core.views.decorators import admin_required
from helpdesk.core.views.periods import report_period
from helpdesk.extensions import csrf, db, write_intent
from helpdesk.plugins import call_each

hookimpl = pluggy.HookimplMarker("helpdesk")
# Marks a view that must take POSTs from elsewhere (a gateway's webhook): no CSRF token.
csrf_exempt = csrf.exempt


__all__ = [
    "Agent",
    "ChannelUnavailable",
    "Conflict",
    "Customer",
    "Delivery",
    "DeliveryRefused",
    "ExactDecimal",
    "Grouping",
    "HelpdeskError",
    "Message",
    "NotFound",
    "Order",
    "OrderLine",
    "OrderRefund",
    "RateLimited",
    "Team",
    "Ticket",
    "TooLarge",
    "UTCDateTime",
    "Upload",
    "ValidationError",
    "add_message",
    "admin_required",
    "api_auth_required",
    "call_each",
    "clean_currency",
    "commit",
    "create_app",
    "csrf_exempt",
    "currency_places",
    "customer_groupings",
    "db",
    "enqueue",
    "find_or_create_customer",
    "hookimpl",
    "in_currency_units",
    "json_body",
    "login_required",
    "notify_agents",
    "open_ticket",
    "openapi_parts",
    "parse_amount",
    "price_policy",
    "queue_event",
    "rate_limit_hit",
    "read_uploads",
    "render_panel",
    "report_period",
    "spreadsheet_safe",
    "ticket_link_token",
    "update_ticket",
    "utcnow",
    "write_intent",
]
