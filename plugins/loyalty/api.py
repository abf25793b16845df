"""The plugin's REST API under ``/api/v1`` (the core's bearer tokens): cards, their ledger,
redemption and adjustment (idempotent with ``Idempotency-Key``), block and replace."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, g, jsonify, request, url_for

from helpdesk import Customer, ValidationError, api_auth_required, db, json_body
from plugins.loyalty import cards, ledger, service
from plugins.loyalty.ledger import Answer, CardRefused, NotAllowed

bp = Blueprint("loyalty_api", __name__, url_prefix="/api/v1")
MAX_ID = 2**31 - 1
CARD_URL = "/cards/<number>"
MAX_PAGE = 100_000


def _refused(exc: CardRefused):
    body = {"error": exc.code, "message": exc.message, "balance": ledger.text(exc.balance)}
    return jsonify(body), 409


def _card_answer(card, status: int = 200):
    return jsonify(service.card_json(card)), status


@bp.post(f"/customers/<int(max={MAX_ID}):customer_id>/card")
@api_auth_required
def issue(customer_id: int):
    """Issue a card to the customer: 201 with the card; 409 if they hold an active one."""
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        abort(404)
    card = cards.issue_card(customer, agent=g.api_agent, reason="API")
    response = jsonify(service.card_json(card))
    response.status_code = 201
    response.headers["Location"] = url_for(".get_card", number=card.number)
    return response


@bp.get(CARD_URL)
@api_auth_required
def get_card(number: str):
    """A card by its number (spaces and dashes ignored)."""
    return _card_answer(cards.card_by_number(number))


@bp.get(CARD_URL + "/ledger")
@api_auth_required
def get_ledger(number: str):
    """A page of the card's movements, newest first."""
    card = cards.card_by_number(number)
    raw = request.args.get("page", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise ValidationError({"page": f"must be a whole number from 1 to {MAX_PAGE}"})
    page, per_page = int(raw), current_app.config["PAGE_SIZE"]
    rows, has_next = ledger.ledger_page(card, page, per_page)
    return jsonify(
        {
            "items": [ledger.entry_json(row) for row in rows],
            "page": page,
            "per_page": per_page,
            "has_next": has_next,
            "next_page": page + 1 if has_next else None,
        }
    )


def _idempotent(endpoint: str, number: str, act) -> Any:
    card = cards.card_by_number(number)
    data = json_body()
    key = request.headers.get("Idempotency-Key")
    try:
        answer = ledger.once(card, endpoint, key, data, lambda: act(card, data))
    except CardRefused as exc:
        db.session.rollback()
        return _refused(exc)
    except NotAllowed as exc:
        db.session.rollback()
        return jsonify({"error": "forbidden", "message": exc.message}), 403
    return jsonify(answer.body), answer.status


def _after(card, entry) -> Answer:
    body = service.card_json(card)
    body["entry"] = ledger.entry_json(entry) if entry is not None else None
    return Answer(200, body)


@bp.post(CARD_URL + "/redeem")
@api_auth_required
def redeem(number: str):
    """Spend bonus against a recorded order: ``{"amount", "order_reference"}``."""
    return _idempotent(
        "redeem",
        number,
        lambda card, data: _after(card, ledger.redeem(card, data, g.api_agent)),
    )


@bp.post(CARD_URL + "/adjust")
@api_auth_required
def adjust(number: str):
    """Add (or, negative, take) bonus by hand: ``{"amount", "reason"}``."""
    return _idempotent(
        "adjust",
        number,
        lambda card, data: _after(card, ledger.adjust(card, data, g.api_agent)),
    )


@bp.post(CARD_URL + "/block")
@api_auth_required
def block(number: str):
    """Block the card (lost or stolen): ``{"reason"}``."""
    card = cards.card_by_number(number)
    reason = json_body().get("reason") if request.content_length else None
    return _card_answer(cards.block_card(card, g.api_agent, reason or "blocked through the API"))


@bp.post(CARD_URL + "/replace")
@api_auth_required
def replace(number: str):
    """A new card for this one; the balance moves to it. Answers the new card (201)."""
    card = cards.card_by_number(number)
    reason = json_body().get("reason") if request.content_length else None
    new = ledger.replace(card, g.api_agent, reason or "replaced through the API")
    db.session.commit()
    return _card_answer(new, 201)
