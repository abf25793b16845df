"""Keeping clients: who we lost in the last 12 months, why, what it cost, who is drying up, and
who calls them.

The definitions are pure functions (``definitions``) over each client's dated purchases;
``timeline`` turns them into spans of reference dates with the same answer, which ``spans``
keeps in tables in step with the orders, so the summary, the lists and ``helpdesk retention
review`` at any date are range queries; the rows a page shows, the customer panel and "My
clients" compute their figures straight from the orders (``compute``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import render_template
from flask_babel import gettext as _
from markupsafe import Markup

from helpdesk import hookimpl, utcnow
from plugins.retention import service
from plugins.retention.api import bp as api_bp
from plugins.retention.compute import figures_of
from plugins.retention.openapi import document_part
from plugins.retention.review import retention_group
from plugins.retention.views import bp

__version__ = "1.0.0"
HERE = Path(__file__).resolve().parent

DEFAULTS: dict[str, Any] = {
    # A regular client has at least this many purchases (days with an order) up to D.
    "RETENTION_REGULAR_PURCHASES": 3,
    # Lost: last order more than max(this many days, RETENTION_LOST_INTERVALS × usual interval).
    "RETENTION_LOST_MIN_DAYS": 90,
    "RETENTION_LOST_INTERVALS": 3,
    # At risk: more than this many usual intervals since the last order.
    "RETENTION_AT_RISK_INTERVALS": 2,
    # Drying up: the AOV of the last this-many days against the same span before it...
    "RETENTION_AOV_WINDOW_DAYS": 90,
    # ...fallen by at least this percentage.
    "RETENTION_AOV_DROP_PERCENT": "25",
    # Drying up: a product line in RETENTION_LINE_MIN_PURCHASES purchases in (D − this, D − 90].
    "RETENTION_LINE_HISTORY_DAYS": 455,
    "RETENTION_LINE_MIN_PURCHASES": 3,
    # A page or API call rebuilds the spans of at most this many clients itself (new orders);
    # more (after an upgrade, a settings change, a big import) answers 503 and asks for
    # `helpdesk retention rebuild`, so no request holds the write lock for minutes.
    "RETENTION_REQUEST_BUILD_LIMIT": 2000,
    # "The last 12 months": lost and won back in this many days up to D.
    "RETENTION_PERIOD_DAYS": 365,
    # Lifetime value lost = average monthly spend × this many months of expected lifetime.
    "RETENTION_LIFETIME_MONTHS": "24",
    # Why a client left: reason → beyond our control (true), ours (false), not known (null).
    "RETENTION_REASONS": {
        "closed": True,
        "moved": True,
        "died": True,
        "price": False,
        "quality": False,
        "value_for_money": False,
        "service": False,
        "competitor": False,
        "unknown": None,
    },
    # The team (by name) that calls clients without an account manager ("" for none).
    "RETENTION_TEAM": "Retention",
    # Complaints shown on the drying-up list: complaint tickets in this many days up to D.
    "RETENTION_COMPLAINT_DAYS": 90,
    # Drying-up clients shown on the dashboard (sorted; the CSV export has them all).
    "RETENTION_DASHBOARD_ROWS": 100,
    # Clients per page of GET /api/v1/retention/customers.
    "RETENTION_PAGE_SIZE": 50,
}


@hookimpl
def helpdesk_config_defaults() -> dict[str, Any]:
    return dict(DEFAULTS)


@hookimpl
def helpdesk_blueprints() -> list:
    return [bp, api_bp]


@hookimpl
def helpdesk_cli_commands() -> list:
    return [retention_group]


@hookimpl
def helpdesk_migration_dirs() -> list[str]:
    return [str(HERE / "migrations")]


@hookimpl
def helpdesk_nav_items(agent) -> list[dict[str, Any]]:
    return [{"label": _("My clients"), "endpoint": "retention.mine", "admin_only": False}]


@hookimpl
def helpdesk_reports() -> list[dict[str, Any]]:
    return [
        {
            "title": _("Keeping clients"),
            "endpoint": "retention.dashboard",
            "description": _(
                "Clients lost in the last 12 months, why, what it cost; won back; drying up."
            ),
        }
    ]


@hookimpl
def helpdesk_customer_panels(customer) -> dict[str, Any]:
    figures = figures_of([customer.id], utcnow().date(), service.rules())[customer.id]
    html = render_template(
        "retention/customer_panel.html",
        customer=customer,
        figures=figures,
        manager=service.manager_of(customer),
        reason=service.loss_reason_of(customer),
        reasons=service.reasons(),
        tasks=service.open_tasks_of_customer(customer),
    )
    return {"title": _("Keeping this client"), "html": Markup(html)}


@hookimpl
def helpdesk_openapi() -> dict[str, Any]:
    return document_part()
