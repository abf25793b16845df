#!/usr/bin/env python
"""What the built-in plugins cost the agent's busiest pages: the queue and the ticket page,
served by gunicorn with every installed plugin disabled (the core alone) and with all of them
enabled, on the same seeded database.

    .venv/bin/python benchmarks/bench_plugin_overhead.py            # 20,000 tickets on SQLite
    .venv/bin/python benchmarks/bench_plugin_overhead.py --smoke    # tiny, to show it runs

The two set-ups are served side by side and take turns request by request (so drift in the
machine's load hits both alike): each round starts both servers afresh and times
``--requests`` sequential requests per page and set-up after a warm-up. The table
gives the pooled median and p95 per set-up and the overhead of the plugins on the median
(target: at most 20 %), and beside them the Python function calls of one request per page and
set-up, counted in-process (deterministic: the guide when the machine is shared). The plugins
are pinned with ``HELPDESK_PLUGINS_ENABLED`` / ``HELPDESK_PLUGINS_DISABLED``, so the
database's own enabled states do not matter.
"""

from __future__ import annotations

import contextlib
import cProfile
import json
import os
import pstats
import random
import statistics
import tempfile
import time
from importlib.metadata import entry_points
from pathlib import Path

import bench_http
import click
import seed as seeding

TARGET_OVERHEAD_PERCENT = 20.0
PAGES = ("queue page (25 rows)", "ticket page")
# Tickets whose pages are counted in-process (each page once, after a pass that warms caches).
COUNTED_TICKETS = 50


def installed_plugins() -> list[str]:
    """The names of the plugins installed through the ``helpdesk`` entry points."""
    return sorted({point.name for point in entry_points(group="helpdesk")})


def setups(names: list[str]) -> dict[str, dict[str, str]]:
    """The settings of each set-up: no plugin, or every installed one."""
    return {
        "core alone": {
            "HELPDESK_PLUGINS_DISABLED": json.dumps(names),
            "HELPDESK_PLUGINS_ENABLED": "[]",
        },
        "all plugins": {
            "HELPDESK_PLUGINS_ENABLED": json.dumps(names),
            "HELPDESK_PLUGINS_DISABLED": "[]",
        },
    }


