"""The plugin's pages: card lookup (``/cards``, the top-bar link; a barcode scanner types the
number and Enter), the printable card page with its barcode, the statement with CSV export, the
agent's actions (issue, adjust, block, replace; reactivate for administrators), accrual rates
per client category, and the report ``/reports/loyalty``."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable

import barcode
from barcode.writer import SVGWriter
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup

from helpdesk import (
    Conflict,
    Customer,
    NotFound,
    ValidationError,
    admin_required,
    db,
    login_required,
)
from plugins.loyalty import cards, ledger, rates, report, service, tiers
from plugins.loyalty.ledger import CardRefused, NotAllowed
from plugins.loyalty.models import Card

bp = Blueprint("loyalty", __name__, template_folder="templates")
MAX_ID = 2**31 - 1
CARD_URL = "/cards/<number>"
_STYLE_FILL = re.compile(r'style="fill:(\w+);?"')


def _card(number: str) -> Card:
    try:
        return cards.card_by_number(number)
    except (ValidationError, NotFound):
        abort(404)


def barcode_svg(number: str) -> Markup:
    """The number as a Code 128 barcode, inline SVG without style attributes (CSP)."""
    out = io.BytesIO()
    code = barcode.get("code128", number, writer=SVGWriter())
    code.write(out, options={"write_text": False, "module_height": 12.0})
    svg = out.getvalue().decode()
    svg = svg[svg.index("<svg") :]
    svg = _STYLE_FILL.sub(r'fill="\1"', svg).replace("<svg ", '<svg role="img" ', 1)
    return Markup(svg)


@bp.get("/cards")
@login_required
def lookup():
    """Find a card by number; one found opens its page."""
    raw = request.args.get("number", "")
    if not raw:
        return render_template("loyalty/lookup.html", number="", error=None)
    try:
        card = cards.card_by_number(raw)
    except ValidationError as exc:
        error = exc.errors.get("number", exc.message)
        return render_template("loyalty/lookup.html", number=raw, error=error), 422
    except NotFound:
        return render_template("loyalty/lookup.html", number=raw, error=_("No such card.")), 404
    return redirect(url_for(".card", number=card.number))


@bp.get(CARD_URL)
@login_required
def card(number: str):
    """The printable card (number, name, barcode), balance, tier, history and actions."""
    found = _card(number)
    customer = db.session.get(Customer, found.customer_id)
    return render_template(
        "loyalty/card.html",
        card=found,
        customer=customer,
        barcode=barcode_svg(found.number),
        standing=tiers.standing(customer.id),
        movements=ledger.ledger_page(found, 1, 10)[0],
        history=service.history(found),
        replaced_by=db.session.get(Card, found.replaced_by_id) if found.replaced_by_id else None,
        currency=ledger.currency(),
    )


@bp.get(CARD_URL + "/statement")
@login_required
def statement(number: str):
    """Every movement of the card; ``?format=csv`` downloads it."""
    found = _card(number)
    if request.args.get("format") == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(
            [
                "id",
                "created_at",
                "kind",
                "amount",
                "balance_after",
                "owed_after",
                "order_reference",
                "reason",
            ]
        )
        for row in ledger.all_movements(found):
            entry = ledger.entry_json(row)
            writer.writerow(
                [
                    entry[k]
                    for k in (
                        "id",
                        "created_at",
                        "kind",
                        "amount",
                        "balance_after",
                        "owed_after",
                        "order_reference",
                        "reason",
                    )
                ]
            )
        name = f"card-{found.number}.csv"
        return Response(
            out.getvalue(),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return render_template(
        "loyalty/statement.html",
        card=found,
        movements=list(ledger.all_movements(found)),
        currency=ledger.currency(),
    )


def _back(found: Card):
    return redirect(url_for(".card", number=found.number), 303)


def _failed(found: Card, exc: Exception):
    db.session.rollback()
    if isinstance(exc, ValidationError):
        message = "; ".join(f"{k}: {v}" for k, v in exc.errors.items())
    else:
        message = getattr(exc, "message", str(exc))
    flash(_("Not done: %(e)s", e=message), "error")
    return _back(found)


@bp.post(f"/cards/customers/<int(max={MAX_ID}):customer_id>")
@login_required
def issue(customer_id: int):
    """An agent issues a card to a customer."""
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        abort(404)
    try:
        found = cards.issue_card(customer, current_user, request.form.get("reason", ""))
    except (Conflict, ValidationError) as exc:
        db.session.rollback()
        flash(_("Not done: %(e)s", e=getattr(exc, "message", "")), "error")
        return redirect(url_for("customers.show", customer_id=customer_id), 303)
    flash(_("Card issued."), "success")
    return _back(found)


def _card_action(number: str, act: Callable[[Card], object], done: str):
    """Do ``act`` to the card ``number`` and commit; back to the card (or to the card ``act``
    returns, a replacement) with ``done``, or with what was refused and why."""
    found = _card(number)
    try:
        outcome = act(found)
        db.session.commit()
    except (ValidationError, CardRefused, NotAllowed, Conflict) as exc:
        return _failed(found, exc)
    flash(done, "success")
    return _back(outcome if isinstance(outcome, Card) else found)


@bp.post(CARD_URL + "/adjust")
@login_required
def adjust(number: str):
    """Add or take bonus by hand, with a reason."""
    data = {"amount": request.form.get("amount", ""), "reason": request.form.get("reason")}
    return _card_action(
        number, lambda card: ledger.adjust(card, data, current_user), _("Balance adjusted.")
    )


@bp.post(CARD_URL + "/block")
@login_required
def block(number: str):
    """Block a lost or stolen card."""
    reason = request.form.get("reason")
    return _card_action(
        number, lambda card: cards.block_card(card, current_user, reason), _("Card blocked.")
    )


@bp.post(CARD_URL + "/replace")
@login_required
def replace(number: str):
    """A new card for this one; the balance moves to it."""
    reason = request.form.get("reason")
    return _card_action(
        number, lambda card: ledger.replace(card, current_user, reason), _("Card replaced.")
    )


@bp.post(CARD_URL + "/reactivate")
@admin_required
def reactivate(number: str):
    """An administrator makes a blocked card active again."""
    reason = request.form.get("reason")
    return _card_action(
        number,
        lambda card: cards.reactivate_card(card, current_user, reason),
        _("Card reactivated."),
    )


@bp.route("/cards/rates", methods=["GET", "POST"])
@admin_required
def category_rates():
    """Accrual percent per client category (when the categories plugin is enabled)."""
    errors: dict[str, str] = {}
    choices = rates.category_choices()
    if request.method == "POST":
        for value, _name in choices:
            try:
                rates.set_rate(int(value), request.form.get(f"rate_{value}", ""))
            except ValidationError as exc:
                db.session.rollback()
                errors[value] = exc.errors["accrual_percent"]
        if not errors:
            flash(_("Rates saved."), "success")
            return redirect(url_for(".category_rates"), 303)
    return render_template(
        "loyalty/rates.html",
        choices=choices,
        rates={str(k): v for k, v in rates.rates().items()},
        form=request.form,
        errors=errors,
        default=current_app.config["LOYALTY_ACCRUAL_PERCENT"],
    ), (422 if errors else 200)


@bp.get("/reports/loyalty")
@login_required
def report_page():
    """Bonus per month (accrued, redeemed, expired, liability) and tiers; SVG chart, CSV."""
    months = report.monthly()
    if request.args.get("format") == "csv":
        return Response(
            report.to_csv(months),
            mimetype="text/csv",
            headers={"Content-Disposition": 'attachment; filename="bonuses.csv"'},
        )
    return render_template(
        "loyalty/report.html",
        months=months,
        bars=report.chart_bars(months),
        tiers=report.tier_distribution(),
        currency=ledger.currency(),
    )
