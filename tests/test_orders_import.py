"""``helpdesk orders import``: good files, bad rows with line numbers, encodings, idempotency,
dry runs, and batches (a tiny batch size makes every file span several)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from helpdesk import hookimpl
from helpdesk.cli import main
from helpdesk.core.customers import customer_by_email, register_customer
from helpdesk.core.models import Customer, Order
from helpdesk.extensions import db

HEADER = "customer_email,date,amount,currency,reference\n"


class Heard:
    """Orders and customers the plugins hear of, and whether each came after a commit."""

    def __init__(self) -> None:
        self.orders: list[str] = []
        self.customers: list[str] = []

    @hookimpl
    def helpdesk_order_recorded(self, order):
        self.orders.append(order.reference)

    @hookimpl
    def helpdesk_customer_registered(self, customer):
        self.customers.append(customer.email)


heard = Heard()


@pytest.fixture
def app_plugins() -> list[Any]:
    heard.orders.clear()
    heard.customers.clear()
    return [heard]


@pytest.fixture(autouse=True)
def small_batches(app_config: dict[str, Any]) -> None:
    """Batches of 2 rows, so every test file spans several batches."""
    app_config["ORDERS_IMPORT_BATCH_SIZE"] = 2


def write(tmp_path: Path, text: str | bytes, name: str = "orders.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8", newline="")
    else:
        path.write_bytes(text)
    return path


def run_import(runner, path: Path, *args: str):
    return runner.invoke(main, ["orders", "import", str(path), *args])


def orders_saved() -> list[tuple[str, str, str, str, str]]:
    """(e-mail, date, amount, currency, reference) of every order, by reference."""
    db.session.rollback()
    rows = db.session.execute(
        select(Customer.email, Order.ordered_on, Order.amount, Order.currency, Order.reference)
        .join(Customer, Customer.id == Order.customer_id)
        .order_by(Order.reference)
    )
    return [
        (email, day.isoformat(), str(amount.normalize()), currency, reference)
        for email, day, amount, currency, reference in rows
    ]


def customer_count() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(Customer))


GOOD = HEADER + (
    "ann@example.com,2025-01-02,12.5,EUR,A-1\n"
    "ann@example.com,2025-01-03,1000,jpy,A-2\n"
    "Bob@Example.com,2025-01-04,1.2345,KWD,A-3\n"
    "carl@example.com,2025-01-05,0.1,EUR,A-4\n"
    "\n"
    "bob@example.com,2025-01-06,7,USD,A-5\n"
)


def test_a_good_file_is_imported_with_progress_and_summary(runner, tmp_path):
    register_customer({"email": "bob@example.com", "name": "Bob"})
    heard.customers.clear()
    result = run_import(runner, write(tmp_path, GOOD))
    assert result.exit_code == 0, result.output
    assert orders_saved() == [
        ("ann@example.com", "2025-01-02", "12.5", "EUR", "A-1"),
        ("ann@example.com", "2025-01-03", "1E+3", "JPY", "A-2"),
        ("bob@example.com", "2025-01-04", "1.235", "KWD", "A-3"),
        ("carl@example.com", "2025-01-05", "0.1", "EUR", "A-4"),
        ("bob@example.com", "2025-01-06", "7", "USD", "A-5"),
    ]
    assert "Importing orders" in result.output
    assert "Imported: 5" in result.output
    assert "Skipped as already imported: 0" in result.output
    assert "Failed: 0" in result.output
    assert "Customers created: 2" in result.output
    assert "Read 5 rows in" in result.output and "rows/s" in result.output
    assert customer_count() == 3
    assert sorted(heard.orders) == ["A-1", "A-2", "A-3", "A-4", "A-5"]
    assert sorted(heard.customers) == ["ann@example.com", "carl@example.com"]
    source = db.session.scalars(select(Order.source).distinct()).all()
    assert source == ["csv"]


def test_importing_again_imports_nothing(runner, tmp_path):
    path = write(tmp_path, GOOD)
    assert run_import(runner, path).exit_code == 0
    before = orders_saved()
    heard.orders.clear()
    again = run_import(runner, path)
    assert again.exit_code == 0, again.output
    assert "Imported: 0" in again.output
    assert "Skipped as already imported: 5" in again.output
    assert "Customers created: 0" in again.output
    assert orders_saved() == before
    assert heard.orders == []
    # Another source may use the same references.
    other = run_import(runner, path, "--source", "shop")
    assert "Imported: 5" in other.output
    assert len(orders_saved()) == 10


def test_bad_rows_are_reported_by_line_and_good_rows_kept(runner, tmp_path):
    text = HEADER + (
        "ann@example.com,2025-01-02,12.50,EUR,G-1\n"  # line 2
        "ann@example.com,2025-01-02,NaN,EUR,B-1\n"  # line 3
        "ann@example.com,2025-01-02,1e309,EUR,B-2\n"
        "ann@example.com,2025-01-02,Infinity,EUR,B-3\n"
        'ann@example.com,2025-01-02,"12,50",EUR,B-4\n'
        "ann@example.com,2025-01-02,abc,EUR,B-5\n"
        "ann@example.com,2025-02-30,1,EUR,B-6\n"
        "ann@example.com,02/01/2025,1,EUR,B-7\n"
        "ann@example.com,2025-01-02,1,ABC,B-8\n"
        "ann@example.com,2025-01-02,0,EUR,B-9\n"
        "ann@example.com,2025-01-02,-3,EUR,B-10\n"
        "not-an-email,2025-01-02,1,EUR,B-11\n"
        "ann@example.com,2025-01-02,1,EUR,\n"  # line 14: no reference
        "ann@example.com,2025-01-02\n"  # line 15: short row
        "ann@example.com,2025-01-03,3.333,EUR,G-2\n"  # line 16
    )
    result = run_import(runner, write(tmp_path, text))
    assert result.exit_code == 1
    out = result.output
    assert "line 3: amount: 'NaN' is not a number" in out
    assert "line 4: amount: is too large" in out
    assert "line 5: amount: 'Infinity' is not a number" in out
    assert "line 6: amount: '12,50' is not a number (write decimals with a point: 12.50)" in out
    assert "line 7: amount: 'abc' is not a number" in out
    assert "line 8: date: '2025-02-30' is not a date in the calendar" in out
    assert "line 9: date: must be a date written YYYY-MM-DD" in out
    assert "line 10: currency: 'ABC' is not a known currency" in out
    assert "line 11: amount: must be more than 0" in out
    assert "line 12: amount: must be more than 0" in out
    assert "line 13: customer_email: is not a valid e-mail address" in out
    assert "line 14: reference: is required" in out
    assert "line 15: amount: is required; currency: is required; reference: is required" in out
    assert "Imported: 2" in out and "Failed: 13" in out
    assert [row[4] for row in orders_saved()] == ["G-1", "G-2"]
    assert orders_saved()[1][2] == "3.33"


def test_line_numbers_count_physical_lines_of_quoted_fields(runner, tmp_path):
    text = (
        "note,customer_email,reference,currency,amount,date\n"  # any order, extra columns
        '"two\nlines, with a comma",ann@example.com,Q-1,EUR,1,2025-01-02\n'  # lines 2-3
        '"x",ann@example.com,Q-2,EUR,NaN,2025-01-02\n'  # line 4
    )
    result = run_import(runner, write(tmp_path, text))
    assert "line 4: amount: 'NaN' is not a number" in result.output
    assert [row[4] for row in orders_saved()] == ["Q-1"]


def test_a_reference_of_another_customer_is_a_bad_row(runner, tmp_path):
    first = HEADER + "ann@example.com,2025-01-02,1,EUR,R-1\n"
    assert run_import(runner, write(tmp_path, first, "a.csv")).exit_code == 0
    second = HEADER + (
        "bob@example.com,2025-01-02,1,EUR,R-1\n"  # line 2: already Ann's
        "bob@example.com,2025-01-02,1,EUR,R-2\n"
        "cid@example.com,2025-01-02,1,EUR,R-2\n"  # line 4: Bob's, earlier in this file
        "bob@example.com,2025-01-02,1,EUR,R-2\n"  # line 5: a repeat within the file
    )
    result = run_import(runner, write(tmp_path, second, "b.csv"))
    assert result.exit_code == 1
    assert "line 2: reference: 'R-1' is already used by another customer's order" in result.output
    assert "line 4: reference: 'R-2' is already used by another customer's order" in result.output
    assert "Imported: 1" in result.output
    assert "Skipped as already imported: 1" in result.output
    assert orders_saved() == [
        ("ann@example.com", "2025-01-02", "1", "EUR", "R-1"),
        ("bob@example.com", "2025-01-02", "1", "EUR", "R-2"),
    ]
    assert customer_by_email("cid@example.com") is None


def test_a_byte_order_mark_is_skipped(runner, tmp_path):
    path = write(tmp_path, "\ufeff".encode() + GOOD.encode())
    result = run_import(runner, path)
    assert result.exit_code == 0, result.output
    assert "Imported: 5" in result.output


def test_a_latin1_file_is_refused_with_its_line_and_byte_and_saves_nothing(runner, tmp_path):
    text = HEADER + "ann@example.com,2025-01-02,1,EUR,L-1\njosé@example.com,2025-01-02,1,EUR,L-2\n"
    path = write(tmp_path, text.encode("latin-1"))
    result = run_import(runner, path)
    assert result.exit_code == 1
    offset = text.encode("latin-1").index(b"\xe9") + 1
    assert f"line 3: byte {offset} of the file (0xe9) is not valid utf-8" in result.output
    assert "--encoding" in result.output
    assert orders_saved() == []
    assert customer_count() == 0
    named = run_import(runner, path, "--encoding", "latin-1")
    assert named.exit_code == 0, named.output
    assert customer_by_email("josé@example.com") is not None
    unknown = run_import(runner, path, "--encoding", "klingon")
    assert unknown.exit_code == 1 and "unknown encoding 'klingon'" in unknown.output


def test_an_empty_file_is_a_clear_error(runner, tmp_path):
    result = run_import(runner, write(tmp_path, ""))
    assert result.exit_code == 1
    assert "the file is empty" in result.output
    assert "customer_email, date, amount, currency, reference" in result.output


def test_a_header_only_file_imports_nothing(runner, tmp_path):
    result = run_import(runner, write(tmp_path, HEADER))
    assert result.exit_code == 0
    assert "Imported: 0" in result.output and "no rows after its header" in result.output


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("customer_email,date,amount,reference\n", "lacks the column(s) currency"),
        ("ann@example.com,2025-01-02,1,EUR,R-1\n", "lacks the column(s) customer_email, date"),
        (
            "customer_email,date,amount,currency,reference,Amount\n",
            "names the column amount twice",
        ),
    ],
)
def test_a_header_missing_a_column_is_a_clear_error(runner, tmp_path, header, message):
    text = header + "ann@example.com,2025-01-02,1,EUR,R-1\n"
    result = run_import(runner, write(tmp_path, text))
    assert result.exit_code == 1
    assert "line 1: the header" in result.output and message in result.output
    assert orders_saved() == []


def test_header_names_ignore_case_and_spaces(runner, tmp_path):
    text = " Customer_Email , DATE,Amount,currency,Reference\nann@example.com,2025-01-02,1,EUR,R\n"
    assert run_import(runner, write(tmp_path, text)).exit_code == 0
    assert len(orders_saved()) == 1


def test_dry_run_checks_and_counts_but_saves_nothing(runner, tmp_path):
    text = (
        GOOD + "dan@example.com,2025-01-07,NaN,EUR,A-6\nann@example.com,2025-01-02,12.5,EUR,A-1\n"
    )
    result = run_import(runner, write(tmp_path, text), "--dry-run")
    assert result.exit_code == 1
    out = result.output
    assert "Would import: 5" in out
    assert "Skipped as already imported: 1" in out  # A-1 twice, across batches
    assert "line 8: amount: 'NaN' is not a number" in out
    assert "Customers that would be created: 3" in out  # ann counted once across batches
    assert "Dry run: nothing was saved." in out
    assert orders_saved() == [] and customer_count() == 0
    assert heard.orders == [] and heard.customers == []


def test_a_line_far_too_long_stops_the_import(runner, tmp_path, app):
    app.config["ORDERS_IMPORT_MAX_LINE_BYTES"] = 100
    text = HEADER + "ann@example.com,2025-01-02,1,EUR,R-1\n" + "x" * 200 + "\n"
    result = run_import(runner, write(tmp_path, text))
    assert result.exit_code == 1
    assert "line 3 is longer than 100 bytes" in result.output
    assert orders_saved() == []


def test_control_characters_and_nul_bytes_do_not_break_the_import(runner, tmp_path):
    text = HEADER.encode() + b"ann@example.com,2025-01-02,1,EUR,R-\x001\x07\n"
    result = run_import(runner, write(tmp_path, text))
    assert result.exit_code == 0, result.output
    assert [row[4] for row in orders_saved()] == ["R-1"]


def test_help_states_the_columns_and_exit_status(runner):
    result = runner.invoke(main, ["orders", "import", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "customer_email, date" in text and "currency (ISO 4217) and reference" in text
    assert "0 when every row was imported or already there, 1 when some rows failed" in text
    assert "--dry-run" in text and "--source" in text and "--encoding" in text


def test_the_batches_commit_as_they_go(runner, tmp_path):
    commits: list[int] = []

    def count(session: Session) -> None:
        commits.append(1)

    event.listen(Session, "after_commit", count)
    try:
        text = HEADER + "".join(
            f"c{n}@example.com,2025-01-02,{n}.5,EUR,B-{n}\n" for n in range(1, 8)
        )
        assert run_import(runner, write(tmp_path, text)).exit_code == 0
    finally:
        event.remove(Session, "after_commit", count)
    assert len(commits) >= 4  # 7 rows, 2 a batch
    assert sum(Decimal(row[2]) for row in orders_saved()) == Decimal("31.5")
