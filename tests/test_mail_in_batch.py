"""``fetch`` commits mail a batch at a time, each mail in a savepoint: a mail leaves its
mailbox only after the transaction holding it committed, a failing mail undoes itself alone,
and the events of a batch are fired after its commit."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from helpdesk import hookimpl
from helpdesk.core import services
from helpdesk.core.errors import ValidationError
from helpdesk.core.mail import fetch
from helpdesk.core.models import MailQuarantine, Message, Ticket
from helpdesk.extensions import db, write_intent

SAMPLES = Path(__file__).parent / "mail_samples"


def mail(n: int, subject: str = "Broken parcel", sender: str = "") -> bytes:
    sender = sender or f"customer{n}@example.org"
    return (
        f"From: <{sender}>\r\nTo: helpdesk@example.com\r\nSubject: {subject}\r\n"
        f"Message-ID: <batch-{n}@example.org>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Mail number {n}.\r\n"
    ).encode()


def committed(sql: str, **params) -> int:
    """A count read on a connection of its own: only what was committed."""
    with db.engine.connect() as connection:
        return connection.execute(text(sql), params).scalar_one()


class Box:
    """A mailbox whose ``done`` records, for each mail, whether its row was committed."""

    def __init__(self, raws: list[bytes]) -> None:
        self.raws = raws
        self.removed: list[tuple[int, int]] = []  # (mail number, committed messages then)

    def __iter__(self):
        for number, raw in enumerate(self.raws):
            yield raw, lambda number=number: self.removed.append((number, self._kept()))

    def _kept(self) -> int:
        return committed("SELECT count(*) FROM messages") + committed(
            "SELECT count(*) FROM mail_quarantine"
        )


@pytest.fixture
def batch_app(app_config, tmp_path, app):
    app.config.update(
        MAIL_DEFAULT_SENDER="helpdesk@example.com",
        MAIL_QUARANTINE_DIR=str(tmp_path / "quarantine"),
        MAIL_FETCH_BATCH_SIZE=3,
    )
    return app


def run(box: Box) -> fetch.Summary:
    db.session.commit()
    with write_intent():
        return fetch.run(box)


def test_mail_leaves_the_mailbox_only_after_its_batch_committed(batch_app):
    box = Box([mail(n) for n in range(7)])
    summary = run(box)
    assert summary.counts["created"] == 7
    # Batches of 3: mails 0-2 are removed when 3 are committed, 3-5 at 6, the last at 7.
    assert box.removed == [(0, 3), (1, 3), (2, 3), (3, 6), (4, 6), (5, 6), (6, 7)]


def test_a_failing_mail_undoes_itself_alone(batch_app, monkeypatch):
    real_values = services.opening_values_many

    def refusing(requests, **fields):
        if any(r["subject"] == "Refuse me" for r in requests):  # after its customer was written
            raise ValidationError({"subject": "refused"})
        return real_values(requests, **fields)

    # Both ways of storing mail (a run of common mails together, a mail alone) ask for it.
    monkeypatch.setattr(services, "opening_values_many", refusing)
    raws = [mail(0), mail(1, subject="Refuse me"), mail(2), mail(0)]
    box = Box([*raws, (SAMPLES / "no_from_no_message_id.eml").read_bytes(), mail(5)])
    summary = run(box)
    assert summary.counts == {"created": 3, "quarantined": 2, "duplicate": 1}
    assert [reason for _, reason in summary.quarantined] == ["rejected", "no_sender"]
    db.session.rollback()
    subjects = db.session.scalars(select(Ticket.subject)).all()
    assert sorted(subjects) == ["Broken parcel"] * 3
    assert db.session.scalar(select(func.count()).select_from(MailQuarantine)) == 2
    assert [number for number, _ in box.removed] == [0, 1, 2, 3, 4, 5]


def test_a_database_error_keeps_the_whole_open_batch(batch_app, monkeypatch):
    real_values = services.opening_values_many

    def failing(requests, **fields):
        if any(r["customer"].email == "customer4@example.org" for r in requests):
            raise db.exc.OperationalError("INSERT", {}, Exception("disk I/O error"))
        return real_values(requests, **fields)

    monkeypatch.setattr(services, "opening_values_many", failing)
    box = Box([mail(n) for n in range(6)])
    with pytest.raises(db.exc.OperationalError):
        run(box)
    # The first batch (0-2) was committed and removed; mail 3 was in the batch that failed.
    assert [number for number, _ in box.removed] == [0, 1, 2]
    assert committed("SELECT count(*) FROM messages") == 3
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Message)) == 3


class Recorder:
    """Records, for each ticket-created event, whether the ticket was committed by then."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    @hookimpl
    def helpdesk_ticket_created(self, ticket):
        visible = committed("SELECT count(*) FROM tickets WHERE id = :id", id=ticket.id)
        self.seen.append((ticket.customer.email, visible))


class TestEventsAfterTheBatch:
    recorder = Recorder()

    @pytest.fixture
    def app_plugins(self):
        self.recorder.seen.clear()
        return [self.recorder]

    @pytest.mark.hooks("helpdesk_ticket_created")
    def test_events_fire_after_commit_with_usable_rows(self, batch_app):
        run(Box([mail(n) for n in range(4)]))
        assert self.recorder.seen == [(f"customer{n}@example.org", 1) for n in range(4)]
