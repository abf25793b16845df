"""A received mail's HTML on the agent's ticket page: shown as text by default, as HTML on
request (a link, so no JS is needed), cleaned again at display time so nothing in it runs."""

from __future__ import annotations

import re

import pytest

from helpdesk.core.mail.display import display_html
from helpdesk.core.mail.ingest import ingest
from helpdesk.core.models import Message
from helpdesk.extensions import db

HOSTILE = (
    '<p style="background:url(https://track.example/bg.png)">Hello <b>agent</b></p>'
    '<img src="https://track.example/pixel.gif" alt="logo" onerror="alert(1)">'
    "<script>alert('script')</script>"
    "<style>body { display: none } .message { position: fixed }</style>"
    '<a href="javascript:alert(2)">click</a> '
    '<a href="https://shop.example/order/7">your order</a>'
    '<svg onload="alert(3)"></svg><iframe src="https://evil.example/"></iframe>'
    '<div class="layout-ticket" id="reply-body">owned?</div>'
    "</div></article><p>broken out?</p>"
)


def html_mail(html: str, message_id: str = "<html-1@example.org>") -> bytes:
    return (
        "From: Carol <carol@example.org>\r\nTo: helpdesk@example.com\r\nSubject: Formatted\r\n"
        f"Message-ID: {message_id}\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/alternative; boundary=b\r\n\r\n"
        "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello agent (text part)\r\n"
        "--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        f"{html}\r\n--b--\r\n"
    ).encode()


@pytest.fixture
def mail_app(app_config, app):
    app_config.update(MAIL_DEFAULT_SENDER="helpdesk@example.com")
    return app


def html_part(page: str) -> str:
    """The HTML container of the (only) message on a ticket page."""
    match = re.search(r'<div class="body body-html">(.*?)</article>', page, re.S)
    assert match, page
    return match.group(1)


def assert_inert(markup: str) -> None:
    lowered = markup.lower()
    for needle in (
        "<script",
        "<style",
        "<svg",
        "<iframe",
        "onerror",
        "onload",
        "javascript:",
        "style=",
        "url(",
        "track.example",
        "class=",
        "id=",
    ):
        assert needle not in lowered, (needle, markup)


def test_text_by_default_with_a_link_to_the_html(mail_app, agent_client):
    outcome = ingest(html_mail("<p>Hello <b>agent</b></p>"))
    page = agent_client.get(f"/tickets/{outcome.ticket_id}").get_data(as_text=True)
    assert "Hello agent (text part)" in page
    assert "body-html" not in page
    link = f"/tickets/{outcome.ticket_id}?view=html#message-"
    assert link in page and "Show as formatted mail (HTML)" in page
    shown = agent_client.get(f"/tickets/{outcome.ticket_id}?view=html")
    assert "default-src 'self'" in shown.headers["Content-Security-Policy"]
    part = html_part(shown.get_data(as_text=True))
    assert "Hello <b>agent</b>" in part
    page = shown.get_data(as_text=True)
    assert "Show as plain text" in page and f"/tickets/{outcome.ticket_id}?view=text" in page


def test_mail_without_html_has_no_toggle(mail_app, agent_client):
    raw = (
        b"From: dan@example.org\r\nTo: helpdesk@example.com\r\nSubject: Plain\r\n"
        b"Message-ID: <plain-1@example.org>\r\n\r\nJust text.\r\n"
    )
    outcome = ingest(raw)
    page = agent_client.get(f"/tickets/{outcome.ticket_id}?view=html").get_data(as_text=True)
    assert "Just text." in page
    assert "body-html" not in page and "Show as formatted mail" not in page


def test_hostile_html_mail_is_inert(mail_app, agent_client):
    outcome = ingest(html_mail(HOSTILE))
    page = agent_client.get(f"/tickets/{outcome.ticket_id}?view=html").get_data(as_text=True)
    part = html_part(page)
    assert_inert(part)
    assert "Hello <b>agent</b>" in part
    assert 'href="https://shop.example/order/7"' in part and "nofollow" in part
    assert 'alt="logo"' in part  # the image's text stays; its remote source does not


def test_stored_html_is_cleaned_again_at_display(mail_app, agent_client):
    """Markup that reached the database without the ingest-time cleaning (an older version,
    an import) is still made inert when shown."""
    outcome = ingest(html_mail("<p>placeholder</p>", message_id="<html-2@example.org>"))
    message = db.session.scalar(db.select(Message).where(Message.ticket_id == outcome.ticket_id))
    message.body_html = HOSTILE
    db.session.commit()
    page = agent_client.get(f"/tickets/{outcome.ticket_id}?view=html").get_data(as_text=True)
    part = html_part(page)
    assert_inert(part)
    assert "broken out?" in part  # stray closing tags cannot end the container early
    assert page.count("<article") == page.count("</article>")


@pytest.mark.parametrize(
    "markup",
    [
        "<img src=x onerror=alert(1)>",
        "<a href='JaVaScRiPt:alert(1)'>x</a>",
        "<a href='java&#x09;script:alert(1)'>x</a>",
        "<p style='width: expression(alert(1))'>x</p>",
        "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
        "<noscript><p title='</noscript><img src=x onerror=alert(1)>'>",
        "<form action='https://evil.example'><button>go</button></form>",
        "<meta http-equiv='refresh' content='0;url=https://evil.example'>",
        "<base href='https://evil.example/'>",
        "<object data='https://evil.example/x.swf'></object>",
    ],
)
def test_display_cleaning_refuses_known_tricks(markup):
    cleaned = str(display_html(markup)).lower()
    for needle in ("onerror", "javascript", "expression", "<form", "<meta", "<base", "<object"):
        assert needle not in cleaned
    assert "<img src" not in cleaned
