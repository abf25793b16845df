"""Customers: one record per person, matched by e-mail without regard to case."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from helpdesk.core import events, search
from helpdesk.core.errors import Conflict, ValidationError
from helpdesk.core.models import OPEN_STATUSES, Customer, Ticket
from helpdesk.core.validation import clean_email, clean_phone, clean_text, email_key
from helpdesk.extensions import db


def customer_by_email(email: str) -> Customer | None:
    """The customer with this address, whatever its case."""
    return db.session.scalar(select(Customer).where(Customer.email_key == email_key(email)))


def clean_customer_fields(data: dict[str, Any]) -> dict[str, Any]:
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


def _new_customer(clean: dict[str, Any]) -> Customer | None:
    """Insert a customer, or ``None`` if another request inserted the address just now."""
    customer = Customer(
        email=clean["email"],
        email_key=email_key(clean["email"]),
        name=clean.get("name", ""),
        phone=clean.get("phone"),
        notes=clean.get("notes", ""),
        language=clean.get("language"),
    )
    try:
        with db.session.begin_nested():
            db.session.add(customer)
    except IntegrityError:
        return None
    events.queue("helpdesk_customer_registered", customer=customer)
    return customer


def register_customer(data: dict[str, Any]) -> Customer:
    """Create a customer from ``email`` and optional ``name``, ``phone``, ``notes``.

    Raises ``Conflict`` if the address already belongs to a customer.
    """
    clean = clean_customer_fields({"email": data.get("email"), **data})
    customer = None if customer_by_email(clean["email"]) else _new_customer(clean)
    if customer is None:
        raise Conflict(f"a customer with the e-mail {clean['email']} already exists")
    events.commit()
    return customer


def find_or_create_customer(email: Any, name: Any = "", phone: Any = None) -> Customer:
    """The customer with this address, created if new; fills a missing name or phone.

    Does not commit: callers make it part of their own change.
    """
    clean = clean_customer_fields({"email": email, "name": name, "phone": phone})
    customer = customer_by_email(clean["email"])
    if customer is None:
        return _new_customer(clean) or customer_by_email(clean["email"])
    if not customer.name and clean["name"]:
        customer.name = clean["name"]
        search.index_customer_tickets(customer.id)
    if not customer.phone and clean["phone"]:
        customer.phone = clean["phone"]
    return customer


def add_new_customers(emails: Sequence[str]) -> list[Customer]:
    """Customers for addresses already cleaned (``clean_email``) and looked up as unknown, in
    one flush, each with its ``helpdesk_customer_registered`` event queued: for imports, where
    one savepoint per customer would be slow. Does not commit. An address registered
    meanwhile by another request makes the flush raise ``IntegrityError``: roll back and
    look again."""
    created = [Customer(email=email, email_key=email_key(email), name="") for email in emails]
    db.session.add_all(created)
    db.session.flush()
    for customer in created:
        events.queue("helpdesk_customer_registered", customer=customer)
    return created


def update_customer(customer: Customer, data: dict[str, Any]) -> Customer:
    """Change any of ``email``, ``name``, ``phone``, ``notes``, ``language``."""
    clean = clean_customer_fields(data)
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


CUSTOMER_SORTS = ("newest", "name")
# A search that looks like a phone number (digits, spaces, + - . ( )) is also matched on phones.
_PHONE_QUERY = re.compile(r"[\d\s+\-.()]+")


@dataclass
class CustomerPage:
    """One page of customers and, per customer id, how many of their tickets are open."""

    customers: list[Customer]
    open_counts: dict[int, int]
    page: int
    per_page: int
    has_next: bool

    @property
    def has_prev(self) -> bool:
        return self.page > 1


def _like_escape(text: str) -> str:
    """``text`` with LIKE wildcards escaped, so ``%`` and ``_`` match themselves."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def open_ticket_counts(customer_ids: Sequence[int]) -> dict[int, int]:
    """How many open tickets each of ``customer_ids`` has (one grouped query)."""
    if not customer_ids:
        return {}
    rows = db.session.execute(
        select(Ticket.customer_id, func.count())
        .where(Ticket.customer_id.in_(customer_ids), Ticket.status.in_(OPEN_STATUSES))
        .group_by(Ticket.customer_id)
    )
    return {customer_id: count for customer_id, count in rows}


def list_customers(
    q: str = "", *, sort: str = "newest", page: int = 1, per_page: int = 25
) -> CustomerPage:
    """A page of customers whose name, e-mail or phone contains ``q`` (taken literally)."""
    query = select(Customer)
    if q:
        pattern = f"%{_like_escape(q)}%"
        conditions = [
            Customer.name.ilike(pattern, escape="\\"),
            Customer.email_key.like(f"%{_like_escape(email_key(q))}%", escape="\\"),
        ]
        digits = re.sub(r"\D", "", q)
        if digits and _PHONE_QUERY.fullmatch(q):
            conditions.append(Customer.phone.like(f"%{digits}%"))
        query = query.where(or_(*conditions))
    if sort == "name":
        query = query.order_by(Customer.name, Customer.id)
    else:
        query = query.order_by(Customer.id.desc())
    rows = list(db.session.scalars(query.limit(per_page + 1).offset((page - 1) * per_page)))
    customers = rows[:per_page]
    counts = open_ticket_counts([c.id for c in customers])
    return CustomerPage(customers, counts, page, per_page, has_next=len(rows) > per_page)


def recent_tickets(customer: Customer, limit: int) -> tuple[list[Ticket], bool]:
    """The customer's ``limit`` most recently active tickets, and whether there are more."""
    rows = list(
        db.session.scalars(
            select(Ticket)
            .options(joinedload(Ticket.assignee))
            .where(Ticket.customer_id == customer.id)
            .order_by(Ticket.last_activity_at.desc(), Ticket.id.desc())
            .limit(limit + 1)
        )
    )
    return rows[:limit], len(rows) > limit
