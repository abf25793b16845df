"""The plugin's REST API under ``/api/v1`` (the core's bearer tokens): the summary, the clients
of a status, and a client's loss reason and account manager. Money is per currency, as strings."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, g, jsonify, request

from helpdesk import Customer, ValidationError, api_auth_required, db, json_body
from plugins.retention import service

bp = Blueprint("retention_api", __name__, url_prefix="/api/v1")
MAX_ID = 2**31 - 1
MAX_PAGE = 100_000


def _as_of():
    """The ``as_of`` argument; a malformed one is a 400."""
    try:
        return service.parse_as_of(request.args.get("as_of"))
    except ValidationError as exc:
        abort(400, description=f"as_of {exc.errors['as_of']}")


def _page() -> int:
    raw = request.args.get("page", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        abort(400, description=f"page must be a whole number from 1 to {MAX_PAGE}")
    return int(raw)


def _customer(customer_id: int) -> Customer:
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        abort(404)
    return customer


@bp.get("/retention/summary")
@api_auth_required
def summary():
    """Lost in the last 12 months (count, revenue before leaving, lifetime value lost), won
    back, drying up, and the reasons, at ``as_of`` (default today)."""
    return jsonify(service.summary(_as_of()))


@bp.get("/retention/customers")
@api_auth_required
def customers():
    """A page of the clients of ``status`` at ``as_of``, latest last order first."""
    as_of = _as_of()
    page = _page()
    status = request.args.get("status", "")
    if status not in service.LIST_STATUSES:
        abort(400, description=f"status must be one of {', '.join(service.LIST_STATUSES)}")
    per_page = current_app.config["RETENTION_PAGE_SIZE"]
    found = service.clients(as_of, status)
    chunk = found[(page - 1) * per_page : page * per_page + 1]
    ids = [item.customer_id for item in chunk[:per_page]]
    rows = service.with_figures(service.client_rows(ids, as_of), as_of)
    has_next = len(chunk) > per_page
    return jsonify(
        {
            "as_of": as_of.isoformat(),
            "status": status,
            "total": len(found),
            "items": [service.row_json(row) for row in rows],
            "page": page,
            "per_page": per_page,
            "has_next": has_next,
            "next_page": page + 1 if has_next else None,
        }
    )


@bp.put(f"/customers/<int(max={MAX_ID}):customer_id>/loss-reason")
@api_auth_required
def put_loss_reason(customer_id: int):
    """Record why the client left: ``reason`` (one of the configured ones), ``note``."""
    customer = _customer(customer_id)
    data = json_body()
    row = service.record_loss_reason(customer, data.get("reason"), data.get("note"), g.api_agent)
    configured = service.reasons()
    return jsonify(
        {
            "customer_id": customer.id,
            "reason": row.reason,
            "beyond_control": configured.get(row.reason),
            "note": row.note,
        }
    )


@bp.put(f"/customers/<int(max={MAX_ID}):customer_id>/account-manager")
@api_auth_required
def put_account_manager(customer_id: int):
    """Set the client's account manager by e-mail (``null`` removes it)."""
    customer = _customer(customer_id)
    data = json_body()
    if "agent" not in data:
        raise ValidationError({"agent": "is required (an agent's e-mail, or null)"})
    agent = service.agent_by_email(data["agent"])
    service.set_account_manager(customer, agent)
    return jsonify(
        {
            "customer_id": customer.id,
            "account_manager": None
            if agent is None
            else {"id": agent.id, "email": agent.email, "name": agent.name},
        }
    )
