"""Importing orders from CSV: streamed, committed in batches, idempotent by reference.

The file needs a header row naming ``customer_email, date, amount, currency, reference`` in any
order (other columns are ignored). Each row is checked by the same rules as an order entered by
hand (``orders.clean_order``). A bad row is reported with its line number and skipped; the good
rows are kept. A row whose (source, reference) is already recorded for the same customer is
skipped as a duplicate, so importing a file again imports nothing; one recorded for another
customer is a bad row. Unknown customers are created.

An optional ``product_line`` column gives orders product lines: then the rows sharing a reference
are one order's lines (on consecutive rows), the order's amount is their sum, and a row of that
reference with another date, customer or currency is a bad row, which keeps the whole order out
(no order is saved with some of its lines missing).
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import lru_cache
from itertools import chain, groupby, islice
from typing import Any, BinaryIO

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from helpdesk.core import events
from helpdesk.core.customers import add_new_customers
from helpdesk.core.errors import HelpdeskError, ValidationError
from helpdesk.core.models import Agent, Customer, Order
from helpdesk.core.orders import (
    MAX_PRODUCT_LINE_LENGTH,
    MAX_SOURCE_LENGTH,
    OrderData,
    clean_order,
    new_order,
)
from helpdesk.core.validation import clean_email, clean_text, email_key
from helpdesk.extensions import db

COLUMNS = ("customer_email", "date", "amount", "currency", "reference")
# Columns a file may have; with ``product_line``, rows sharing a reference are one order's lines.
OPTIONAL_COLUMNS = ("product_line",)
# A batch that lost a race with another import (a reference inserted meanwhile) is redone.
BATCH_ATTEMPTS = 3


class ImportFileError(HelpdeskError):
    """The file as a whole cannot be read: wrong encoding, no header, a line far too long."""


@dataclass
class RowFailure:
    """A row that was not imported, and why."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class ImportSummary:
    """What an import did (or, in a dry run, would do)."""

    rows: int = 0
    imported: int = 0
    duplicates: int = 0
    customers_created: int = 0
    failures: list[RowFailure] = field(default_factory=list)

    def add(self, other: ImportSummary) -> None:
        self.rows += other.rows
        self.imported += other.imported
        self.duplicates += other.duplicates
        self.customers_created += other.customers_created
        self.failures.extend(other.failures)


@dataclass
class _CheckedRow:
    line: int
    email: str
    key: str
    order: OrderData
    product_line: str = ""
    rows: int = 1  # how many rows of the file make this order


@dataclass
class _DryRunMemory:
    """What earlier batches of a dry run would have saved (each batch is rolled back)."""

    references: dict[str, str] = field(default_factory=dict)  # reference -> customer key
    customers: set[str] = field(default_factory=set)


@dataclass
class _Run:
    """What one import remembers across its batches."""

    lines: bool  # the file has a product_line column
    dry_run: _DryRunMemory | None
    created: set[str] = field(default_factory=set)  # references this import recorded


# --- reading the file ---------------------------------------------------------------------


def _decoded_lines(
    stream: BinaryIO, codec: codecs.CodecInfo, max_line_bytes: int, progress: Callable[[int], None]
) -> Iterator[str]:
    """The file's text line by line, read with ``codec`` without guessing; an undecodable
    byte stops the import with its line and byte position."""
    decoder = codec.incrementaldecoder(errors="strict")
    name = codec.name.removesuffix("-sig")
    offset, line_no, pending = 0, 1, ""
    while True:
        raw = stream.readline(max_line_bytes + 1)
        if len(raw) > max_line_bytes:
            raise ImportFileError(
                f"line {line_no} is longer than {max_line_bytes} bytes; is this a CSV file?"
            )
        try:
            text = decoder.decode(raw, final=not raw)
        except UnicodeDecodeError as exc:
            raise ImportFileError(
                f"line {line_no}: byte {offset + exc.start + 1} of the file "
                f"(0x{raw[exc.start]:02x}) is not valid {name}. Save the file as UTF-8, or "
                "name its encoding with --encoding (for example --encoding latin-1)."
            ) from None
        offset += len(raw)
        line_no += raw.count(b"\n")
        progress(len(raw))
        parts = (pending + text).split("\n")
        pending = parts.pop()
        for part in parts:
            yield part + "\n"
        if not raw:
            break
    if pending:
        yield pending


