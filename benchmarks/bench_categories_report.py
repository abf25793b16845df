"""How long the report "Which category pays?" takes over 1M orders and 100k customers on SQLite.

Seeds a fresh SQLite file with bulk inserts (``executemany``): 100,000 customers spread over the
four default categories (a tenth never put in one: the default), 1,000,000 orders over three
years in two currencies, and 200,000 tickets (a third complaints, most resolved). Then times
``category_report`` over the whole period and over one year, best of ``--repeat`` runs.

    .venv/bin/python benchmarks/bench_categories_report.py [--customers N] [--orders N]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

from helpdesk import create_app
from helpdesk.extensions import db
from helpdesk.plugins import current_plugins
from plugins.categories import report, service

START = date(2024, 1, 1)
DAYS = 3 * 365
BATCH = 50_000


def _seed(path: Path, customers: int, orders: int, tickets: int) -> None:
    rng = random.Random(7)
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    stamp = "2024-01-01 00:00:00.000000"
    con.executemany(
        "INSERT INTO customers (id, email, email_key, name, notes, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, '', ?, ?)",
        (
            (i, f"c{i}@example.com", f"c{i}@example.com", f"C {i}", stamp, stamp)
            for i in range(1, customers + 1)
        ),
    )
    ids = [row[0] for row in con.execute("SELECT id FROM categories ORDER BY position")]
    weights = [70, 10, 5, 5]
    con.executemany(
        "INSERT INTO customer_categories (customer_id, category_id, assigned_at) VALUES (?, ?, ?)",
        ((i, rng.choices(ids, weights)[0], stamp) for i in range(1, customers + 1) if i % 10),
    )
    for first in range(0, orders, BATCH):
        con.executemany(
            "INSERT INTO orders (customer_id, ordered_on, amount, currency, channel, source, "
            "reference, created_at) VALUES (?, ?, ?, ?, '', 'bench', ?, ?)",
            (
                (
                    rng.randint(1, customers),
                    (START + timedelta(days=rng.randrange(DAYS))).isoformat(),
                    rng.randint(100, 50_000) / 100,
                    "EUR" if rng.random() < 0.9 else "USD",
                    str(n),
                    stamp,
                )
                for n in range(first, min(first + BATCH, orders))
            ),
        )
    for first in range(0, tickets, BATCH):
        rows = []
        for n in range(first, min(first + BATCH, tickets)):
            created = datetime(2024, 1, 1) + timedelta(minutes=rng.randrange(DAYS * 1440))
            resolved = created + timedelta(minutes=rng.randrange(10, 5000))
            done = rng.random() < 0.8
            rows.append(
                (
                    "Help",
                    "resolved" if done else "open",
                    "complaint" if n % 3 == 0 else "support",
                    rng.randint(1, customers),
                    f"k{n}",
                    created.isoformat(" "),
                    resolved.isoformat(" ") if done else None,
                )
            )
        con.executemany(
            "INSERT INTO tickets (subject, status, priority, kind, source, customer_id, "
            "public_key, created_at, updated_at, last_activity_at, resolved_at, version) "
            "VALUES (?, ?, 'normal', ?, 'web', ?, ?, ?, ?, ?, ?, 1)",
            ((s, st, k, c, key, cr, cr, cr, rs) for s, st, k, c, key, cr, rs in rows),
        )
    con.commit()
    con.execute("ANALYZE")
    con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--tickets", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--database", type=Path, help="a SQLite file to keep: seeded if missing, else reused"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="helpdesk-bench-categories-") as folder:
        path = args.database or Path(folder) / "report.sqlite3"
        reuse = path.exists()
        app = create_app(
            {"DATABASE_URL": f"sqlite:///{path}", "SECRET_KEY": "bench", "PLUGINS": ["categories"]}
        )
        with app.app_context():
            current_plugins().upgrade()
            db.session.remove()
            db.engine.dispose()
        began = time.perf_counter()
        if not reuse:
            _seed(path, args.customers, args.orders, args.tickets)
        print(
            f"reused {path}"
            if reuse
            else f"seeded {args.customers:,} customers, {args.orders:,} orders, "
            f"{args.tickets:,} tickets in {time.perf_counter() - began:.1f} s"
        )
        with app.app_context():
            default = service.default_category()
            for label, start, end in [
                ("3 years", START, START + timedelta(days=DAYS)),
                ("1 year", date(2025, 1, 1), date(2025, 12, 31)),
            ]:
                times = []
                for _ in range(args.repeat):
                    began = time.perf_counter()
                    rows, total = report.category_report(start, end, "EUR", default.id)
                    times.append(time.perf_counter() - began)
                    db.session.rollback()
                orders = sum(row.orders for row in rows)
                print(
                    f"report over {label}: best {min(times):.3f} s, worst {max(times):.3f} s "
                    f"({orders:,} EUR orders, total {total})"
                )
            db.session.remove()
            db.engine.dispose()


if __name__ == "__main__":
    main()
