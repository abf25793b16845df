"""Retention figures: ``retention review``, the summary API's work and the dashboard over 100,000
customers and 1,000,000 orders (issue 10), on SQLite or PostgreSQL.

Seeds with bulk inserts: customers (a third never order), each ordering one to eight times a
quarter over three years, some stopping or buying less over time, half the orders with one to
three product lines. Then times the full rebuild of the spans the figures are read from
(``helpdesk retention rebuild``), at several reference dates the summary and the dashboard page
(in-process, a logged-in agent; twice each: no date is ever computed ahead), catching up with
new orders, and ``review`` (first run, which creates the statuses and call tasks, and a second
run).

    .venv/bin/python benchmarks/bench_retention.py                 # 100k / 1M on SQLite
    .venv/bin/python benchmarks/bench_retention.py --smoke         # tiny, runs in seconds
    .venv/bin/python benchmarks/bench_retention.py --database-url postgresql://...
    .venv/bin/python benchmarks/bench_retention.py --seeded /tmp/retention.sqlite3

``--seeded FILE`` (SQLite) keeps the seeded and rebuilt database in FILE, and a later run
starts from a copy of it (FILE is never changed then): no seeding, and no rebuild to time.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import insert, select, text

from helpdesk import create_app
from helpdesk.core.accounts import create_agent
from helpdesk.core.models import Agent, Customer, Order, OrderLine
from helpdesk.core.orders import record_order
from helpdesk.extensions import db
from helpdesk.plugins import current_plugins
from plugins.retention import service, spans
from plugins.retention.review import review

START = date(2023, 1, 1)
DAYS = 3 * 365
END = START + timedelta(days=DAYS)
BATCH = 20_000
LINES = ("Coffee", "Tea", "Cake", "Mugs", "Beans", "Gifts")
TARGETS = {"review": 30.0, "summary": 1.0, "dashboard": 1.0, "rebuild": None, "catch-up": 1.0}


def _seed(customers: int, orders: int) -> None:
    """Bulk-insert the customers, orders and lines (deterministic)."""
    rng = random.Random(10)
    stamp = datetime(2023, 1, 1, tzinfo=UTC)
    for first in range(1, customers + 1, BATCH):
        db.session.execute(
            insert(Customer),
            [
                {
                    "id": i,
                    "email": f"c{i}@example.com",
                    "email_key": f"c{i}@example.com",
                    "name": f"Client {i}",
                    "notes": "",
                    "created_at": stamp,
                    "updated_at": stamp,
                }
                for i in range(first, min(first + BATCH, customers + 1))
            ],
        )
    buyers = list(range(1, customers + 1))[: max(1, customers * 2 // 3)]
    weights = [rng.choice((1, 2, 4, 8)) for _ in buyers]
    stops = {c: START + timedelta(days=rng.randrange(DAYS * 2)) for c in buyers}
    order_id = line_id = 0
    while order_id < orders:
        chunk = min(BATCH, orders - order_id)
        picked = rng.choices(buyers, weights, k=chunk)
        order_rows, line_rows = [], []
        for customer in picked:
            day = START + timedelta(days=rng.randrange(DAYS))
            if day > stops[customer]:
                day = START + timedelta(days=rng.randrange(max(1, (stops[customer] - START).days)))
            order_id += 1
            amount = Decimal(rng.randint(500, 50_000)) / 100
            order_rows.append(
                {
                    "id": order_id,
                    "customer_id": customer,
                    "ordered_on": day,
                    "amount": amount,
                    "currency": "EUR" if customer % 10 else "USD",
                    "channel": "",
                    "source": "bench",
                    "reference": f"o{order_id}",
                    "created_at": stamp,
                }
            )
            if order_id % 2:
                for name in rng.sample(LINES, rng.randint(1, 3)):
                    line_id += 1
                    line_rows.append(
                        {"id": line_id, "order_id": order_id, "product_line": name, "amount": 1}
                    )
        db.session.execute(insert(Order), order_rows)
        if line_rows:
            db.session.execute(insert(OrderLine), line_rows)
        db.session.commit()


AGENT_EMAIL = "bench@example.com"


def _seed_and_rebuild(customers: int, orders: int, rows: list) -> Agent:
    """Seed, then time the full rebuild of the spans (a row of ``rows``); the bench agent."""
    began = time.perf_counter()
    _seed(customers, orders)
    agent = create_agent(email=AGENT_EMAIL, name="Bench", password="x" * 12)
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("ANALYZE"))
        db.session.commit()
    print(
        f"seeded {customers:,} customers, {orders:,} orders "
        f"({db.engine.dialect.name}) in {time.perf_counter() - began:.1f} s\n"
    )
    build, built = _timed(spans.rebuild)
    rows.append(
        (f"rebuild: {built.spans:,} spans of {built.customers:,} clients", build, None, "rebuild")
    )
    return agent


def _timed(action) -> tuple[float, object]:
    began = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - began
    print(f"  ({seconds:.2f} s, load {_load()})", flush=True)
    return seconds, result


def _load() -> str:
    """The load average over 1, 5 and 15 minutes."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _dashboard(app, agent_email: str, as_of: date) -> int:
    """The dashboard as an agent gets it (the real view, in-process)."""
    client = app.test_client()
    found = db.session.scalar(select(Agent).where(Agent.email == agent_email))
    with client.session_transaction() as session:
        session["_user_id"] = found.get_id()
        session["_fresh"] = True
    return client.get(f"/retention?as_of={as_of.isoformat()}").status_code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--database-url", help="an empty database to use (default: SQLite)")
    parser.add_argument("--smoke", action="store_true", help="2,000 customers, 20,000 orders")
    parser.add_argument(
        "--seeded", type=Path, help="a SQLite file to keep the seeded database in, or start from"
    )
    args = parser.parse_args()
    if args.seeded is not None and args.database_url:
        parser.error("--seeded is for SQLite: leave out --database-url")
    if args.smoke:
        args.customers, args.orders = 2_000, 20_000
    with tempfile.TemporaryDirectory(prefix="helpdesk-bench-retention-") as folder:
        path = Path(folder) / "retention.sqlite3"
        reused = args.seeded is not None and args.seeded.exists()
        if reused:
            shutil.copyfile(args.seeded, path)
        url = args.database_url or f"sqlite:///{path}"
        app = create_app(
            {
                "DATABASE_URL": url,
                "SECRET_KEY": "bench",
                "WTF_CSRF_ENABLED": False,
                "PLUGINS_DISABLED": ["hello"],
            }
        )
        with app.app_context():
            current_plugins().upgrade()
            rows = []
            if reused:
                agent = db.session.scalar(select(Agent).where(Agent.email == AGENT_EMAIL))
                print(f"started from a copy of {args.seeded} (seeded and rebuilt before)\n")
            else:
                agent = _seed_and_rebuild(args.customers, args.orders, rows)
                if args.seeded is not None:
                    db.session.commit()
                    db.engine.dispose()
                    shutil.copyfile(path, args.seeded)
            for as_of in (END, END - timedelta(days=365), START + timedelta(days=400)):
                first, summary = _timed(lambda d=as_of: service.summary(d))
                again, _ = _timed(lambda d=as_of: service.summary(d))
                page, status = _timed(lambda d=as_of: _dashboard(app, agent.email, d))
                assert status == 200, status
                page_again, _ = _timed(lambda d=as_of: _dashboard(app, agent.email, d))
                lost, drying = summary["lost_12m"]["count"], summary["drying_up"]["count"]
                rows.append((f"summary at {as_of}, first / again", first, again, "summary"))
                rows.append((f"dashboard at {as_of}, first / again", page, page_again, "dashboard"))
                print(f"  at {as_of}: {lost:,} lost in 12 months, {drying:,} drying up")
            buyers = db.session.scalars(select(Customer).where(Customer.id <= 30)).all()
            for index, customer in enumerate(buyers):
                record_order(
                    customer, ordered_on=END, amount="10.00", currency="EUR", reference=f"n{index}"
                )
            catch_up, _ = _timed(lambda: service.summary(END))
            rows.append((f"summary after {len(buyers)} new orders", catch_up, None, "catch-up"))
            first_review, result = _timed(lambda: review(END))
            second_review, again_result = _timed(lambda: review(END))
            rows.append(
                ("retention review, first / second run", first_review, second_review, "review")
            )
            print(
                f"  review: {result.clients:,} clients, {result.tasks:,} call tasks; "
                f"second run changed {again_result.changed}\n"
            )
        print(f"load average at the end: {_load()}")
        print("| figure | first (s) | again (s) | target (s) |")
        print("| --- | ---: | ---: | ---: |")
        for label, first, again, kind in rows:
            again_text = "" if again is None else f"{again:.2f}"
            target = "" if TARGETS[kind] is None else f"≤ {TARGETS[kind]:.0f}"
            print(f"| {label} | {first:.2f} | {again_text} | {target} |")


if __name__ == "__main__":
    main()