Row = tuple[int, dict[str, str] | str]


def _records(lines: Iterable[str]) -> tuple[dict[str, int], Iterator[Row]]:
    """The columns found by the header, and ``(first line number, {column: value})`` for each
    data row. Blank rows are skipped; a row the CSV parser cannot read comes with the reason
    instead."""
    reader = csv.reader(lines)
    header = _header(reader)
    return header, _rows(reader, header)


def _rows(reader: Any, header: dict[str, int]) -> Iterator[Row]:
    """The data rows after the header (see ``_records``)."""
    last_line = reader.line_num
    while True:
        line = last_line + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            last_line = reader.line_num
            yield line, f"not readable as CSV ({exc})"
            continue
        last_line = reader.line_num
        if any(cell.strip() for cell in row):
            yield line, {name: row[i] if i < len(row) else "" for name, i in header.items()}


def _header(reader: Any) -> dict[str, int]:
    """The position of each needed column, from the first row."""
    expected = ", ".join(COLUMNS)
    try:
        names = next(reader)
    except StopIteration:
        raise ImportFileError(
            f"the file is empty; its first line must be a header naming the columns {expected}"
        ) from None
    except csv.Error as exc:
        raise ImportFileError(f"line 1: the header is not readable as CSV ({exc})") from None
    positions: dict[str, int] = {}
    for index, name in enumerate(names):
        key = name.strip().lstrip("\ufeff").strip().lower()
        if key in (*COLUMNS, *OPTIONAL_COLUMNS) and key in positions:
            raise ImportFileError(f"line 1: the header names the column {key} twice")
        positions.setdefault(key, index)
    missing = [name for name in COLUMNS if name not in positions]
    if missing:
        raise ImportFileError(
            f"line 1: the header lacks the column(s) {', '.join(missing)}; it must name "
            f"{expected} (in any order; other columns are ignored)"
        )
    wanted = [*COLUMNS, *(name for name in OPTIONAL_COLUMNS if name in positions)]
    return {name: positions[name] for name in wanted}


# --- one batch ----------------------------------------------------------------------------


@lru_cache(maxsize=8192)
def _clean_email(value: str) -> str:
    """``clean_email``, remembered: a file names the same customers again and again."""
    return clean_email(value, "customer_email")


def _check_rows(
    batch: list[Row], source: str, summary: ImportSummary
) -> tuple[list[_CheckedRow], dict[str, int]]:
    """Validate each row on its own (no database); a bad row becomes a failure. Also returns
    the reference of each bad row that names one, with its line (its order is kept out)."""
    checked = []
    spoiled: dict[str, int] = {}
    for line, row in batch:
        if isinstance(row, str):
            summary.failures.append(RowFailure(line, row))
            continue
        errors: dict[str, str] = {}
        try:
            email = _clean_email(row["customer_email"])
        except ValidationError as exc:
            errors.update(exc.errors)
        try:
            order = clean_order({**row, "source": source}, reference_required=True)
        except ValidationError as exc:
            errors.update(exc.errors)
        try:
            product_line = clean_text(
                row.get("product_line"),
                "product_line",
                max_length=MAX_PRODUCT_LINE_LENGTH,
                required=False,
            )
        except ValidationError as exc:
            errors.update(exc.errors)
        if errors:
            summary.failures.append(RowFailure(line, ValidationError(errors).message))
            spoiled.setdefault(" ".join(str(row["reference"]).split()), line)
        else:
            checked.append(_CheckedRow(line, email, email_key(email), order, product_line))
    return checked, spoiled


