"""Customer pages for agents: the list with search, a customer's page, create and edit."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required

from helpdesk.core import customers, orders
from helpdesk.core.errors import Conflict, ValidationError
from helpdesk.core.models import Customer, utcnow
from helpdesk.core.validation import clean_choice, clean_page, clean_text
from helpdesk.extensions import db

bp = Blueprint("customers", __name__)

FORM_FIELDS = ("email", "name", "phone", "notes")
ORDER_FIELDS = ("date", "amount", "currency", "channel", "reference")
MAX_ID = 2**31 - 1  # the largest id an INTEGER column holds; larger ones are simply not found
CUSTOMER_URL = f"/customers/<int(max={MAX_ID}):customer_id>"


@bp.before_request
@login_required
def _require_login() -> None:
    """Every customer page is for logged-in agents only."""


def _form_data() -> dict[str, str]:
    return {field: request.form.get(field, "") for field in FORM_FIELDS}


def _customer_or_404(customer_id: int) -> Customer:
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        abort(404)
    return customer


def _email_owner(email: str, other_than: int | None = None) -> Customer | None:
    """The customer who already has ``email``, to link to after a clash."""
    owner = customers.customer_by_email(email[:254])
    return owner if owner is not None and owner.id != other_than else None


@bp.route("/customers")
def index():
    """The customer list: newest first or by name, searched by name, e-mail or phone."""
    config = current_app.config
    q = clean_text(
        request.args.get("q", ""), "q", max_length=config["MAX_SEARCH_LENGTH"], required=False
    )
    sort = clean_choice(request.args.get("sort") or "newest", "sort", customers.CUSTOMER_SORTS)
    page = customers.list_customers(
        q, sort=sort, page=clean_page(request.args.get("page")), per_page=config["PAGE_SIZE"]
    )
    return render_template("customers/index.html", result=page, q=q, sort=sort)


@bp.route("/customers/new", methods=["GET", "POST"])
def new():
    """Register a customer; an e-mail already on file links to that customer instead."""
    form = _form_data()
    errors: dict[str, str] = {}
    existing = None
    status = 200
    if request.method == "POST":
        try:
            customer = customers.register_customer(form)
        except ValidationError as exc:
            errors, status = exc.errors, 422
        except Conflict:
            existing = _email_owner(form["email"])
            errors = {"email": _("A customer with this e-mail already exists.")}
            status = 409
        else:
            return redirect(url_for("customers.show", customer_id=customer.id), 303)
    return render_template(
        "customers/form.html", customer=None, form=form, errors=errors, existing=existing
    ), status


def _render_show(
    customer: Customer,
    order_form: dict[str, str] | None = None,
    order_errors: dict[str, str] | None = None,
):
    """The customer's page; ``order_form`` keeps what was typed into the order form."""
    size = current_app.config["PAGE_SIZE"]
    tickets, more = customers.recent_tickets(customer, size)
    if order_form is None:
        order_form = {
            "date": utcnow().date().isoformat(),
            "currency": current_app.config["DEFAULT_CURRENCY"],
        }
    return render_template(
        "customers/show.html",
        customer=customer,
        tickets=tickets,
        more=more,
        order_page=orders.customer_orders(
            customer, clean_page(request.args.get("orders_page")), size
        ),
        totals=orders.customer_totals(customer),
        order_form=order_form,
        order_errors=order_errors or {},
    )


@bp.route(CUSTOMER_URL)
def show(customer_id: int):
    """A customer's contact details, notes, most recent tickets, and orders with totals."""
    return _render_show(_customer_or_404(customer_id))


@bp.post(CUSTOMER_URL + "/orders")
def add_order(customer_id: int):
    """Record an order from the form on the customer's page (422 keeps what was typed)."""
    customer = _customer_or_404(customer_id)
    form = {field: request.form.get(field, "") for field in ORDER_FIELDS}
    try:
        orders.record_order(
            customer,
            ordered_on=form["date"],
            amount=form["amount"],
            currency=form["currency"],
            channel=form["channel"],
            reference=form["reference"] or None,
            actor=current_user,
        )
    except orders.DuplicateOrder as exc:
        flash(
            _(
                "Order %(reference)s was already recorded; nothing changed.",
                reference=exc.order.reference,
            ),
            "info",
        )
    except ValidationError as exc:
        db.session.rollback()
        return _render_show(customer, form, exc.errors), 422
    else:
        flash(_("Order recorded."), "info")
    return redirect(url_for("customers.show", customer_id=customer_id) + "#orders", 303)


@bp.route(CUSTOMER_URL + "/edit", methods=["GET", "POST"])
def edit(customer_id: int):
    """Change a customer's e-mail, name, phone or notes."""
    customer = _customer_or_404(customer_id)
    errors: dict[str, str] = {}
    existing = None
    if request.method == "POST":
        form = _form_data()
        try:
            customers.update_customer(customer, form)
        except ValidationError as exc:
            db.session.rollback()
            errors = exc.errors
            if "email" in errors:
                existing = _email_owner(form["email"], other_than=customer_id)
        else:
            return redirect(url_for("customers.show", customer_id=customer_id), 303)
    else:
        form = {field: getattr(customer, field) or "" for field in FORM_FIELDS}
    return render_template(
        "customers/form.html", customer=customer, form=form, errors=errors, existing=existing
    ), 422 if errors else 200
