"""``helpdesk mail ...``: ingest one mail from an MTA pipe, fetch a mailbox, the quarantine.

``mail ingest`` keeps the MTA's contract: exit 0 when the mail was accepted (or deliberately
dropped, or kept in quarantine), 75 (EX_TEMPFAIL) when it could not be kept at all, so the MTA
queues it and tries again. It prints one short line and never a DSN-like status code (Postfix
would take ``5.x.x`` on stdout as the delivery status).
"""

from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from helpdesk.core.errors import HelpdeskError
from helpdesk.extensions import db, write_intent

EX_TEMPFAIL = 75


def _describe(outcome) -> str:
    if outcome.status == "created":
        return f"new ticket #{outcome.ticket_id}"
    if outcome.status == "added":
        return f"added to ticket #{outcome.ticket_id}"
    if outcome.status == "quarantined":
        return f"kept in quarantine as #{outcome.quarantine_id} ({outcome.reason})"
    if outcome.status == "dropped":
        return f"dropped: sent by a machine ({outcome.reason}) and about no ticket"
    return "already received; ignored"


@click.group("mail")
def mail() -> None:
    """Receive mail: from an MTA pipe, an IMAP mailbox or a Maildir; the quarantine."""


@mail.command("ingest")
@with_appcontext
def ingest_command() -> None:
    """Read one RFC 5322 mail on stdin (for a Postfix/Exim pipe). Exit 0 when it is kept
    or deliberately dropped, 75 (temporary failure: the MTA retries) when it could not be."""
    from helpdesk.core.mail.ingest import ingest

    try:
        raw = sys.stdin.buffer.read()
        with write_intent():
            outcome = ingest(raw)
    except Exception as exc:  # nothing was kept: let the MTA keep the mail and retry
        _rollback()
        current_app.logger.debug("mail ingest failed", exc_info=True)
        click.echo(f"helpdesk: temporary failure ({type(exc).__name__}); retry later")
        sys.exit(EX_TEMPFAIL)
    click.echo(f"helpdesk: {_describe(outcome)}")


def _rollback() -> None:
    try:
        db.session.rollback()
    except Exception:  # the database is gone; there is nothing to roll back
        current_app.logger.debug("rollback failed", exc_info=True)


@mail.command("fetch")
@click.option(
    "--maildir",
    type=click.Path(file_okay=False, exists=True),
    help="Read this local Maildir instead of the IMAP mailbox of the MAIL_IMAP_* settings.",
)
@with_appcontext
def fetch_command(maildir: str | None) -> None:
    """Fetch and ingest every waiting mail; each is removed only after its ticket change is
    committed. Ends with a summary (done, skipped, quarantined and why)."""
    from helpdesk.core.mail import fetch

    try:
        source = fetch.MaildirSource(maildir) if maildir else _imap_source()
    except (OSError, fetch.imaplib.IMAP4.error, ValueError) as exc:
        raise click.ClickException(f"cannot open the mailbox: {exc}") from None
    try:
        with write_intent(), click.progressbar(length=len(source), label="Fetching") as bar:
            summary = fetch.run(source, on_each=lambda: bar.update(1))
    except Exception as exc:
        _rollback()
        raise click.ClickException(
            f"stopped ({type(exc).__name__}: {exc}); the remaining mail stays in the mailbox"
        ) from None
    finally:
        source.close()
    counts = summary.counts
    click.echo(
        f"Done: {counts['created']} new tickets, {counts['added']} replies; "
        f"skipped: {counts['duplicate']} duplicates, {counts['dropped']} automated; "
        f"quarantined: {counts['quarantined']}."
    )
    for item_id, reason in summary.quarantined:
        click.echo(f"  quarantine #{item_id}: {reason}")


def _imap_source():
    from helpdesk.core.mail.fetch import ImapSource

    if not current_app.config.get("MAIL_IMAP_HOST"):
        raise ValueError("MAIL_IMAP_HOST is not set (or use --maildir PATH)")
    return ImapSource(current_app.config)


@mail.command("quarantine")
@click.option("--retry", "retry_id", type=int, help="Process this quarantined mail again.")
@with_appcontext
def quarantine_command(retry_id: int | None) -> None:
    """List the mail held in quarantine, or process one again with ``--retry ID``."""
    from helpdesk.core.mail import quarantine
    from helpdesk.core.mail.ingest import reprocess

    if retry_id is not None:
        try:
            with write_intent():
                outcome = reprocess(retry_id)
        except HelpdeskError as exc:
            raise click.ClickException(exc.message) from None
        click.echo(f"#{retry_id}: {_describe(outcome)}")
        return
    items = quarantine.held()
    if not items:
        click.echo("The quarantine is empty.")
    for item in items:
        click.echo(
            f"#{item.id}  {item.received_at:%Y-%m-%d %H:%M}  {item.reason:<12}  "
            f"{item.size:>9} B  {item.sender or '-'}  {item.subject[:60]}"
        )