def _group_lines(
    rows: list[_CheckedRow], spoiled: dict[str, int], run: _Run, summary: ImportSummary
) -> list[_CheckedRow]:
    """With a product_line column: one row per order, whose ``order`` carries the lines of the
    rows sharing its reference and their sum as amount. A group with a bad row is kept out
    whole, each of its rows reported."""
    groups: dict[str, list[_CheckedRow]] = {}
    for row in rows:
        groups.setdefault(row.order.reference, []).append(row)
    orders = []
    for reference, group in groups.items():
        reasons = _group_failures(reference, group, spoiled, run)
        if reasons:
            summary.failures.extend(RowFailure(row.line, reasons[row.line]) for row in group)
            continue
        first = group[0]
        lines = tuple((row.product_line, row.order.amount) for row in group if row.product_line)
        total = sum((row.order.amount for row in group), Decimal(0))
        order = replace(first.order, amount=total, lines=lines)
        orders.append(replace(first, order=order, rows=len(group)))
    return orders


def _group_failures(
    reference: str, group: list[_CheckedRow], spoiled: dict[str, int], run: _Run
) -> dict[int, str]:
    """Why each row of one reference's group is refused (empty when the order is good)."""
    first = group[0]
    own: dict[int, str] = {}
    if reference in run.created:
        for row in group:
            own[row.line] = (
                f"reference: {reference!r} was imported from earlier rows; an order's lines "
                "must be on consecutive rows"
            )
    for row in group[1:]:
        same = (row.key, row.order.ordered_on, row.order.currency) == (
            first.key,
            first.order.ordered_on,
            first.order.currency,
        )
        if not same:
            own[row.line] = (
                f"reference: {reference!r} has another date, customer or currency than "
                f"line {first.line}"
            )
    if len(group) > 1:
        for row in group:
            if not row.product_line:
                own.setdefault(
                    row.line, "product_line: is required when several rows share a reference"
                )
    bad_line = spoiled.get(reference)
    if bad_line is None and own:
        bad_line = min(own)
    if bad_line is None:
        return {}
    kept_out = f"not imported: line {bad_line} of the same order ({reference!r}) is bad"
    return {row.line: own.get(row.line, kept_out) for row in group}


def _owners_of(source: str, references: set[str]) -> dict[str, str]:
    """For each reference already recorded under ``source``: its customer's e-mail key."""
    if not references:
        return {}
    rows = db.session.execute(
        select(Order.reference, Customer.email_key)
        .join(Customer, Customer.id == Order.customer_id)
        .where(Order.source == source, Order.reference.in_(references))
    )
    return {reference: key for reference, key in rows}


def _customers_by_key(keys: set[str]) -> dict[str, Customer]:
    if not keys:
        return {}
    found = db.session.scalars(select(Customer).where(Customer.email_key.in_(keys)))
    return {customer.email_key: customer for customer in found}


def _apply_batch(
    batch: list[Row], source: str, actor: Agent | None, run: _Run
) -> tuple[ImportSummary, set[str]]:
    """Add a batch's good rows to the session (one query for references, one for customers);
    the caller commits or, in a dry run, rolls back. Returns the references recorded."""
    summary = ImportSummary(rows=len(batch))
    checked, spoiled = _check_rows(batch, source, summary)
    if run.lines:
        checked = _group_lines(checked, spoiled, run, summary)
    found = _owners_of(source, {row.order.reference for row in checked})
    owners = found if run.dry_run is None else run.dry_run.references
    owners.update(found)
    new_rows = []
    for row in checked:
        owner = owners.get(row.order.reference)
        if owner == row.key:
            summary.duplicates += row.rows
        elif owner is not None:
            reason = (
                f"reference: {row.order.reference!r} is already used by another customer's order"
            )
            summary.failures.append(RowFailure(row.line, reason))
        else:
            owners[row.order.reference] = row.key
            new_rows.append(row)
    # Customers first, then orders: adding them in turn would flush the session every time.
    customers = _customers_for(new_rows, summary, run.dry_run)
    for row in new_rows:
        new_order(customers[row.key], row.order, actor)
    summary.imported = sum(row.rows for row in new_rows)
    db.session.flush()
    return summary, {row.order.reference for row in new_rows}


