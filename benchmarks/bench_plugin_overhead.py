#!/usr/bin/env python
"""What the built-in plugins cost the agent's busiest pages: the queue and the ticket page,
served by gunicorn with every installed plugin disabled (the core alone) and with all of them
enabled, on the same seeded database.

    .venv/bin/python benchmarks/bench_plugin_overhead.py            # 20,000 tickets on SQLite
    .venv/bin/python benchmarks/bench_plugin_overhead.py --smoke    # tiny, to show it runs

The two set-ups take turns (``--rounds`` times each, so drift in the machine's load hits both
alike); each turn times ``--requests`` sequential requests per page after a warm-up. The table
gives the pooled median and p95 per set-up and the overhead of the plugins on the median
(target: at most 20 %). The plugins are pinned with ``HELPDESK_PLUGINS_ENABLED`` /
``HELPDESK_PLUGINS_DISABLED``, so the database's own enabled states do not matter.
"""

from __future__ import annotations

import json
import os
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


def time_pages(port: int, tickets: int, requests: int, warmup: int, rng: random.Random):
    """Per page, the timings (ms) of ``requests`` sequential requests after ``warmup``."""
    agent = bench_http.login(port)
    sends = {
        "queue page (25 rows)": lambda: agent.request("GET", "/tickets"),
        "ticket page": lambda: agent.request("GET", f"/tickets/{rng.randint(1, tickets)}"),
    }
    timings: dict[str, list[float]] = {}
    for page, send in sends.items():
        samples = []
        for number in range(warmup + requests):
            started = time.perf_counter()
            answer = send()
            elapsed = (time.perf_counter() - started) * 1000
            if answer.status != 200:
                raise click.ClickException(f"{page} answered {answer.status}")
            if number >= warmup:
                samples.append(elapsed)
        timings[page] = samples
    return timings


def table(pooled: dict[str, dict[str, list[float]]]) -> tuple[str, bool]:
    """The figures as a Markdown table, and whether every overhead is within the target."""
    lines = [
        "| page | core alone median / p95 (ms) | all plugins median / p95 (ms) | overhead "
        f"(median) | target ≤ {TARGET_OVERHEAD_PERCENT:.0f} % |",
        "| --- | --- | --- | --- | --- |",
    ]
    within = True
    for page in PAGES:
        core, full = pooled["core alone"][page], pooled["all plugins"][page]
        core_median, full_median = statistics.median(core), statistics.median(full)
        overhead = (full_median / core_median - 1) * 100
        met = overhead <= TARGET_OVERHEAD_PERCENT
        within &= met
        lines.append(
            f"| {page} | {core_median:.1f} / {bench_http.percentile(core, 0.95):.1f} | "
            f"{full_median:.1f} / {bench_http.percentile(full, 0.95):.1f} | "
            f"{overhead:+.1f} % | {'met' if met else 'missed'} |"
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
            if max_load is not None:
                bench_http.wait_for_quiet(max_load)
            load = os.getloadavg()[0]
            for turn in range(rounds):
                for name, env in setups(names).items():
                    instance = base / f"instance-{turn}-{name.replace(' ', '-')}"
                    instance.mkdir()
                    with bench_http.gunicorn(url, instance, 2, env) as port:
                        timings = time_pages(port, tickets, requests, warmup, random.Random(turn))
                    for page, samples in timings.items():
                        pooled[name].setdefault(page, []).extend(samples)
                    click.echo(f"  round {turn + 1}, {name}: done")
    text, within = table(pooled)
    click.echo(
        f"\n{tickets:,} tickets on SQLite, {rounds} rounds × {requests} requests per page "
        f"and set-up, load average {load:.2f} at start\n\n{text}"
    )
    if check and not within:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
