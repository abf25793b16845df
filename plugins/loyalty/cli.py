"""``helpdesk loyalty import-cards | verify | expire``: each with a progress bar and a
summary; ``verify`` exits 1 when a balance differs from its ledger."""

from __future__ import annotations

import time
from pathlib import Path

import click
from flask.cli import with_appcontext

from helpdesk import write_intent
from plugins.loyalty import maintenance


@click.group("loyalty")
def loyalty() -> None:
    """Bonus cards: import printed cards, verify balances, expire old bonus."""


@loyalty.command("import-cards")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def import_cards(file: Path) -> None:
    """Import cards from a CSV FILE with the columns customer_email,card_number (UTF-8).

    Unknown e-mails create the customer; a customer who already holds an active card is
    reported with the line number and left unchanged; importing again changes nothing.
    Exit status 1 when some rows were not imported.
    """
    try:
        stream = maintenance.decoded(file.read_bytes())
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{file} is not UTF-8 ({exc})") from None
    rows = max(0, stream.getvalue().count("\n") - 1)
    with write_intent(), click.progressbar(length=rows, label="Importing cards") as bar:
        summary = maintenance.import_cards(stream, progress=bar.update)
    click.echo(
        f"{summary.rows} rows: {summary.imported} cards imported, {summary.unchanged} already "
        f"there, {summary.customers_created} customers created, "
        f"{len(summary.problems)} not imported"
    )
    for problem in summary.problems:
        click.echo(problem, err=True)
    if summary.problems:
        click.get_current_context().exit(1)


@loyalty.command("verify")
@with_appcontext
def verify() -> None:
    """Re-add every card's ledger and compare with its stored balance; exit 1 on a mismatch."""
    started = time.perf_counter()
    with click.progressbar(length=maintenance.card_count(), label="Verifying cards") as bar:
        mismatches = maintenance.verify(progress=bar.update)
    seconds = time.perf_counter() - started
    for mismatch in mismatches:
        click.echo(str(mismatch), err=True)
    click.echo(f"{len(mismatches)} mismatches ({seconds:.1f} s)")
    if mismatches:
        click.get_current_context().exit(1)


@loyalty.command("expire")
@with_appcontext
def expire() -> None:
    """Expire bonus accrued more than LOYALTY_EXPIRY_MONTHS ago, oldest first (0: off).
    Idempotent: safe to run from cron daily."""
    with write_intent(), click.progressbar(length=0, label="Expiring bonus") as bar:
        count, total = maintenance.expire(progress=bar.update)
    click.echo(f"{count} cards, {total} expired")