def _customers_for(
    rows: list[_CheckedRow], summary: ImportSummary, memory: _DryRunMemory | None
) -> dict[str, Customer]:
    """The customer of each row's e-mail key, created when unknown (and counted)."""
    customers = _customers_by_key({row.key for row in rows})
    unknown = {row.key: row.email for row in rows if row.key not in customers}
    for customer in add_new_customers(list(unknown.values())):
        customers[customer.email_key] = customer
    if memory is None:
        summary.customers_created += len(unknown)
    else:
        summary.customers_created += len(unknown.keys() - memory.customers)
        memory.customers.update(unknown)
    return customers


def _import_batch(batch: list[Row], source: str, actor: Agent | None, run: _Run) -> ImportSummary:
    """Apply and commit one batch (roll it back in a dry run), firing its events after
    commit. A batch that lost a race for a reference is redone, now seeing it."""
    for attempt in range(BATCH_ATTEMPTS):
        try:
            summary, recorded = _apply_batch(batch, source, actor, run)
            if run.dry_run is None:
                events.commit()
            else:
                db.session.rollback()
            run.created.update(recorded)
            return summary
        except IntegrityError:
            db.session.rollback()
            if attempt == BATCH_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def import_orders(
    stream: BinaryIO,
    *,
    source: str = "csv",
    dry_run: bool = False,
    encoding: str = "utf-8",
    actor: Agent | None = None,
    progress: Callable[[int], None] = lambda n: None,
) -> ImportSummary:
    """Import the orders of a CSV file read from ``stream`` (bytes), a batch at a time.

    ``progress`` hears how many bytes were read. Raises ``ImportFileError`` when the file
    cannot be read (encoding, header, a line over ``ORDERS_IMPORT_MAX_LINE_BYTES``); a seekable
    file is checked whole first, so then nothing is saved.
    ``encoding`` ``utf-8`` also skips a byte-order mark. A dry run saves nothing and fires no
    event, yet counts as the import would.
    """
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        raise ImportFileError(f"unknown encoding {encoding!r}") from None
    if codec.name == "utf-8":
        codec = codecs.lookup("utf-8-sig")
    source = clean_text(source, "source", max_length=MAX_SOURCE_LENGTH)
    config = current_app.config
    max_line = config["ORDERS_IMPORT_MAX_LINE_BYTES"]
    if stream.seekable():  # read it once to check the encoding: then a bad file saves nothing
        start = stream.tell()
        for _line in _decoded_lines(stream, codec, max_line, lambda n: None):
            pass
        stream.seek(start)
    lines = _decoded_lines(stream, codec, max_line, progress)
    header, records = _records(lines)
    run = _Run(lines="product_line" in header, dry_run=_DryRunMemory() if dry_run else None)
    groups = _order_groups(records) if run.lines else ([record] for record in records)
    summary = ImportSummary()
    while chunk := list(islice(groups, config["ORDERS_IMPORT_BATCH_SIZE"])):
        summary.add(_import_batch(list(chain.from_iterable(chunk)), source, actor, run))
    return summary


def _order_groups(records: Iterable[Row]) -> Iterator[list[Row]]:
    """Consecutive rows sharing a reference, together (a batch never splits an order)."""

    def reference(record: Row) -> Any:
        line, row = record
        return line if isinstance(row, str) else " ".join(row["reference"].split())

    for _reference, group in groupby(records, key=reference):
        yield list(group)