def give_plugins_data(url: str) -> str:
    """Rows for the plugins' badges and panels to show, through the plugins' own services: a
    client category for every 4th customer, a bonus card for every 3rd, a claim on every 10th
    ticket. Does nothing on a database that has them already (``--reuse``)."""
    from sqlalchemy import func, select

    from helpdesk import Customer, Ticket, db
    from plugins.categories import service as categories
    from plugins.letters import service as letters
    from plugins.letters.models import Claim
    from plugins.loyalty import cards

    app = seeding._make_app(url)
    with app.app_context():
        if db.session.scalar(select(func.count()).select_from(Claim)):
            return "plugin rows: kept from the last run"
        chosen = [c for c in categories.list_categories() if c != categories.default_category()]
        customers = list(db.session.scalars(select(Customer).order_by(Customer.id)))
        for number, customer in enumerate(customers):
            if chosen and number % 4 == 0:
                category = chosen[number // 4 % len(chosen)]
                categories.set_customer_category(customer, category, agent=None)
            if number % 3 == 0:
                cards.issue_card(customer)
        tickets = db.session.scalars(select(Ticket).where(Ticket.id % 10 == 0))
        for ticket in tickets:
            claim = {"outcome_wanted": "refund", "amount_claimed": "25.00", "currency": "EUR"}
            letters.store_claim(ticket, letters.clean_claim(claim), new_ticket=True)
        db.session.commit()
        db.engine.dispose()
    return (
        f"plugin rows: {len(customers[::4])} categories given, {len(customers[::3])} cards, "
        "a claim on every 10th ticket"
    )


def time_pages(
    ports: dict[str, int], tickets: int, requests: int, warmup: int, rng: random.Random
) -> dict[str, dict[str, list[float]]]:
    """Per set-up and page, the timings (ms) of ``requests`` sequential requests after
    ``warmup``. The set-ups' servers run side by side and take turns request by request (the
    same ticket for each), so a change in the machine's load hits both alike."""
    agents = {name: bench_http.login(port) for name, port in ports.items()}
    paths = {
        "queue page (25 rows)": lambda: "/tickets",
        "ticket page": lambda: f"/tickets/{rng.randint(1, tickets)}",
    }
    timings: dict[str, dict[str, list[float]]] = {name: {} for name in ports}
    for page, next_path in paths.items():
        for number in range(warmup + requests):
            path = next_path()
            for name, agent in agents.items():
                started = time.perf_counter()
                answer = agent.request("GET", path)
                elapsed = (time.perf_counter() - started) * 1000
                if answer.status != 200:
                    raise click.ClickException(f"{name}: {page} answered {answer.status}")
                if number >= warmup:
                    timings[name].setdefault(page, []).append(elapsed)
    return timings


def count_calls(url: str, names: list[str], tickets: int) -> dict[str, dict[str, float]]:
    """Per set-up and page, the Python function calls of one request, counted in-process over
    the same ``COUNTED_TICKETS`` ticket pages (and as many queue pages) for each set-up:
    deterministic, unlike timings on a shared machine."""
    from helpdesk import create_app

    rng = random.Random(0)
    paths = {
        "queue page (25 rows)": ["/tickets"] * COUNTED_TICKETS,
        "ticket page": [f"/tickets/{rng.randint(1, tickets)}" for _ in range(COUNTED_TICKETS)],
    }
    calls: dict[str, dict[str, float]] = {}
    for name, env in setups(names).items():
        app = create_app(
            {
                "DATABASE_URL": url,
                "SECRET_KEY": "benchmark-secret-key-not-for-production",
                "WTF_CSRF_ENABLED": False,
                "PLUGINS_ENABLED": json.loads(env["HELPDESK_PLUGINS_ENABLED"]),
                "PLUGINS_DISABLED": json.loads(env["HELPDESK_PLUGINS_DISABLED"]),
                "LOGIN_RATE_LIMIT_ACCOUNT": json.loads(bench_http.RATE_LIMIT_OFF),
                "LOGIN_RATE_LIMIT_IP": json.loads(bench_http.RATE_LIMIT_OFF),
            }
        )
        client = app.test_client()
        login = {"email": seeding.BENCH_AGENT_EMAIL, "password": seeding.BENCH_PASSWORD}
        if client.post("/login", data=login).status_code not in (302, 303):
            raise click.ClickException(f"{name}: in-process login failed")
        calls[name] = {}
        for page, page_paths in paths.items():
            for path in page_paths:  # compiles the templates and fills the caches
                client.get(path)
            profile = cProfile.Profile()
            profile.enable()
            for path in page_paths:
                client.get(path)
            profile.disable()
            calls[name][page] = pstats.Stats(profile).total_calls / len(page_paths)
    return calls


def table(
    pooled: dict[str, dict[str, list[float]]], calls: dict[str, dict[str, float]]
) -> tuple[str, bool]:
    """The figures as a Markdown table, and whether every overhead is within the target."""
    lines = [
        "| page | core alone median / p95 (ms) | all plugins median / p95 (ms) | overhead "
        f"(median) | target ≤ {TARGET_OVERHEAD_PERCENT:.0f} % | Python calls: core / all "
        "plugins |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    within = True
    for page in PAGES:
        core, full = pooled["core alone"][page], pooled["all plugins"][page]
        core_median, full_median = statistics.median(core), statistics.median(full)
        overhead = (full_median / core_median - 1) * 100
        met = overhead <= TARGET_OVERHEAD_PERCENT
        within &= met
        core_calls, full_calls = calls["core alone"][page], calls["all plugins"][page]
        more_calls = (full_calls / core_calls - 1) * 100
        lines.append(
            f"| {page} | {core_median:.1f} / {bench_http.percentile(core, 0.95):.1f} | "
            f"{full_median:.1f} / {bench_http.percentile(full, 0.95):.1f} | "
            f"{overhead:+.1f} % | {'met' if met else 'missed'} | "
            f"{core_calls:,.0f} / {full_calls:,.0f} ({more_calls:+.1f} %) |"
        )
    return "\n".join(lines), within


@click.command()
@click.option("--tickets", default=20_000, show_default=True, type=click.IntRange(1))
@click.option("--customers", default=2_000, show_default=True, type=click.IntRange(1))
@click.option("--requests", default=150, show_default=True, type=click.IntRange(1))
@click.option("--warmup", default=20, show_default=True, type=click.IntRange(0))
@click.option("--rounds", default=3, show_default=True, type=click.IntRange(1))
@click.option("--reuse", is_flag=True, help="Reuse the database of the last run of this size.")
@click.option("--smoke", is_flag=True, help="Tiny run (500 tickets, 10 requests) for CI.")
@click.option("--check", is_flag=True, help="Exit 1 when the overhead target is missed.")
@click.option("--max-load", type=float, help="Wait until the load average is below this.")
def main(
    tickets: int,
    customers: int,
    requests: int,
    warmup: int,
    rounds: int,
    reuse: bool,
    smoke: bool,
    check: bool,
    max_load: float | None,
) -> None:
    """Time the queue and ticket pages with no plugin and with every plugin enabled."""
    if smoke:
        tickets, customers, requests, warmup, rounds = 500, 100, 10, 3, 1
    names = installed_plugins()
    click.echo(f"Installed plugins: {', '.join(names) or 'none'}")
    pooled: dict[str, dict[str, list[float]]] = {name: {} for name in setups(names)}
    with tempfile.TemporaryDirectory(prefix="helpdesk-overhead-") as tmp:
        base = Path(tmp)
        with bench_http.database(url=None, postgresql=False, tickets=tickets, base=base) as (
            url,
            _engine,
        ):
            if reuse and bench_http._reusable(url, tickets):
                seeding.upgrade_schema(url)
            else:
                click.echo(seeding.summary(seeding.seed(url, tickets=tickets, customers=customers)))
            click.echo(give_plugins_data(url))
            if max_load is not None:
                bench_http.wait_for_quiet(max_load)
            load = os.getloadavg()[0]
            for turn in range(rounds):
                with contextlib.ExitStack() as servers:
                    ports = {}
                    for name, env in setups(names).items():
                        instance = base / f"instance-{turn}-{name.replace(' ', '-')}"
                        instance.mkdir()
                        ports[name] = servers.enter_context(
                            bench_http.gunicorn(url, instance, 2, env)
                        )
                    timings = time_pages(ports, tickets, requests, warmup, random.Random(turn))
                for name, pages in timings.items():
                    for page, samples in pages.items():
                        pooled[name].setdefault(page, []).extend(samples)
                click.echo(f"  round {turn + 1}: done")
            load_end = os.getloadavg()[0]
            calls = count_calls(url, names, tickets)
    text, within = table(pooled, calls)
    click.echo(
        f"\n{tickets:,} tickets on SQLite, {rounds} rounds × {requests} requests per page "
        f"and set-up, load average {load:.2f} at start, {load_end:.2f} at the end\n\n{text}"
    )
    if check and not within:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
