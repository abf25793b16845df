"""The plugin's REST API under ``/api/v1`` (the core's bearer tokens): categories, a
customer's category and their price policy."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, g, jsonify, request, url_for

from helpdesk import Customer, api_auth_required, db, json_body, price_policy
from plugins.categories import service
from plugins.categories.models import Category

bp = Blueprint("categories_api", __name__, url_prefix="/api/v1")
MAX_ID = 2**31 - 1


def category_json(category: Category) -> dict[str, Any]:
    """A category and its rules as JSON (money and percentages as strings)."""
    return {
        "id": category.id,
        "name": category.name,
        "color": category.color,
        "position": category.position,
        "retired": category.retired,
        "priority": category.priority or None,
        "first_response_hours": category.first_response_hours,
        "team_id": category.team_id,
        "assignee_id": category.assignee_id,
        "discount_percent": str(category.discount_percent),
        "prepayment_required": category.prepayment_required,
        "warning": category.warning,
    }


def _customer(customer_id: int) -> Customer:
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        abort(404)
    return customer


@bp.get("/categories")
@api_auth_required
def list_categories():
    """Every category with its rules, in order (retired ones last)."""
    return jsonify({"items": [category_json(c) for c in service.list_categories()]})


@bp.post("/categories")
@api_auth_required
def create_category():
    """Add a category (administrators only)."""
    if not g.api_agent.is_admin:
        abort(403, description="Only administrators may do this.")
    category = service.create_category(json_body(exact_numbers=True))
    response = jsonify(category_json(category))
    response.status_code = 201
    response.headers["Location"] = url_for(".list_categories")
    return response


@bp.put(f"/customers/<int(max={MAX_ID}):customer_id>/category")
@api_auth_required
def set_customer_category(customer_id: int):
    """Put the customer in the category named ``category``, with an optional ``reason``."""
    customer = _customer(customer_id)
    data = json_body(exact_numbers=True)
    category = service.choosable(data.get("category"))
    service.set_customer_category(
        customer, category, agent=g.api_agent, reason=data.get("reason", "")
    )
    return jsonify({"id": category.id, "name": category.name})


@bp.get(f"/customers/<int(max={MAX_ID}):customer_id>/price-policy")
@api_auth_required
def customer_price_policy(customer_id: int):
    """What the customer pays for ``amount`` and whether they must pay first."""
    customer = _customer(customer_id)
    policy = price_policy(customer, request.args.get("amount", ""))
    return jsonify(
        {
            "amount": str(policy["amount"]),
            "price": str(policy["price"]),
            "discount_percent": str(policy["discount_percent"]),
            "prepayment_required": policy["prepayment_required"],
            "reasons": policy["reasons"],
        }
    )
