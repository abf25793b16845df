"""Figures of the letters plugin, in-process on a fresh SQLite file:

- rendering a stored template (subject, text and HTML parts) for a ticket: the first call
  compiles it, every later one reuses the compiled version (target: at most 2 ms);
- a one-page PDF letter with the letterhead (target: at most 300 ms), English and Hebrew;
- the guided complaint form's POST against the plain portal form's POST of the same complaint
  (same subject and letter), through the Flask test client with CSRF off for both, interleaved
  (target: the guided median within 2 ms of the plain one).

    .venv/bin/python benchmarks/bench_letters.py [--posts N] [--renders N] [--smoke]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from helpdesk import create_app
from helpdesk.core import services
from helpdesk.core.accounts import create_agent
from helpdesk.extensions import db
from helpdesk.plugins import current_plugins
from plugins.letters import compose, pdf, render, service


def _times(run: Callable[[], object], count: int) -> list[float]:
    found = []
    for _ in range(count):
        started = time.perf_counter()
        run()
        found.append((time.perf_counter() - started) * 1000)
    return found


def _row(name: str, times: list[float], target: str) -> str:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"| {name} | {statistics.median(times):.3f} | {p95:.3f} | {len(times)} | {target} |"


def _renders(app, count: int, pdf_count: int) -> list[str]:
    with app.test_request_context():
        agent = create_agent(email="bench@example.com", name="Bench Agent", password="x" * 12)
        ticket = services.open_ticket(
            subject="Broken kettle",
            body="It leaked.",
            kind="complaint",
            customer_email="cleo@example.com",
            customer_name="Cleo Client",
            extra={
                "claim": {"outcome_wanted": "refund", "amount_claimed": "49.90", "currency": "EUR"}
            },
        )
        template = next(t for t in service.list_templates() if t.key == "apology_refund")
        context = service.ticket_context(ticket, agent)
        render.compiled.cache_clear()
        first = _times(lambda: service.fill(template, context), 1)
        stored = _times(lambda: service.fill(template, context), count)
        with_context = _times(
            lambda: service.fill(template, service.ticket_context(ticket, agent)), count
        )
        letter = service.fill(template, context)
        hebrew = "שלום דנה,\n\nתודה שכתבת לנו. נחזיר לך 49.90 EUR תוך חמישה ימי עבודה."
        first_pdf = _times(lambda: pdf.letter_pdf(letter["subject"], letter["text"]), 1)
        pdfs = _times(lambda: pdf.letter_pdf(letter["subject"], letter["text"]), pdf_count)
        rtl_pdfs = _times(lambda: pdf.letter_pdf("תלונה", hebrew, language="he"), pdf_count)
    return [
        _row("render a stored template, first call (compiles)", first, ""),
        _row("render a stored template (compiled once)", stored, "≤ 2 ms"),
        _row("… with the ticket's variables loaded", with_context, ""),
        _row("PDF of a one-page letter, first in the process", first_pdf, ""),
        _row("PDF of a one-page letter (English)", pdfs, "≤ 300 ms"),
        _row("PDF of a one-page letter (Hebrew, right to left)", rtl_pdfs, "≤ 300 ms"),
    ]


def _posts(app, count: int) -> list[str]:
    client = app.test_client()
    guided = {
        "name": "Cleo Client",
        "email": "cleo@example.com",
        "relation": "A client since 2019",
        "product": "Kettle",
        "incident_date": "2026-01-02",
        "order_reference": "A-1",
        "story": "It leaked on the first day.",
        "costs": ["money", "time"],
        "outcome_wanted": "refund",
        "amount_claimed": "49.90",
        "currency": "EUR",
        "action": "send",
    }
    with app.test_request_context():
        letter = compose.compose(guided, guided["costs"], guided["name"])
    # The same complaint through the plain form: what the guided form adds is the difference.
    plain = {
        "name": guided["name"],
        "email": guided["email"],
        "kind": "complaint",
        "subject": letter["subject"],
        "body": letter["text"],
    }
    for _ in range(5):  # warm up both
        client.post("/", data=plain)
        client.post("/complaint", data=guided)
    plain_times, guided_times = [], []
    for _ in range(count):  # interleaved, so both see the same database and machine load
        plain_times += _times(lambda: _ok(client.post("/", data=plain)), 1)
        guided_times += _times(lambda: _ok(client.post("/complaint", data=guided)), 1)
    gap = statistics.median(guided_times) - statistics.median(plain_times)
    return [
        _row("plain portal form POST", plain_times, ""),
        _row("guided complaint form POST", guided_times, f"≤ plain + 2 ms (now {gap:+.2f})"),
    ]


def _ok(response) -> None:
    if response.status_code != 303:
        raise SystemExit(f"POST answered {response.status_code}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=300)
    parser.add_argument("--renders", type=int, default=2000)
    parser.add_argument("--pdfs", type=int, default=30)
    parser.add_argument("--smoke", action="store_true", help="a few iterations, in seconds")
    args = parser.parse_args()
    if args.smoke:
        args.posts, args.renders, args.pdfs = 10, 50, 3
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(
            {
                "TESTING": True,
                "DATABASE_URL": f"sqlite:///{Path(tmp) / 'bench.sqlite3'}",
                "SECRET_KEY": "bench",
                "WTF_CSRF_ENABLED": False,
                "PORTAL_RATE_LIMIT": "1000000/60",
                "ATTACHMENTS_DIR": str(Path(tmp) / "files"),
                "PLUGINS_DISABLED": ["categories", "surveys", "loyalty"],
            }
        )
        with app.app_context():
            current_plugins().upgrade()
            rows = _renders(app, args.renders, args.pdfs) + _posts(app, args.posts)
            db.session.remove()
            db.engine.dispose()
    print("| figure | median ms | p95 ms | runs | target |")
    print("| --- | ---: | ---: | ---: | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
