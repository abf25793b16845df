"""The rules of client categories: create, change, retire and delete categories; give a customer
a category (with history); read each customer's category in one query. Views and hooks call
these functions; nothing else writes the plugin's tables."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import current_app
from sqlalchemy import Integer, Select, bindparam, func, insert, inspect, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from helpdesk import Agent, Conflict, Customer, Team, ValidationError, db, utcnow
from plugins.categories.models import (
    COLORS,
    PRIORITY_BUMPS,
    Category,
    CategoryChange,
    CustomerCategory,
)

MAX_NAME = 60
MAX_WARNING = 2000
MAX_REASON = 1000
MAX_HOURS = 24 * 365
HUNDRED = Decimal(100)


# --- reading --------------------------------------------------------------------------------


def list_categories(*, include_retired: bool = True) -> list[Category]:
    """The categories in their chosen order (retired ones last when included)."""
    query = select(Category).order_by(Category.retired, Category.position, Category.name_key)
    if not include_retired:
        query = query.where(Category.retired.is_(False))
    return list(db.session.scalars(query))


def category_by_name(name: str) -> Category | None:
    """The category called ``name`` (in any case), retired or not."""
    return db.session.scalar(select(Category).where(Category.name_key == name.strip().casefold()))


def _default_key() -> str:
    return str(current_app.config["CATEGORIES_DEFAULT"]).strip().casefold()


def is_plain_default(category: Category) -> bool:
    """Whether ``category`` is the default one with nothing for an agent to heed (no warning,
    no prepayment, no discount): a ticket page shows no panel for it."""
    return (
        category.name_key == _default_key()
        and not category.warning
        and not category.prepayment_required
        and not category.discount_percent
    )


def default_category() -> Category | None:
    """The category of customers nobody put in one (the ``CATEGORIES_DEFAULT`` setting)."""
    return category_by_name(str(current_app.config["CATEGORIES_DEFAULT"]))


def _categories_where(customers: Any) -> Select:
    """Each customer's (of those ``customers`` picks) own category, else the default one
    (when it exists)."""
    return (
        select(Customer.id, Category)
        .outerjoin(CustomerCategory, CustomerCategory.customer_id == Customer.id)
        .join(
            Category,
            Category.id
            == func.coalesce(
                CustomerCategory.category_id,
                select(Category.id)
                .where(Category.name_key == bindparam("default_key"))
                .scalar_subquery(),
            ),
        )
        .where(customers)
    )


# Built once: for a list of customers, and for one (no list to expand at every execution:
# a ticket page asks for one).
_CATEGORIES_OF = _categories_where(Customer.id.in_(bindparam("ids", expanding=True)))
_CATEGORY_OF = _categories_where(Customer.id == bindparam("customer_id"))


def categories_of(customer_ids: Iterable[int]) -> dict[int, Category]:
    """Each customer's category (the default one when none was given), in one query."""
    ids = sorted(set(customer_ids))
    if not ids:
        return {}
    rows = db.session.execute(_CATEGORIES_OF, {"ids": ids, "default_key": _default_key()})
    return {customer_id: category for customer_id, category in rows}


def own_categories_of(customer_ids: Iterable[int]) -> dict[int, Category]:
    """The category of each of these customers who is in one other than the default (the
    exceptions a list of tickets marks), in one query."""
    default_key = _default_key()
    found = categories_of(customer_ids)
    return {i: category for i, category in found.items() if category.name_key != default_key}


def category_of(customer: Customer) -> Category | None:
    """The customer's category (the default one when none was given)."""
    return category_of_id(customer.id)


def category_of_id(customer_id: int) -> Category | None:
    """The category of the customer with this id (the default one when none was given)."""
    row = db.session.execute(
        _CATEGORY_OF, {"customer_id": customer_id, "default_key": _default_key()}
    ).first()
    return row[1] if row else None


