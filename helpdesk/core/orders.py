"""Orders: a customer's purchases, the money the business features reason about.

Money is a ``Decimal`` parsed from text (never a float), rounded half-up to its currency's minor
units, and never summed across currencies. A currency's minor units come from the CLDR data
that Babel ships (``babel.numbers.get_currency_precision``): EUR and USD 2 places, JPY and ISK
0, KWD, BHD and TND 3, CLF 4.

An order's ``reference`` is its id in its ``source`` system (a shop, a CSV export, ``manual``);
recording the same (source, reference) again changes nothing, which makes imports and API
retries idempotent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from babel.numbers import get_currency_precision, is_currency
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from helpdesk.core import events
from helpdesk.core.errors import Conflict, ValidationError
from helpdesk.core.models import Agent, Customer, Order, OrderLine, OrderRefund, utcnow
from helpdesk.core.validation import clean_text
from helpdesk.extensions import db

# A plain decimal in ASCII digits with a point: "12.50", "-3", ".5", "1.2e3". Python's
# ``Decimal()`` alone would also take "NaN", "Infinity", "1_000" and non-ASCII digits.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?")
_DECIMAL_COMMA = re.compile(r"[+-]?[0-9]+,[0-9]+")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CURRENCY_CODE = re.compile(r"[A-Z]{3}")
MAX_AMOUNT_TEXT = 40
# ``orders.amount`` is NUMERIC(18, 4): at most 14 digits before the point. SQLite keeps NUMERIC
# in a double, exact to 15 significant digits, so the integer digits also leave room for the
# currency's places (EUR: 13, JPY: 14, KWD: 12): an amount reads back as it was written.
MAX_INTEGER_DIGITS = 14
MAX_SIGNIFICANT_DIGITS = 15
# ISO 4217 codes that are not money: "no currency" and "testing".
NOT_MONEY = frozenset({"XXX", "XTS"})
EARLIEST_DATE = date(1900, 1, 1)
MAX_CHANNEL_LENGTH = 32
MAX_SOURCE_LENGTH = 32
MAX_REFERENCE_LENGTH = 100
MAX_PRODUCT_LINE_LENGTH = 100
# At most this many product lines on one order.
MAX_ORDER_LINES = 1000
# The fields of an order as its entrances name them, in the order errors are reported.
ORDER_FIELDS = ("date", "amount", "currency", "channel", "source", "reference")


class DuplicateOrder(Conflict):
    """The (source, reference) was already recorded for this customer. ``order`` is that
    order, unchanged; nothing was saved and no event fired."""

    def __init__(self, order: Order) -> None:
        super().__init__(
            f"order {order.reference!r} from {order.source!r} was already recorded (#{order.id})"
        )
        self.order = order


@dataclass(frozen=True)
class OrderData:
    """An order's fields, validated and normalised."""

    ordered_on: date
    amount: Decimal
    currency: str
    channel: str
    source: str
    reference: str | None
    # ``(product line, amount)`` pairs whose amounts add up to ``amount``; empty for none.
    lines: tuple[tuple[str, Decimal], ...] = ()


@dataclass
class OrderPage:
    """One page of a customer's orders, newest first."""

    orders: list[Order]
    page: int
    per_page: int
    has_next: bool

    @property
    def has_prev(self) -> bool:
        return self.page > 1


@dataclass(frozen=True)
class CurrencyTotal:
    """What a customer spent in one currency, over how many orders."""

    currency: str
    amount: Decimal
    count: int


# --- validation ---------------------------------------------------------------------------


def currency_places(currency: str) -> int:
    """How many digits the currency has after the point (EUR 2, JPY 0, KWD 3)."""
    return get_currency_precision(currency)


def in_currency_units(amount: Decimal, currency: str) -> Decimal:
    """``amount`` rounded half-up to the currency's minor units (``12.5`` EUR → ``12.50``)."""
    return amount.quantize(Decimal(1).scaleb(-currency_places(currency)), rounding=ROUND_HALF_UP)


def clean_currency(value: Any, field: str = "currency") -> str:
    """A known ISO 4217 code, upper-cased (``eur`` → ``EUR``)."""
    code = clean_text(value, field, max_length=10).upper()
    if not _CURRENCY_CODE.fullmatch(code):
        raise ValidationError({field: "must be a 3-letter ISO 4217 code, such as EUR"})
    if code in NOT_MONEY or not is_currency(code):
        raise ValidationError({field: f"{code!r} is not a known currency (ISO 4217)"})
    return code


