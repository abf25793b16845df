"""20 clients redeem from one card at once through gunicorn (2 sync workers): the accepted
redemptions never pass the balance, none is refused while the balance still covers it, and
``loyalty verify`` finds nothing. Runs on SQLite and PostgreSQL (``--db``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpdesk.core import customers, orders
from helpdesk.extensions import db
from plugins.loyalty import cards, ledger, maintenance

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 20


@pytest.fixture(autouse=True)
def loyalty_enabled(app_config: dict[str, Any]) -> None:
    app_config["PLUGINS_DISABLED"] = ["hello", "categories", "surveys"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def gunicorn(app, app_config: dict[str, Any], tmp_path: Path):
    """The app under gunicorn (2 sync workers) on the test database."""
    port = _free_port()
    env = {
        **os.environ,
        "HELPDESK_DATABASE_URL": app_config["DATABASE_URL"],
        "HELPDESK_SECRET_KEY": "concurrency-test",
        "HELPDESK_INSTANCE_PATH": str(tmp_path),
        "HELPDESK_API_RATE_LIMIT": '"1000000/60"',
        "HELPDESK_PLUGINS_DISABLED": '["hello", "categories", "surveys"]',
    }
    log = (tmp_path / "gunicorn.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "helpdesk.wsgi:app",
            "-w",
            "2",
            "-k",
            "sync",
            "--bind",
            f"127.0.0.1:{port}",
            "--no-control-socket",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(url + "/api/v1/openapi.json", timeout=2)
                break
            except httpx.HTTPError:
                assert process.poll() is None, (tmp_path / "gunicorn.log").read_text()
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_twenty_clients_never_overspend(gunicorn: str, api_headers, admin):
    who = customers.register_customer({"email": "race@example.com", "name": "Race"})
    orders.record_order(
        who, ordered_on=date.today(), amount="10000", currency="EUR", reference="RACE"
    )  # 500.00 accrued
    card = cards.active_card(who.id)
    ledger.adjust(card, {"amount": "-405", "reason": "leave 95.00"}, admin)
    db.session.commit()
    number = card.number

    def redeem(_: int) -> int:
        answer = httpx.post(
            f"{gunicorn}/api/v1/cards/{number}/redeem",
            json={"amount": "10.00", "order_reference": "RACE"},
            headers=api_headers,
            timeout=60,
        )
        return answer.status_code

    with ThreadPoolExecutor(CLIENTS) as pool:
        codes = list(pool.map(redeem, range(CLIENTS)))
    db.session.rollback()  # end the test's read snapshot: see what gunicorn committed
    card = cards.active_card(who.id)
    assert codes.count(200) == 9, codes  # 9 x 10.00 of 95.00; none refused while covered
    assert codes.count(409) == CLIENTS - 9, codes
    assert card.balance == Decimal("5.00")
    assert maintenance.verify() == []
