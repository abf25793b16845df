"""Loyalty figures: card lookup over HTTP, accrual through the orders import, ``loyalty verify``.

    .venv/bin/python benchmarks/bench_loyalty.py            # 100,000 cards, 1,000,000 rows
    .venv/bin/python benchmarks/bench_loyalty.py --smoke    # tiny, in seconds

Seeds a fresh SQLite database with bulk inserts (cards with balances equal to their ledger),
then measures ``GET /api/v1/cards/<number>`` under gunicorn (``bench_http.gunicorn``: 2 sync
workers, one sequential client), ``helpdesk orders import`` of a CSV (each order accrues bonus,
a batch at a time) and ``helpdesk loyalty verify``, and prints a table against the issue's
targets with the load average at the start of each measurement (2 shared CPUs).
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import bench_http
import click
import httpx
from sqlalchemy import insert
from stdnum import luhn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _seed(url: str, n_cards: int, n_rows: int) -> tuple[list[str], str]:
    """Customers, cards and ledger rows in bulk; returns some numbers and an API token."""
    from helpdesk import create_app
    from helpdesk.core import tokens
    from helpdesk.core.accounts import create_agent
    from helpdesk.core.models import Customer
    from helpdesk.extensions import db
    from helpdesk.plugins import current_plugins
    from plugins.loyalty.models import Card, LedgerEntry

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "LOYALTY_AUTO_ISSUE": False})
    with app.app_context():
        current_plugins().upgrade()
        now = datetime.now(UTC)
        per_card = max(1, n_rows // n_cards)
        for start in range(0, n_cards, 10_000):
            ids = range(start + 1, min(n_cards, start + 10_000) + 1)
            db.session.execute(
                insert(Customer),
                [
                    {
                        "id": i,
                        "email": f"c{i}@example.com",
                        "email_key": f"c{i}@example.com",
                        "name": "",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in ids
                ],
            )
            db.session.execute(
                insert(Card),
                [
                    {
                        "id": i,
                        "number": _number(i),
                        "customer_id": i,
                        "active_customer_id": i,
                        "status": "active",
                        "currency": "EUR",
                        "balance": per_card * 1,
                        "owed": 0,
                        "created_at": now,
                    }
                    for i in ids
                ],
            )
            db.session.execute(
                insert(LedgerEntry),
                [
                    {
                        "card_id": i,
                        "kind": "accrual",
                        "amount": 1,
                        "owed_change": 0,
                        "balance_after": k + 1,
                        "owed_after": 0,
                        "reason": "",
                        "created_at": now,
                    }
                    for i in ids
                    for k in range(per_card)
                ],
            )
            db.session.commit()
        agent = create_agent(email="bench@example.com", name="B", password="x" * 12)
        token = tokens.create_api_token(agent, "bench")
        db.session.commit()
        db.engine.dispose()
    return [_number(i) for i in range(1, n_cards + 1, max(1, n_cards // 500))], token


def _number(i: int) -> str:
    body = f"4{i:014d}"
    return body + luhn.calc_check_digit(body)


def _lookup(url: str, numbers: list[str], token: str, tmp: Path) -> tuple[float, float]:
    """Median and p95 (ms) of ``GET /api/v1/cards/<number>`` under gunicorn, one client."""
    headers = {"Authorization": f"Bearer {token}"}
    with (
        bench_http.gunicorn(url, tmp, 2) as port,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as client,
    ):
        for number in numbers[:20]:
            client.get(f"/api/v1/cards/{number}")
        times = []
        for number in numbers:
            started = time.perf_counter()
            answer = client.get(f"/api/v1/cards/{number}")
            times.append((time.perf_counter() - started) * 1000)
            assert answer.status_code == 200, answer.text
    return statistics.median(times), bench_http.percentile(times, 0.95)


def _load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def _cli(url: str, *args: str) -> tuple[float, str]:
    """Run ``helpdesk ARGS``: the wall-clock seconds (start-up included) and its output."""
    env = {**os.environ, "HELPDESK_DATABASE_URL": url, "HELPDESK_SECRET_KEY": "bench"}
    started = time.perf_counter()
    done = subprocess.run(
        [str(Path(sys.executable).with_name("helpdesk")), *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return time.perf_counter() - started, done.stdout


def _reported(output: str, pattern: str) -> float:
    """A number the command printed (its own timing, start-up excluded)."""
    found = re.search(pattern, output)
    if found is None:
        raise click.ClickException(f"no {pattern!r} in:\n{output}")
    return float(found.group(1).replace(",", ""))


@click.command()
@click.option("--cards", "n_cards", default=100_000, show_default=True)
@click.option("--rows", "n_rows", default=1_000_000, show_default=True)
@click.option("--orders", "n_orders", default=20_000, show_default=True)
@click.option("--smoke", is_flag=True, help="1,000 cards, 10,000 rows, 1,000 orders.")
def main(n_cards: int, n_rows: int, n_orders: int, smoke: bool) -> None:
    """Seed, measure, print the table (with the load average before each figure)."""
    if smoke:
        n_cards, n_rows, n_orders = 1_000, 10_000, 1_000
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        url = f"sqlite:///{tmp / 'bench.sqlite3'}"
        started = time.perf_counter()
        numbers, token = _seed(url, n_cards, n_rows)
        click.echo(
            f"seeded {n_cards:,} cards, {n_rows:,} rows in {time.perf_counter() - started:.1f} s"
        )
        lookup_load = _load()
        median, p95 = _lookup(url, numbers, token, tmp)
        csv_file = tmp / "orders.csv"
        with csv_file.open("w") as out:
            out.write("customer_email,date,amount,currency,reference\n")
            for i in range(n_orders):
                out.write(f"c{i % n_cards + 1}@example.com,{date.today()},100.00,EUR,B-{i}\n")
        import_load = _load()
        seconds, output = _cli(url, "orders", "import", str(csv_file))
        own_rate = _reported(output, r"\(([\d,]+) rows/s\)")
        verify_load = _load()
        verify, output = _cli(url, "loyalty", "verify")
        own_verify = _reported(output, r"mismatches \(([\d.]+) s\)")
    click.echo(
        "| figure | load | measured | target |\n| --- | --- | --- | --- |\n"
        f"| `GET /api/v1/cards/<number>` ({n_cards:,} cards, {n_rows:,} rows), median / p95 "
        f"| {lookup_load} | {median:.1f} / {p95:.1f} ms | p95 ≤ 10 ms |\n"
        f"| accrual through `helpdesk orders import` ({n_orders:,} orders): the command's rate; "
        f"wall clock with start-up | {import_load} | {own_rate:,.0f} orders/s; "
        f"{n_orders / seconds:,.0f} orders/s ({seconds:.1f} s) | ≥ 1,000 orders/s |\n"
        f"| `helpdesk loyalty verify` ({n_rows:,} rows): its own time; wall clock with start-up "
        f"| {verify_load} | {own_verify:.1f} s; {verify:.1f} s | ≤ 10 s |"
    )


if __name__ == "__main__":
    main()