def _shown(text: str) -> str:
    """The text as an error message quotes it: short, in quotes."""
    return repr(text if len(text) <= 20 else text[:20] + "…")


def parse_amount(value: Any, field: str = "amount") -> Decimal:
    """A finite ``Decimal`` from text (``"12.50"``), a ``Decimal`` or an ``int``.

    Floats are refused (binary floating point cannot hold 0.10 exactly), and so are
    ``NaN``, ``Infinity``, thousands separators and decimal commas.
    """
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValidationError({field: f"{_shown(str(value))} is not a number"})
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if value is not None and not isinstance(value, str):
        raise ValidationError({field: "must be a decimal number written as text, e.g. '12.50'"})
    text = (value or "").strip()
    if not text:
        raise ValidationError({field: "is required"})
    if _DECIMAL_COMMA.fullmatch(text):
        example = text.replace(",", ".")
        raise ValidationError(
            {field: f"{_shown(text)} is not a number (write decimals with a point: {example})"}
        )
    if len(text) > MAX_AMOUNT_TEXT or not _NUMBER.fullmatch(text):
        raise ValidationError({field: f"{_shown(text)} is not a number"})
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
        raise ValidationError({field: f"{_shown(text)} is not a number"}) from None


def clean_amount(value: Any, currency: str, field: str = "amount") -> Decimal:
    """A positive amount in ``currency``'s minor units (refunds are recorded separately)."""
    amount = parse_amount(value, field)
    not_positive = {field: "must be more than 0 (refunds are recorded separately)"}
    if amount <= 0:
        raise ValidationError(not_positive)
    places = currency_places(currency)
    integer_digits = min(MAX_INTEGER_DIGITS, MAX_SIGNIFICANT_DIGITS - places)
    # ``adjusted()`` is the exponent of the first digit: checked before rounding, so an
    # amount like 1e309 never reaches ``quantize``.
    if amount.adjusted() >= integer_digits:
        limit = f"at most {integer_digits} digits before the point in {currency}"
        raise ValidationError({field: f"is too large ({limit})"})
    rounded = in_currency_units(amount, currency)
    if rounded == 0:
        raise ValidationError(not_positive)
    return rounded


def clean_order_date(value: Any, field: str = "date") -> date:
    """A date written ``YYYY-MM-DD`` (or a ``date``), from 1900 up to tomorrow (UTC)."""
    if isinstance(value, datetime):
        day = value.date()
    elif isinstance(value, date):
        day = value
    else:
        text = clean_text(value, field, max_length=100) if isinstance(value, str | None) else None
        if text is None or not _ISO_DATE.fullmatch(text):
            raise ValidationError({field: "must be a date written YYYY-MM-DD"})
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ValidationError({field: f"{text!r} is not a date in the calendar"}) from None
    if day < EARLIEST_DATE:
        raise ValidationError({field: f"must not be before {EARLIEST_DATE.isoformat()}"})
    if day > utcnow().date() + timedelta(days=1):
        raise ValidationError({field: "must not be in the future"})
    return day


def clean_order(data: Mapping[str, Any], *, reference_required: bool = False) -> OrderData:
    """Validate ``date``, ``amount``, ``currency``, ``channel``, ``source`` and ``reference``;
    every error is reported at once, each under its field name."""
    errors: dict[str, str] = {}

    def check(field: str, cleaner, *args: Any) -> Any:
        try:
            return cleaner(data.get(field), *args)
        except ValidationError as exc:
            errors.update(exc.errors)
            return None

    currency = check("currency", clean_currency)
    lines = check("lines", clean_lines, currency) if data.get("lines") is not None else ()
    if lines and data.get("amount") is None:
        amount = sum((amount for _name, amount in lines), Decimal(0))
    elif currency:
        amount = check("amount", clean_amount, currency)
    else:  # Without a currency the amount cannot be rounded, but can still be found wrong.
        amount = check("amount", parse_amount)
    if lines and amount is not None and amount != sum(a for _n, a in lines):
        errors["amount"] = "must be the sum of the lines' amounts (or be left out)"
    fields = {
        "ordered_on": check("date", clean_order_date),
        "amount": amount,
        "currency": currency,
        "channel": check("channel", _clean_label, "channel", MAX_CHANNEL_LENGTH, False),
        "source": check("source", _clean_label, "source", MAX_SOURCE_LENGTH, True),
        "reference": check(
            "reference", _clean_label, "reference", MAX_REFERENCE_LENGTH, reference_required
        ),
    }
    if errors:
        ordered = {f: errors[f] for f in ORDER_FIELDS if f in errors}
        raise ValidationError({**ordered, **errors})
    fields["reference"] = fields["reference"] or None
    return OrderData(**fields, lines=tuple(lines or ()))