def customer_history(customer: Customer, limit: int = 20) -> list[tuple[CategoryChange, str]]:
    """The customer's latest category changes, newest first, with the agent's name."""
    rows = db.session.execute(
        select(CategoryChange, Agent.name)
        .outerjoin(Agent, Agent.id == CategoryChange.agent_id)
        .where(CategoryChange.customer_id == customer.id)
        .order_by(CategoryChange.id.desc())
        .limit(limit)
    ).all()
    return [(change, name or "") for change, name in rows]


def usage_counts() -> dict[int, int]:
    """How many customers were put in each category (the default's count leaves out the
    customers who were never put in any)."""
    rows = db.session.execute(
        select(CustomerCategory.category_id, func.count()).group_by(CustomerCategory.category_id)
    )
    return dict(rows.all())


# --- checking input -------------------------------------------------------------------------


def clean_name(value: Any) -> str:
    """A category name: 1-60 characters of text, no control characters."""
    name = " ".join(str(value if value is not None else "").split())
    if not name:
        raise ValidationError({"name": "is required"})
    if not name.isprintable():
        raise ValidationError({"name": "must not contain control characters"})
    if len(name) > MAX_NAME:
        raise ValidationError({"name": f"is too long (at most {MAX_NAME} characters)"})
    return name


def clean_discount(value: Any) -> Decimal:
    """A discount percentage from 0 to 100 with at most 2 decimals (``NaN``, infinities and
    ``1e309`` are refused)."""
    if value is None or value == "":
        return Decimal(0)
    if isinstance(value, bool) or (isinstance(value, float) and not math.isfinite(value)):
        raise ValidationError({"discount_percent": "must be a number from 0 to 100"})
    try:
        percent = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValidationError({"discount_percent": "must be a number from 0 to 100"}) from None
    if not percent.is_finite() or not 0 <= percent <= HUNDRED:
        raise ValidationError({"discount_percent": "must be a number from 0 to 100"})
    if percent != percent.quantize(Decimal("0.01")):
        raise ValidationError({"discount_percent": "may have at most 2 decimals"})
    return percent.quantize(Decimal("0.01"))


def _whole(value: Any, field: str, low: int, high: int) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool | float):
        raise ValidationError({field: "must be a whole number"})
    text = str(value).strip()
    if not (text.isascii() and text.lstrip("-").isdigit()) or not low <= int(text) <= high:
        raise ValidationError({field: f"must be a whole number from {low} to {high}"})
    return int(text)


