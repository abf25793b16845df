"""Client categories (ordinary, VIP, problematic, employee, and any others) with their rules:
ticket priority and deadline, team, discount and prepayment, a warning banner; and the report
"Which category pays?".

Every rule is applied through hooks, so every entrance (form, portal, mail, API) obeys it.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import render_template, url_for
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy import select

from helpdesk import Ticket, hookimpl, render_panel, utcnow, write_intent
from plugins.categories import service
from plugins.categories.api import bp as api_bp
from plugins.categories.models import Category, CustomerCategory
from plugins.categories.openapi import document_part
from plugins.categories.views import bp

__version__ = "1.0.0"
HERE = Path(__file__).resolve().parent


@hookimpl
def helpdesk_config_defaults() -> dict[str, Any]:
    # The category of a newly registered customer (a name; "" for none).
    return {"CATEGORIES_DEFAULT": "Ordinary"}


@hookimpl
def helpdesk_blueprints() -> list:
    return [bp, api_bp]


@hookimpl
def helpdesk_migration_dirs() -> list[str]:
    return [str(HERE / "migrations")]


@hookimpl
def helpdesk_nav_items(agent) -> list[dict[str, Any]]:
    return [{"label": _("Categories"), "endpoint": "categories.index", "admin_only": True}]


@hookimpl
def helpdesk_reports() -> list[dict[str, Any]]:
    return [
        {
            "title": _("Which category pays?"),
            "endpoint": "categories.report_page",
            "description": _(
                "Revenue, orders, tickets and complaints per client category over a period."
            ),
        }
    ]


@hookimpl
def helpdesk_customers_registered(customers) -> None:
    with write_intent():
        service.assign_defaults(customers)


@hookimpl
def helpdesk_ticket_defaults(customer, ticket_data) -> dict[str, Any] | None:
    return _ticket_defaults(service.category_of(customer))


@hookimpl
def helpdesk_ticket_defaults_many(requests) -> list[dict[str, Any] | None]:
    categories = service.categories_of(request["customer"].id for request in requests)
    return [_ticket_defaults(categories.get(request["customer"].id)) for request in requests]


def _ticket_defaults(category: Category | None) -> dict[str, Any] | None:
    """What a ticket of a customer in ``category`` gets: its priority, first-response time,
    team and agent."""
    if category is None:
        return None
    proposal: dict[str, Any] = {}
    if category.priority:
        proposal["priority"] = category.priority
    if category.first_response_hours:
        proposal["due_at"] = utcnow() + timedelta(hours=category.first_response_hours)
    if category.team_id:
        proposal["team_id"] = category.team_id
    if category.assignee_id:
        proposal["assignee_id"] = category.assignee_id
    return proposal or None


@hookimpl
def helpdesk_price_policy(customer, amount) -> dict[str, Any] | None:
    category = service.category_of(customer)
    if category is None:
        return None
    return {
        "discount_percent": category.discount_percent,
        "prepayment_required": category.prepayment_required,
        "reason": category.name,
    }


@hookimpl
def helpdesk_ticket_panels(ticket) -> dict[str, Any] | None:
    category = service.category_of_id(ticket.customer_id)
    if category is None or service.is_plain_default(category):
        return None
    html = render_panel("categories/ticket_panel.html", category=category, ticket=ticket)
    return {"title": _("Client category"), "html": html}


@hookimpl
def helpdesk_customer_panels(customer) -> dict[str, Any]:
    html = render_template(
        "categories/customer_panel.html",
        customer=customer,
        category=service.category_of(customer),
        choices=service.list_categories(include_retired=False),
        history=service.customer_history(customer),
        action=url_for("categories.change_customer", customer_id=customer.id),
    )
    return {"title": _("Client category"), "html": Markup(html)}


@hookimpl
def helpdesk_queue_badges(tickets) -> dict[int, list[dict[str, str]]]:
    found = service.own_categories_of(ticket.customer_id for ticket in tickets)
    title = _("Client category")
    badges = {}
    for ticket in tickets:
        category = found.get(ticket.customer_id)
        if category is not None:
            badges[ticket.id] = [{"label": category.name, "title": title, "tone": category.color}]
    return badges


def _filter_by_category(query, value: str):
    """Tickets of customers in the category ``value`` (an id)."""
    in_category = select(CustomerCategory.customer_id).where(
        CustomerCategory.category_id == int(value)
    )
    default = service.default_category()
    if default is not None and default.id == int(value):
        anywhere = select(CustomerCategory.customer_id)
        return query.where(
            Ticket.customer_id.in_(in_category) | Ticket.customer_id.not_in(anywhere)
        )
    return query.where(Ticket.customer_id.in_(in_category))


@hookimpl
def helpdesk_queue_filters() -> list[dict[str, Any]]:
    return [
        {
            "name": "category",
            "label": _("Client category"),
            "choices": lambda: [(str(c.id), c.name) for c in service.list_categories()],
            "apply": _filter_by_category,
        }
    ]


def _ref(category: Category | None) -> dict[str, Any] | None:
    return None if category is None else {"id": category.id, "name": category.name}


@hookimpl
def helpdesk_customer_groupings() -> dict[str, Any]:
    default = service.default_category()
    return {
        "key": "category",
        "label": _("Client category"),
        "query": select(CustomerCategory.customer_id, Category.name).join(
            Category, Category.id == CustomerCategory.category_id
        ),
        "otherwise": default.name if default is not None else _("None"),
    }


@hookimpl
def helpdesk_customer_json(customers) -> dict[int, dict[str, Any]]:
    found = service.categories_of(customer.id for customer in customers)
    return {customer.id: {"category": _ref(found.get(customer.id))} for customer in customers}


@hookimpl
def helpdesk_ticket_json(tickets) -> dict[int, dict[str, Any]]:
    found = service.categories_of(ticket.customer_id for ticket in tickets)
    return {
        ticket.id: {"categories_category": _ref(found.get(ticket.customer_id))}
        for ticket in tickets
    }


@hookimpl
def helpdesk_openapi() -> dict[str, Any]:
    return document_part()