def clean_lines(value: Any, currency: str | None) -> tuple[tuple[str, Decimal], ...]:
    """An order's product lines: a list of ``{"product_line", "amount"}`` objects, each amount
    more than 0 (rounded to the currency's places). Errors are named ``lines.N.field``."""
    if not isinstance(value, list | tuple) or not value:
        raise ValidationError({"lines": "must be a non-empty list of {product_line, amount}"})
    if len(value) > MAX_ORDER_LINES:
        raise ValidationError({"lines": f"has too many lines (at most {MAX_ORDER_LINES})"})
    errors: dict[str, str] = {}
    lines = []
    for index, line in enumerate(value):
        prefix = f"lines.{index}"
        if not isinstance(line, Mapping):
            errors[prefix] = "must be an object with product_line and amount"
            continue
        try:
            name = clean_text(
                line.get("product_line"),
                f"{prefix}.product_line",
                max_length=MAX_PRODUCT_LINE_LENGTH,
            )
            field = f"{prefix}.amount"
            raw = line.get("amount")
            amount = clean_amount(raw, currency, field) if currency else parse_amount(raw, field)
            lines.append((name, amount))
        except ValidationError as exc:
            errors.update(exc.errors)
    if errors:
        raise ValidationError(errors)
    return tuple(lines)


def _clean_label(value: Any, field: str, max_length: int, required: bool) -> str:
    return clean_text(value, field, max_length=max_length, required=required)


# --- recording ----------------------------------------------------------------------------


def order_by_reference(source: str, reference: str) -> Order | None:
    """The order recorded under (``source``, ``reference``), if any."""
    return db.session.scalar(
        select(Order).where(Order.source == source, Order.reference == reference)
    )


def refuse_duplicate(existing: Order, customer_id: int) -> None:
    """Raise ``DuplicateOrder`` if ``existing`` is this customer's, else a ``ValidationError``:
    a reference shared with another customer's order is a mistake, not a repeat."""
    if existing.customer_id != customer_id:
        raise ValidationError(
            {"reference": f"{existing.reference!r} is already used by another customer's order"}
        )
    raise DuplicateOrder(existing)


def new_order(customer: Customer, data: OrderData, actor: Agent | None = None) -> Order:
    """Add an order to the session and queue its event; the caller commits."""
    order = Order(
        customer_id=customer.id,
        ordered_on=data.ordered_on,
        amount=data.amount,
        currency=data.currency,
        channel=data.channel,
        source=data.source,
        reference=data.reference,
        created_by_id=actor.id if actor is not None else None,
    )
    db.session.add(order)
    for product_line, amount in data.lines:
        db.session.add(OrderLine(order=order, product_line=product_line, amount=amount))
    events.queue("helpdesk_order_recorded", order=order)
    return order


def record_order(
    customer: Customer,
    *,
    ordered_on: Any,
    amount: Any,
    currency: Any,
    channel: Any = "",
    source: Any = "manual",
    reference: Any = None,
    lines: Any = None,
    actor: Agent | None = None,
) -> Order:
    """Validate and record one order, then fire ``helpdesk_order_recorded`` after commit.

    ``amount`` is text (``"12.50"``), a ``Decimal`` or an ``int``; ``ordered_on`` a ``date``
    or ``"YYYY-MM-DD"``. Raises ``ValidationError`` naming each bad field (``date``,
    ``amount``, ``currency``, ``channel``, ``source``, ``reference``), and ``DuplicateOrder``
    (carrying the existing order, unchanged) when (source, reference) is already recorded
    for this customer. ``lines`` (optional) are ``{"product_line", "amount"}`` objects; the
    order's amount is their sum (``amount`` may then be left out; given, it must match).
    """
    data = clean_order(
        {
            "date": ordered_on,
            "amount": amount,
            "currency": currency,
            "channel": channel,
            "source": source,
            "reference": reference,
            "lines": lines,
        }
    )
    if data.reference is not None:
        existing = order_by_reference(data.source, data.reference)
        if existing is not None:
            refuse_duplicate(existing, customer.id)
    try:
        with db.session.begin_nested():
            order = new_order(customer, data, actor)
    except IntegrityError:
        # Another request recorded the same reference between our check and our insert.
        existing = order_by_reference(data.source, data.reference) if data.reference else None
        if existing is None:
            raise
        refuse_duplicate(existing, customer.id)
    events.commit()
    return order