def _flag(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in (None, "", "0", "false", "off"):
        return False
    if value in ("1", "true", "on", "yes"):
        return True
    raise ValidationError({field: "must be true or false"})


def _clean_team(value: Any) -> int | None:
    team_id = _whole(value, "team_id", 1, 2**31 - 1)
    if team_id is not None and db.session.get(Team, team_id) is None:
        raise ValidationError({"team_id": "no such team"})
    return team_id


def _clean_assignee(value: Any) -> int | None:
    agent_id = _whole(value, "assignee_id", 1, 2**31 - 1)
    agent = db.session.get(Agent, agent_id) if agent_id is not None else None
    if agent_id is not None and (agent is None or not agent.active):
        raise ValidationError({"assignee_id": "no such active agent"})
    return agent_id


def _clean_text(value: Any, field: str, limit: int) -> str:
    text = str(value if value is not None else "").strip()
    if len(text) > limit:
        raise ValidationError({field: f"is too long (at most {limit} characters)"})
    return text


def clean_rules(data: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``data`` a category has, checked; every error is reported at once."""
    cleaners = {
        "name": clean_name,
        "color": lambda v: _choice(v or "grey", "color", COLORS),
        "position": lambda v: _whole(v, "position", 0, 10_000) or 0,
        "priority": lambda v: _choice(v or "", "priority", PRIORITY_BUMPS),
        "first_response_hours": lambda v: _whole(v, "first_response_hours", 1, MAX_HOURS),
        "team_id": _clean_team,
        "assignee_id": _clean_assignee,
        "discount_percent": clean_discount,
        "prepayment_required": lambda v: _flag(v, "prepayment_required"),
        "warning": lambda v: _clean_text(v, "warning", MAX_WARNING),
        "retired": lambda v: _flag(v, "retired"),
    }
    clean: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field, cleaner in cleaners.items():
        if field not in data:
            continue
        try:
            clean[field] = cleaner(data[field])
        except ValidationError as exc:
            errors.update(exc.errors)
    if errors:
        raise ValidationError(errors)
    return clean


def _choice(value: Any, field: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValidationError({field: f"must be one of: {', '.join(c or 'none' for c in choices)}"})
    return str(value)


# --- writing --------------------------------------------------------------------------------


def _save(category: Category) -> Category:
    """Commit ``category``; a name another category has is a 422 on ``name``."""
    category.name_key = category.name.casefold()
    try:
        with db.session.begin_nested():
            db.session.add(category)
    except IntegrityError:
        db.session.rollback()
        raise ValidationError({"name": "another category has this name"}) from None
    db.session.commit()
    return category


def create_category(data: dict[str, Any]) -> Category:
    """A new category from ``name`` and optional rules (see ``clean_rules``); last in order
    unless a ``position`` is given."""
    clean = clean_rules({"name": data.get("name"), **data})
    if "position" not in data or clean.get("position") in (None, 0):
        top = db.session.scalar(select(func.max(Category.position))) or 0
        clean["position"] = top + 1
    clean.setdefault("discount_percent", Decimal(0))
    return _save(Category(**clean))


def update_category(category: Category, data: dict[str, Any]) -> Category:
    """Change any of the category's fields; the default category cannot be retired."""
    clean = clean_rules(data)
    if clean.get("retired") and _is_default(category):
        raise ValidationError({"retired": "the default category cannot be retired"})
    for field, value in clean.items():
        setattr(category, field, value)
    return _save(category)


def move_category(category: Category, step: int) -> None:
    """Move ``category`` one place up (``step`` -1) or down (+1) among the active ones."""
    order = list_categories(include_retired=False)
    if category not in order:
        return
    index = order.index(category)
    other = index + (1 if step > 0 else -1)
    if 0 <= other < len(order):
        order[index], order[other] = order[other], order[index]
        for position, item in enumerate(order, start=1):
            item.position = position
        db.session.commit()


def _is_default(category: Category) -> bool:
    return category.name_key == str(current_app.config["CATEGORIES_DEFAULT"]).casefold()


def delete_category(
    category: Category, *, reassign_to: Category | None = None, agent: Agent | None = None
) -> None:
    """Delete a category nobody is in; with ``reassign_to``, move its customers there first
    (each move on their history). Refuses the default category and one still in use."""
    if _is_default(category):
        raise Conflict(f"“{category.name}” is the default category and cannot be deleted")
    in_use = usage_counts().get(category.id, 0)
    if in_use and reassign_to is None:
        raise Conflict(
            f"“{category.name}” is the category of {in_use} customer(s): move them to another "
            "category first, or retire it instead (retired categories stay on history)"
        )
    if reassign_to is not None:
        if reassign_to.id == category.id or reassign_to.retired:
            raise ValidationError({"reassign_to": "choose another category that is not retired"})
        _move_all(category, reassign_to, agent)
    db.session.delete(category)
    db.session.commit()


def _move_all(old: Category, new: Category, agent: Agent | None) -> None:
    now = utcnow()
    reason = f"category “{old.name}” deleted"
    db.session.execute(
        insert(CategoryChange).from_select(
            [
                "customer_id",
                "old_category_id",
                "new_category_id",
                "old_name",
                "new_name",
                "agent_id",
                "reason",
                "created_at",
            ],
            select(
                CustomerCategory.customer_id,
                literal(old.id),
                literal(new.id),
                literal(old.name),
                literal(new.name),
                literal(agent.id if agent else None, Integer),
                literal(reason),
                literal(now, CategoryChange.created_at.type),
            ).where(CustomerCategory.category_id == old.id),
        )
    )
    db.session.execute(
        update(CustomerCategory)
        .where(CustomerCategory.category_id == old.id)
        .values(category_id=new.id, assigned_at=now)
    )


def choosable(value: Any, field: str = "category") -> Category:
    """The active category named (or numbered) ``value``; retired ones cannot be chosen."""
    text = str(value if value is not None else "").strip()
    category = None
    if text.isascii() and text.isdigit() and len(text) < 10:
        category = db.session.get(Category, int(text))
    if category is None and text:
        category = category_by_name(text)
    if category is None:
        raise ValidationError({field: "no such category"})
    if category.retired:
        raise ValidationError({field: f"“{category.name}” is retired and cannot be chosen"})
    return category


def set_customer_category(
    customer: Customer, category: Category, *, agent: Agent | None, reason: Any = ""
) -> CategoryChange | None:
    """Put ``customer`` in ``category`` and record who did it and why; ``None`` when they
    were in it already."""
    note = _clean_text(reason, "reason", MAX_REASON)
    if category.retired:
        raise ValidationError({"category": f"“{category.name}” is retired and cannot be chosen"})
    current = category_of(customer)
    if current is not None and current.id == category.id:
        return None
    row = db.session.get(CustomerCategory, customer.id) or CustomerCategory(customer_id=customer.id)
    row.category_id, row.assigned_at = category.id, utcnow()
    change = CategoryChange(
        customer_id=customer.id,
        old_category_id=current.id if current else None,
        old_name=current.name if current else "",
        new_category_id=category.id,
        new_name=category.name,
        agent_id=agent.id if agent else None,
        reason=note,
    )
    db.session.add_all([row, change])
    db.session.commit()
    return change


# Customers given their default category per statement (bind parameters stay far below
# SQLite's limit).
ASSIGN_CHUNK = 500
_HISTORY = insert(CategoryChange.__table__)


@functools.cache
def _assign_missing(dialect_name: str) -> Any:
    """For a database, built once: put those of the customers ``ids`` who exist and are in no
    category into ``category_id``, returning their ids (one who is in one already, even by a
    concurrent transaction, is skipped: ``ON CONFLICT DO NOTHING``)."""
    table = CustomerCategory.__table__
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    chosen = select(
        Customer.id,
        bindparam("category_id", type_=Integer),
        bindparam("now", type_=table.c.assigned_at.type),
    ).where(Customer.id.in_(bindparam("ids", expanding=True)))
    return (
        dialect.insert(table)
        .from_select(["customer_id", "category_id", "assigned_at"], chosen)
        .on_conflict_do_nothing(index_elements=["customer_id"])
        .returning(table.c.customer_id)
    )


def assign_defaults(customers: Sequence[Customer]) -> None:
    """Put newly registered customers in the default category (if it exists and is active),
    each with a "registered" history row, in a few statements and one commit. A customer
    already in a category (an agent chose one meanwhile) keeps it and gets no history row."""
    category = default_category()
    if category is None or category.retired:
        return
    ids = list(dict.fromkeys(inspect(customer).identity[0] for customer in customers))
    assign = _assign_missing(db.session.get_bind().dialect.name)
    now = utcnow()
    for start in range(0, len(ids), ASSIGN_CHUNK):
        chunk = ids[start : start + ASSIGN_CHUNK]
        given = set(
            db.session.scalars(assign, {"ids": chunk, "category_id": category.id, "now": now})
        )
        history = [
            {
                "customer_id": customer_id,
                "old_category_id": None,
                "old_name": "",
                "new_category_id": category.id,
                "new_name": category.name,
                "agent_id": None,
                "reason": "registered",
                "created_at": now,
            }
            for customer_id in chunk
            if customer_id in given
        ]
        if history:
            db.session.execute(_HISTORY, history)
    db.session.commit()
