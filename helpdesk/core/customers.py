"""Customers: one record per person, matched by e-mail without regard to case."""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import select

from helpdesk.core import events, search
from helpdesk.core.errors import Conflict, ValidationError
from helpdesk.core.models import Customer
from helpdesk.core.validation import clean_email, clean_phone, clean_text, email_key
from helpdesk.extensions import db


def customer_by_email(email: str) -> Customer | None:
    """The customer with this address, whatever its case."""
    return db.session.scalar(select(Customer).where(Customer.email_key == email_key(email)))


def _clean_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Validate the customer fields present in ``data``; collect every error at once."""
    cleaners = {
        "email": lambda v: clean_email(v, "email"),
        "name": lambda v: clean_text(
            v, "name", max_length=current_app.config["MAX_NAME_LENGTH"], required=False
        ),
        "phone": lambda v: clean_phone(v, "phone"),
        "notes": lambda v: clean_text(
            v,
            "notes",
            max_length=current_app.config["MAX_NOTES_LENGTH"],
            required=False,
            multiline=True,
        ),
        "language": lambda v: clean_text(v, "language", max_length=16, required=False) or None,
    }
    clean: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field, cleaner in cleaners.items():
        if field in data:
            try:
                clean[field] = cleaner(data[field])
            except ValidationError as exc:
                errors.update(exc.errors)
    if errors:
        raise ValidationError(errors)
    return clean


def _new_customer(clean: dict[str, Any]) -> Customer:
    customer = Customer(
        email=clean["email"],
        email_key=email_key(clean["email"]),
        name=clean.get("name", ""),
        phone=clean.get("phone"),
        notes=clean.get("notes", ""),
        language=clean.get("language"),
    )
    db.session.add(customer)
    db.session.flush()
    events.queue("helpdesk_customer_registered", customer=customer)
    return customer


def register_customer(data: dict[str, Any]) -> Customer:
    """Create a customer from ``email`` and optional ``name``, ``phone``, ``notes``.

    Raises ``Conflict`` if the address already belongs to a customer.
    """
    clean = _clean_fields({"email": data.get("email"), **data})
    if customer_by_email(clean["email"]) is not None:
        raise Conflict(f"a customer with the e-mail {clean['email']} already exists")
    customer = _new_customer(clean)
    events.commit()
    return customer


def find_or_create_customer(email: Any, name: Any = "", phone: Any = None) -> Customer:
    """The customer with this address, created if new; fills a missing name or phone.

    Does not commit: callers make it part of their own change.
    """
    clean = _clean_fields({"email": email, "name": name, "phone": phone})
    customer = customer_by_email(clean["email"])
    if customer is None:
        return _new_customer(clean)
    if not customer.name and clean["name"]:
        customer.name = clean["name"]
        search.index_customer_tickets(customer.id)
    if not customer.phone and clean["phone"]:
        customer.phone = clean["phone"]
    return customer


def update_customer(customer: Customer, data: dict[str, Any]) -> Customer:
    """Change any of ``email``, ``name``, ``phone``, ``notes``, ``language``."""
    clean = _clean_fields(data)
    if "email" in clean and email_key(clean["email"]) != customer.email_key:
        if customer_by_email(clean["email"]) is not None:
            raise ValidationError({"email": "belongs to another customer"})
        customer.email_key = email_key(clean["email"])
    reindex = any(
        field in clean and clean[field] != getattr(customer, field) for field in ("email", "name")
    )
    for field, value in clean.items():
        setattr(customer, field, value)
    if reindex:
        search.index_customer_tickets(customer.id)
    events.commit()
    return customer