# --- refunds ------------------------------------------------------------------------------

MAX_REFUND_REASON_LENGTH = 1000


def refunded_total(order: Order) -> Decimal:
    """What was already given back on ``order`` (0 when nothing)."""
    total = db.session.scalar(
        select(func.sum(OrderRefund.amount)).where(OrderRefund.order_id == order.id)
    )
    return Decimal(total or 0)


def _lock_order(order: Order) -> None:
    """Hold ``order``'s row until commit, so two refunds of one order are checked in turn.
    (On SQLite the request's ``BEGIN IMMEDIATE`` already serialises writers.)"""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(select(Order.id).where(Order.id == order.id).with_for_update())


def refund_order(
    order: Order, *, amount: Any, reason: Any = "", actor: Agent | None = None
) -> OrderRefund:
    """Give back ``amount`` (text, ``Decimal`` or ``int``; more than 0, rounded half-up to the
    order's currency) of ``order``, then fire ``helpdesk_order_refunded(order, refund)`` after
    commit. Several partial refunds may follow one another; together they never pass the
    order's amount: more than what is left raises ``ValidationError`` on ``amount``."""
    clean = clean_amount(amount, order.currency)
    note = clean_text(reason, "reason", max_length=MAX_REFUND_REASON_LENGTH, required=False)
    _lock_order(order)
    left = order.amount - refunded_total(order)
    if clean > left:
        shown = in_currency_units(left, order.currency)
        raise ValidationError(
            {"amount": f"is more than what is left of the order ({shown} {order.currency})"}
        )
    refund = OrderRefund(
        order_id=order.id,
        amount=clean,
        reason=note,
        created_by_id=actor.id if actor is not None else None,
    )
    db.session.add(refund)
    events.queue("helpdesk_order_refunded", order=order, refund=refund)
    events.commit()
    return refund


# --- reading ------------------------------------------------------------------------------


def customer_orders(customer: Customer, page: int = 1, per_page: int = 25) -> OrderPage:
    """A page of the customer's orders, newest first (by date, then as entered)."""
    rows = list(
        db.session.scalars(
            select(Order)
            .where(Order.customer_id == customer.id)
            .order_by(Order.ordered_on.desc(), Order.id.desc())
            .limit(per_page + 1)
            .offset((page - 1) * per_page)
        )
    )
    return OrderPage(rows[:per_page], page, per_page, has_next=len(rows) > per_page)


def customer_totals(customer: Customer) -> list[CurrencyTotal]:
    """What the customer spent, per currency (one grouped query), by currency code."""
    rows = db.session.execute(
        select(Order.currency, func.sum(Order.amount), func.count())
        .where(Order.customer_id == customer.id)
        .group_by(Order.currency)
        .order_by(Order.currency)
    )
    return [
        CurrencyTotal(currency, in_currency_units(Decimal(total), currency), count)
        for currency, total, count in rows
    ]


def lines_of(order_ids: Iterable[int]) -> dict[int, list[OrderLine]]:
    """The product lines of each of the orders (one query), in the order they were given."""
    found: dict[int, list[OrderLine]] = {order_id: [] for order_id in order_ids}
    if found:
        rows = db.session.scalars(
            select(OrderLine).where(OrderLine.order_id.in_(found)).order_by(OrderLine.id)
        )
        for line in rows:
            found[line.order_id].append(line)
    return found


def amount_text(order: Order) -> str:
    """The order's amount as JSON carries it: a string with the currency's places."""
    return str(in_currency_units(order.amount, order.currency))
