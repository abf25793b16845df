"""``helpdesk orders ...``: importing customers' orders from CSV."""

from __future__ import annotations

import time
from pathlib import Path

import click
from flask.cli import with_appcontext

from helpdesk.cli import _clear_errors
from helpdesk.core.orders_import import COLUMNS, ImportSummary, import_orders


@click.group("orders")
def orders() -> None:
    """Customers' orders."""


@orders.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option(
    "--source",
    default="csv",
    show_default=True,
    help="The system the references come from; a reference is unique per source.",
)
@click.option("--dry-run", is_flag=True, help="Check and count every row, but save nothing.")
@click.option(
    "--encoding",
    default="utf-8",
    show_default=True,
    help="The file's encoding (a UTF-8 byte-order mark is skipped). Never guessed.",
)
@with_appcontext
@_clear_errors
def import_command(file: Path, source: str, dry_run: bool, encoding: str) -> None:
    """Import orders from a CSV FILE.

    The first line is a header naming the columns customer_email, date (YYYY-MM-DD), amount
    (12.50, a point for decimals), currency (ISO 4217) and reference, in any order; other
    columns are ignored. With an optional product_line column, consecutive rows sharing a
    reference are one order's lines (its amount is their sum; a row of it with another date,
    customer or currency keeps the whole order out). Rows already imported (same source and
    reference) are skipped, so
    importing a file again imports nothing. Unknown customers are created. A bad row is
    reported with its line number and the good rows are kept.

    Exit status: 0 when every row was imported or already there, 1 when some rows failed or
    the file could not be read.
    """
    started = time.perf_counter()
    with (
        file.open("rb") as stream,
        click.progressbar(length=file.stat().st_size, label="Importing orders") as bar,
    ):
        summary = import_orders(
            stream, source=source, dry_run=dry_run, encoding=encoding, progress=bar.update
        )
    _report(summary, time.perf_counter() - started, dry_run)
    if summary.failures:
        click.get_current_context().exit(1)


def _report(summary: ImportSummary, seconds: float, dry_run: bool) -> None:
    """Print what the import did, each failed row on its own line."""
    would = "Would import" if dry_run else "Imported"
    click.echo(f"{would}: {summary.imported}")
    click.echo(f"Skipped as already imported: {summary.duplicates}")
    click.echo(f"Failed: {len(summary.failures)}")
    for failure in summary.failures:
        click.echo(f"  {failure}")
    created = "Customers that would be created" if dry_run else "Customers created"
    click.echo(f"{created}: {summary.customers_created}")
    rate = summary.rows / seconds if seconds > 0 else 0
    click.echo(f"Read {summary.rows} rows in {seconds:.1f} s ({rate:,.0f} rows/s).")
    if dry_run:
        click.echo("Dry run: nothing was saved.")
    if summary.rows == 0:
        click.echo(f"The file has no rows after its header ({', '.join(COLUMNS)}).")
