"""The public customer portal: the request form, the private status page, replies and
attachments, against the malformed, hostile and huge input the issue names."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import func, select

from helpdesk.core import services, tokens
from helpdesk.core.attachments import Upload
from helpdesk.core.models import Agent, Attachment, Customer, Message, Ticket, new_public_key
from helpdesk.extensions import db
from tests.conftest import csrf_from, post_form

LINK_SALT = "helpdesk.ticket-link"
BODY_LIMIT = 2000
FILE_LIMIT = 1000
REQUEST_LIMIT = 64 * 1024
LINK_DAYS = 30
BURST = 3
# A window far longer than any test run, so the burst test cannot straddle two windows.
LONG_WINDOW = 10**9


@pytest.fixture(autouse=True)
def portal_limits(app_config: dict[str, Any]) -> dict[str, Any]:
    """Small size limits that tests can exceed cheaply; a rate limit no ordinary test reaches."""
    app_config.update(
        MAX_BODY_LENGTH=BODY_LIMIT,
        MAX_ATTACHMENT_SIZE=FILE_LIMIT,
        MAX_CONTENT_LENGTH=REQUEST_LIMIT,
        PORTAL_LINK_MAX_AGE_DAYS=LINK_DAYS,
        PORTAL_RATE_LIMIT=f"1000/{LONG_WINDOW}",
    )
    return app_config


@pytest.fixture
def burst_limit(portal_limits: dict[str, Any]) -> int:
    """A rate limit of ``BURST`` posts per address (set before the app is built)."""
    portal_limits["PORTAL_RATE_LIMIT"] = f"{BURST}/{LONG_WINDOW}"
    return BURST


def form(**changes: Any) -> dict[str, Any]:
    """A valid request form, with ``changes``."""
    data = {
        "name": "Guðrún Jónsdóttir",
        "email": "gudrun@example.is",
        "phone": "",
        "kind": "complaint",
        "subject": "Broken lamp",
        "body": "The lamp arrived broken.\nPlease send a new one.",
        "website": "",
    }
    data.update(changes)
    return data


def submit(client: FlaskClient, **changes: Any):
    return post_form(client, "/", form(**changes))


def count(model: type) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def nothing_created() -> bool:
    return (count(Ticket), count(Customer), count(Message), count(Attachment)) == (0, 0, 0, 0)


def only_ticket() -> Ticket:
    db.session.expire_all()
    return db.session.scalars(select(Ticket)).one()


def status_path(client: FlaskClient, **changes: Any) -> str:
    """Submit a valid form and return the path of the status link it redirects to."""
    response = submit(client, **changes)
    assert response.status_code == 303, response.get_data(as_text=True)
    return response.headers["Location"].removeprefix("http://localhost")


def link_token(app: Flask, ticket: Ticket, *, days_ago: int = 0, secret: str | None = None) -> str:
    """A status-link token signed ``days_ago`` days in the past (no sleeping, no patched clock)."""

    class PastSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - days_ago * 86_400

    serializer = URLSafeTimedSerializer(
        secret or app.config["SECRET_KEY"], salt=LINK_SALT, signer=PastSigner
    )
    return serializer.dumps([ticket.id, ticket.public_key])


def attachments_on_disk(app: Flask) -> list[Path]:
    root = Path(app.config["ATTACHMENTS_DIR"])
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


# ---- the form -----------------------------------------------------------------------------


def test_form_labels_every_field_and_hides_agent_navigation(client: FlaskClient) -> None:
    response = client.get("/")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    ids = re.findall(r'<(?:input|textarea)[^>]*\bid="([^"]+)"', page)
    assert set(ids) >= {
        "f-name",
        "f-email",
        "f-phone",
        "f-kind-support",
        "f-kind-complaint",
        "f-subject",
        "f-body",
    }
    for field_id in ids:
        assert f'for="{field_id}"' in page, field_id
    assert page.count("(required)") == 5 and page.count("(optional)") == 2
    honeypot = re.search(r'<input id="f-website"[^>]*>', page).group(0)
    assert 'tabindex="-1"' in honeypot and 'autocomplete="off"' in honeypot
    assert 'class="honeypot"' in page and "Leave this empty" in page
    assert 'enctype="multipart/form-data"' in page and 'name="attachments" multiple' in page
    assert "/tickets" not in page and "Log out" not in page


def test_submit_opens_ticket_and_gives_private_status_link(app: Flask, client: FlaskClient) -> None:
    response = submit(client, phone="+354 555 1234")
    assert response.status_code == 303
    ticket = only_ticket()
    link = response.headers["Location"]
    token = link.rsplit("/", 1)[1]
    assert link.startswith("http://localhost/status/")
    assert token != str(ticket.id) and len(token) > 40
    assert tokens.ticket_from_link_token(token).id == ticket.id
    assert (ticket.kind, ticket.status, ticket.source) == ("complaint", "new", "web")
    assert ticket.customer.email == "gudrun@example.is"
    assert ticket.customer.name == "Guðrún Jónsdóttir"
    assert ticket.customer.phone == "+3545551234"
    message = db.session.scalars(select(Message)).one()
    assert message.body == "The lamp arrived broken.\nPlease send a new one."
    assert (message.author_type, message.customer_id) == ("customer", ticket.customer_id)

    page = client.get(link)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert f"reference {ticket.reference}" in html and link in html  # the one-time flash
    assert "Broken lamp" in html and "Please send a new one." in html
    assert "Received: our team will look at it soon" in html
    again = client.get(link).get_data(as_text=True)
    assert link not in again and ticket.reference in again


def test_same_email_in_another_case_is_the_same_customer(client: FlaskClient) -> None:
    assert submit(client, email="Maria.Lopez@Example.COM").status_code == 303
    assert submit(client, email="maria.lopez@example.com", subject="Again").status_code == 303
    assert count(Customer) == 1 and count(Ticket) == 2


REQUIRED_FIELD_CASES = [
    ({"name": ""}, "name"),
    ({"email": ""}, "email"),
    ({"email": "not-an-address"}, "email"),
    ({"email": "two@@example.com"}, "email"),
    ({"phone": "12"}, "phone"),
    ({"kind": ""}, "kind"),
    ({"kind": "praise"}, "kind"),
    ({"subject": ""}, "subject"),
    ({"subject": "x" * 201}, "subject"),
    ({"name": "n" * 201}, "name"),
    ({"body": "   \n  "}, "body"),
]


@pytest.mark.parametrize(("changes", "field"), REQUIRED_FIELD_CASES)
def test_invalid_field_keeps_input_and_creates_nothing(
    client: FlaskClient, changes: dict[str, str], field: str
) -> None:
    data = {**form(subject="Kept subject ✓", body="Kept body, line one\nline two"), **changes}
    response = post_form(client, "/", data)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert nothing_created()
    assert f'id="f-{field}-error"' in page
    assert re.search(rf'aria-describedby="[^"]*f-{field}-error', page)
    assert 'aria-invalid="true"' in page and 'role="alert"' in page
    assert "Guðrún Jónsdóttir" in page or field == "name"
    if field not in ("subject", "body"):
        assert 'value="Kept subject ✓"' in page
        assert ">Kept body, line one\nline two</textarea>" in page


def test_body_over_the_limit_is_413_and_creates_nothing(client: FlaskClient) -> None:
    response = submit(client, body="b" * (BODY_LIMIT + 1))
    assert response.status_code == 413
    assert "too long" in response.get_data(as_text=True)
    assert nothing_created()


def test_request_over_max_content_length_is_413_page(client: FlaskClient) -> None:
    data = form(csrf_token=csrf_from(client, "/"))
    data["attachments"] = (io.BytesIO(b"x" * (REQUEST_LIMIT + 1)), "big.bin")
    response = client.post("/", data=data)
    assert response.status_code == 413
    assert "larger than this help desk accepts" in response.get_data(as_text=True)
    assert nothing_created()


def test_post_without_csrf_token_is_400_and_creates_nothing(client: FlaskClient) -> None:
    response = client.post("/", data=form())
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)
    assert nothing_created()


def test_honeypot_filled_is_400_and_creates_nothing(client: FlaskClient) -> None:
    response = submit(client, website="http://spam.example")
    assert response.status_code == 400
    assert "filled in by a program" in response.get_data(as_text=True)
    assert nothing_created()


def test_burst_from_one_address_is_rate_limited(burst_limit: int, client: FlaskClient) -> None:
    for number in range(burst_limit):
        assert submit(client, subject=f"Request {number}").status_code == 303
    response = submit(client, subject="One too many")
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert count(Ticket) == burst_limit
    token = tokens.ticket_link_token(db.session.scalars(select(Ticket)).first())
    reply = post_form(client, f"/status/{token}/reply", {"body": "More"}, page=f"/status/{token}")
    assert reply.status_code == 429
    assert count(Message) == burst_limit
    elsewhere = post_form(client, "/", form(), environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert elsewhere.status_code == 303  # the limit is per client address
    assert count(Ticket) == burst_limit + 1


# ---- hostile and international text ------------------------------------------------------


def test_markup_and_script_uris_are_rendered_inert(client: FlaskClient) -> None:
    path = status_path(
        client,
        name='<img src=x onerror="alert(1)">',
        subject="<script>alert('s')</script>",
        body=(
            "<script>alert('b')</script> <a href=\"javascript:alert(1)\">click</a> "
            '<img src="data:text/html;base64,PHNjcmlwdD4="> [x](javascript:alert(2))'
        ),
    )
    html = client.get(path).get_data(as_text=True)
    assert "<script>alert" not in html and "&lt;script&gt;alert(" in html
    assert "<img src=x" not in html and '<img src="data:' not in html
    assert 'href="javascript:' not in html and 'href="data:' not in html
    assert "onerror=" not in html.replace("onerror=&#34;", "")
    assert only_ticket().subject == "<script>alert('s')</script>"


def test_hebrew_greek_icelandic_and_emoji_round_trip(client: FlaskClient) -> None:
    subject = "שלום — Καλημέρα — Þú ert æði 🎉"
    body = "Γειά σου κόσμε\nשלום עולם\nÆðislegt, ég þakka þér 👍🏽😀"
    name = "Þórunn Ægisdóttir"
    path = status_path(client, subject=subject, body=body, name=name)
    ticket = only_ticket()
    message = db.session.scalars(select(Message)).one()
    assert (ticket.subject, message.body, ticket.customer.name) == (subject, body, name)
    html = client.get(path).get_data(as_text=True)
    assert subject in html and body in html and name in html


# ---- the status page ---------------------------------------------------------------------


def test_status_page_shows_public_conversation_only(client: FlaskClient, agent: Agent) -> None:
    path = status_path(client)
    ticket = only_ticket()
    services.add_message(ticket, body="We are sending a new lamp.", author=agent)
    services.add_message(
        ticket,
        body="SECRET: customer is a known complainer",
        author=agent,
        internal=True,
        uploads=[Upload("private.txt", "text/plain", b"internal only")],
    )
    note_file = db.session.scalars(select(Attachment)).one()
    html = client.get(path).get_data(as_text=True)
    assert "We are sending a new lamp." in html and "Ana Agent" in html
    assert "SECRET" not in html and "private.txt" not in html
    assert "agent@example.com" not in html
    assert client.get(f"{path}/attachments/{note_file.id}").status_code == 404


def test_customer_reply_is_added_and_reopens_resolved_ticket(
    client: FlaskClient, agent: Agent
) -> None:
    path = status_path(client)
    ticket = only_ticket()
    services.update_ticket(ticket, {"status": "resolved"}, actor=agent)
    response = post_form(
        client,
        f"{path}/reply",
        {"body": "It is still broken ✗", "attachments": (io.BytesIO(b"photo"), "lamp.png")},
        page=path,
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith(path)
    ticket = only_ticket()
    assert ticket.status == "open"
    reply = db.session.scalars(select(Message).order_by(Message.id.desc())).first()
    assert (reply.body, reply.customer_id, reply.internal) == (
        "It is still broken ✗",
        ticket.customer_id,
        False,
    )
    html = client.get(path).get_data(as_text=True)
    assert "Your reply was added" in html and "lamp.png" in html


@pytest.mark.parametrize(
    ("body", "status"), [("", 422), ("  ", 422), ("r" * (BODY_LIMIT + 1), 413)]
)
def test_bad_reply_keeps_text_and_adds_nothing(client: FlaskClient, body: str, status: int) -> None:
    path = status_path(client)
    response = post_form(client, f"{path}/reply", {"body": body}, page=path)
    page = response.get_data(as_text=True)
    assert response.status_code == status
    assert count(Message) == 1
    assert 'id="f-body-error"' in page and f">{body}</textarea>" in page


def test_merged_ticket_link_shows_the_ticket_it_was_merged_into(
    client: FlaskClient, agent: Agent
) -> None:
    first = status_path(client, subject="First")
    status_path(client, subject="Second")
    source, target = db.session.scalars(select(Ticket).order_by(Ticket.id)).all()
    services.merge_tickets(source, target, actor=agent)
    html = client.get(first).get_data(as_text=True)
    assert f"Request {target.reference}" in html and "was joined with" in html
    assert post_form(client, f"{first}/reply", {"body": "Hi"}, page=first).status_code == 303
    assert db.session.scalars(select(Message).order_by(Message.id.desc())).first().ticket_id == (
        target.id
    )


def test_bad_links_answer_the_same_404(app: Flask, client: FlaskClient) -> None:
    path = status_path(client)
    ticket = only_ticket()
    good = link_token(app, ticket)
    assert client.get(f"/status/{good}").status_code == 200  # the way tokens are made works
    expired = link_token(app, ticket, days_ago=LINK_DAYS + 1)
    forged = link_token(app, ticket, secret="not-the-secret")
    payload, _, rest = good.partition(".")
    tampered = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + "." + rest
    unknown = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=LINK_SALT).dumps(
        [ticket.id + 1000, ticket.public_key]
    )
    bad = [expired, forged, tampered, unknown, str(ticket.id), "x", "A" * 5000]

    missing = client.get("/status/never-issued")
    assert missing.status_code == 404
    for token in bad:
        response = client.get(f"/status/{token}")
        assert response.status_code == 404, token
        assert response.get_data() == missing.get_data()

    ticket.public_key = new_public_key()  # the ticket's links are revoked
    db.session.commit()
    revoked = client.get(path)
    assert revoked.status_code == 404 and revoked.get_data() == missing.get_data()
    for token in [*bad, path.rsplit("/", 1)[1]]:
        assert client.get(f"/status/{token}/attachments/1").status_code == 404
        reply = post_form(client, f"/status/{token}/reply", {"body": "x"}, page="/")
        assert reply.status_code == 404
    assert count(Message) == 1


def test_status_page_queries_do_not_grow_with_messages(
    client: FlaskClient, agent: Agent, count_queries
) -> None:
    path = status_path(client)
    ticket = only_ticket()

    def measure() -> int:
        db.session.expire_all()
        with count_queries as counter:
            assert client.get(path).status_code == 200
        return counter.count

    few = measure()
    ticket = only_ticket()
    for number in range(8):
        author: Any = agent if number % 2 else ticket.customer
        services.add_message(
            ticket,
            body=f"message {number}",
            author=author,
            uploads=[Upload(f"file{number}.txt", "text/plain", b"data")],
        )
    many = measure()
    assert few == many <= 3, (few, many)


# ---- attachments -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent_name", "stored_name"),
    [
        ("../../etc/passwd", "passwd"),
        # A conforming client escapes a backslash in the quoted name; a browser may not.
        ("a\\\\b.txt", "b.txt"),
        ("..\\\\..\\\\windows\\\\win.ini", "win.ini"),
        ("a\\b.txt", "ab.txt"),
        ("evil\x00.txt", "evil_.txt"),
        ("/abs/path/ok.pdf", "ok.pdf"),
    ],
)
def test_attachment_names_cannot_reach_the_file_system(
    app: Flask, client: FlaskClient, sent_name: str, stored_name: str
) -> None:
    path = status_path(client, attachments=(io.BytesIO(b"contents"), sent_name))
    stored = db.session.scalars(select(Attachment)).one()
    assert stored.filename == stored_name
    on_disk = attachments_on_disk(app)
    assert len(on_disk) == 1 and stored_name not in on_disk[0].name
    assert on_disk[0].is_relative_to(Path(app.config["ATTACHMENTS_DIR"]))
    response = client.get(f"{path}/attachments/{stored.id}")
    assert response.status_code == 200 and response.data == b"contents"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and stored_name in disposition
    assert "/" not in disposition and "\\" not in disposition and "\x00" not in disposition


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
        ("page.html", b"<html><script>alert(1)</script></html>"),
        ("page.htm", b"<script>alert(1)</script>"),
    ],
)
def test_active_content_is_served_only_as_download(
    client: FlaskClient, name: str, data: bytes
) -> None:
    path = status_path(client, attachments=(io.BytesIO(data), name))
    stored = db.session.scalars(select(Attachment)).one()
    response = client.get(f"{path}/attachments/{stored.id}")
    assert response.status_code == 200 and response.data == data
    assert response.mimetype == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


def test_image_is_shown_inline_and_other_tickets_files_are_not_reachable(
    client: FlaskClient,
) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 20
    mine = status_path(client, attachments=[(io.BytesIO(png), "photo.png")])
    other = status_path(
        client, email="other@example.com", attachments=[(io.BytesIO(b"theirs"), "theirs.txt")]
    )
    photo, theirs = db.session.scalars(select(Attachment).order_by(Attachment.id)).all()
    response = client.get(f"{mine}/attachments/{photo.id}")
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert response.headers["Content-Disposition"].startswith("inline;")
    assert client.get(f"{mine}/attachments/{theirs.id}").status_code == 404
    assert client.get(f"{other}/attachments/{theirs.id}").status_code == 200
    assert client.get(f"{mine}/attachments/999999").status_code == 404


def test_several_attachments_in_one_request(client: FlaskClient) -> None:
    files = [(io.BytesIO(b"one"), "one.txt"), (io.BytesIO(b"two"), "two.txt")]
    html = client.get(status_path(client, attachments=files)).get_data(as_text=True)
    assert count(Attachment) == 2 and "one.txt" in html and "two.txt" in html


def test_attachment_over_the_size_limit_is_413_and_creates_nothing(
    app: Flask, client: FlaskClient
) -> None:
    files = [(io.BytesIO(b"ok"), "ok.txt"), (io.BytesIO(b"x" * (FILE_LIMIT + 1)), "big.txt")]
    response = submit(client, attachments=files)
    page = response.get_data(as_text=True)
    assert response.status_code == 413
    assert "big.txt" in page and 'id="f-attachments-error"' in page
    assert "Broken lamp" in page  # what they typed is kept
    assert nothing_created() and attachments_on_disk(app) == []


def test_a_client_that_never_follows_the_redirect_keeps_a_small_cookie(app_config, app, client):
    app.config["PORTAL_RATE_LIMIT"] = "1000/60"
    for number in range(40):
        response = post_form(
            client,
            "/",
            {
                "name": "Bot",
                "email": "bot@example.com",
                "kind": "support",
                "subject": f"Post {number}",
                "body": "Hello",
            },
        )
        assert response.status_code == 303
    cookie = client.get_cookie("session")
    assert cookie is not None and len(cookie.value) < 1000
