#!/usr/bin/env python
"""Measure helpdesk over HTTP, as deployed: gunicorn, 2 sync workers, one sequential client.

    .venv/bin/python benchmarks/bench_http.py                  # 20,000 tickets on SQLite
    .venv/bin/python benchmarks/bench_http.py --tickets 1000000
    .venv/bin/python benchmarks/bench_http.py --postgresql     # a throw-away PostgreSQL cluster
    .venv/bin/python benchmarks/bench_http.py --smoke          # tiny, to show it runs (CI)

It seeds a database (``seed.py``; ``--reuse`` keeps the last one of that size), starts
``gunicorn 'helpdesk.wsgi:app' -w 2 -k sync``, logs in as an agent through the real login form
and, per scenario, sends warm-up requests and then ``--requests`` timed ones, one at a time.
It prints a table (median, p95, target) and then fires 200 form posts from 8 threads at once
to show that nothing is lost under concurrency. The number of SQL statements per page is
counted in-process for 10 and 100 rows, to show it does not grow with the rows shown.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import platform
import random
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import click
import psycopg
import seed as seeding
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
WORK_DIR = Path(tempfile.gettempdir()) / "helpdesk-bench"
HOST = "127.0.0.1"
CSRF_RE = re.compile(
    r'<input[^>]*name="csrf_token"[^>]*value="([^"]+)"|'
    r'<input[^>]*value="([^"]+)"[^>]*name="csrf_token"'
)
SMALL_SCALE = 20_000  # the targets are set for 20k tickets and more
LARGE_SCALE = 500_000  # from here on the 1M targets apply
TARGETS_20K = {
    "form POST": ("median", 6.0),
    "queue page (25 rows)": ("median", 15.0),
    "ticket page": ("median", 10.0),
    "search, rare word": ("median", 15.0),
}
TARGETS_1M = {
    "queue page (25 rows)": ("p95", 60.0),
    "search, rare word": ("p95", 60.0),
    "search, common word": ("p95", 60.0),
}
SCENARIO_SECONDS = 60
CONCURRENT_POSTS = 200
CONCURRENT_THREADS = 8
RATE_LIMIT_OFF = '"1000000/60"'


@dataclass
class Response:
    """What one request answered."""

    status: int
    headers: dict[str, str]
    body: str


class Client:
    """A tiny HTTP client with a cookie jar (gunicorn's sync workers close each connection)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection(HOST, port, timeout=120)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> Response:
        """Send one request and read the whole answer; keeps the cookies it sets."""
        headers = {"Accept-Language": "en"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            self.connection.request(method, path, body, headers)
            answer = self.connection.getresponse()
            data = answer.read()
        except (http.client.HTTPException, OSError):
            self.connection.close()
            raise
        for value in answer.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            cookie = rest.split(";", 1)[0]
            if cookie and "expires=thu, 01 jan 1970" not in value.lower():
                self.cookies[name.strip()] = cookie
            else:
                self.cookies.pop(name.strip(), None)
        return Response(
            answer.status, {k.lower(): v for k, v in answer.getheaders()}, data.decode()
        )

    def csrf_token(self, path: str) -> str:
        """The CSRF token of the form on ``path``."""
        page = self.request("GET", path)
        match = CSRF_RE.search(page.body)
        if page.status != 200 or not match:
            raise click.ClickException(f"no form with a CSRF token at {path} ({page.status})")
        return match.group(1) or match.group(2)


@dataclass
class Result:
    """Timings of one scenario, in milliseconds."""

    name: str
    requests: int
    median_ms: float
    p95_ms: float
    errors: int
    target: str = ""
    passed: bool | None = None
    queries: str = ""


@dataclass
class ConcurrencyResult:
    """What 200 simultaneous form posts did."""

    posts: int
    threads: int
    tickets_created: int
    errors: int
    seconds: float
    median_ms: float
    p95_ms: float
    error_samples: list[str] = field(default_factory=list)


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn(
    database_url: str, instance: Path, workers: int, extra_env: dict[str, str] | None = None
) -> Iterator[int]:
    """Run the app under gunicorn on a free port until the block ends (``extra_env``: more
    settings, e.g. which plugins are enabled)."""
    port = _free_port()
    env = {
        **os.environ,
        **(extra_env or {}),
        "HELPDESK_DATABASE_URL": database_url,
        "HELPDESK_SECRET_KEY": "benchmark-secret-key-not-for-production",
        "HELPDESK_INSTANCE_PATH": str(instance),
        "HELPDESK_PORTAL_RATE_LIMIT": RATE_LIMIT_OFF,
        "HELPDESK_LOGIN_RATE_LIMIT_ACCOUNT": RATE_LIMIT_OFF,
        "HELPDESK_LOGIN_RATE_LIMIT_IP": RATE_LIMIT_OFF,
        "HELPDESK_API_RATE_LIMIT": RATE_LIMIT_OFF,
    }
    log = (instance / "gunicorn.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "helpdesk.wsgi:app",
            "-w",
            str(workers),
            "-k",
            "sync",
            "--bind",
            f"{HOST}:{port}",
            "--no-control-socket",
            "--timeout",
            "120",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for(port, process, instance / "gunicorn.log")
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _wait_for(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise click.ClickException(f"gunicorn exited:\n{log.read_text()[-3000:]}")
        try:
            Client(port).request("GET", "/login")
            return
        except OSError:
            time.sleep(0.2)
    raise click.ClickException("gunicorn did not answer within 60 s")


def login(port: int) -> Client:
    """A client logged in as the benchmark agent, through the real login form."""
    client = Client(port)
    token = client.csrf_token("/login")
    answer = client.request(
        "POST",
        "/login",
        {
            "csrf_token": token,
            "email": seeding.BENCH_AGENT_EMAIL,
            "password": seeding.BENCH_PASSWORD,
        },
    )
    if answer.status not in (302, 303):
        raise click.ClickException(f"login failed ({answer.status})")
    return client


def _form(token: str, number: int, rng: random.Random) -> dict[str, str]:
    kind = rng.choice(["complaint", "support"])
    return {
        "csrf_token": token,
        "name": f"Bench Poster {number % 50}",
        "email": f"bench.poster{number % 50}@example.com",
        "phone": "",
        "kind": kind,
        "subject": f"Benchmark {kind} number {number}",
        "body": "The parcel arrived late and the box was open. Please look into it, thanks.",
        "website": "",
    }


def time_scenario(
    name: str,
    send: Callable[[int], Response],
    check: Callable[[Response], bool],
    *,
    requests: int,
    warmup: int,
    then: Callable[[Response], object] | None = None,
) -> Result:
    """Warm up, then time ``requests`` sequential calls of ``send``; ``then`` runs untimed
    after each (a browser following the redirect). A scenario stops after
    ``SCENARIO_SECONDS`` of timed requests, so one very slow page cannot stall the run."""
    errors = 0
    timings: list[float] = []
    deadline = None
    for number in range(warmup + requests):
        if number == warmup:
            deadline = time.monotonic() + SCENARIO_SECONDS
        elif deadline is not None and time.monotonic() > deadline:
            break
        started = time.perf_counter()
        answer = send(number)
        elapsed = (time.perf_counter() - started) * 1000
        if number >= warmup:
            timings.append(elapsed)
        if not check(answer):
            errors += 1
        elif then is not None:
            then(answer)
    return Result(name, len(timings), statistics.median(timings), percentile(timings, 0.95), errors)


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _ok_page(answer: Response) -> bool:
    return answer.status == 200 and "<table" in answer.body


def run_scenarios(
    port: int, *, tickets: int, requests: int, warmup: int, rng: random.Random
) -> list[Result]:
    """The sequential scenarios, each on its own."""
    agent = login(port)
    visitor = Client(port)
    token = visitor.csrf_token("/")
    max_id = tickets
    rare = seeding.RARE_WORD
    scenarios: list[tuple[str, Callable[[int], Response], Callable[[Response], bool]]] = [
        (
            "form POST",
            lambda n: visitor.request("POST", "/", _form(token, n, rng)),
            lambda a: a.status == 303 and "/status/" in a.headers.get("location", ""),
        ),
        ("queue page (25 rows)", lambda n: agent.request("GET", "/tickets"), _ok_page),
        (
            "ticket page",
            lambda n: agent.request("GET", f"/tickets/{rng.randint(1, max_id)}"),
            lambda a: a.status == 200,
        ),
        (
            "search, rare word",
            lambda n: agent.request("GET", f"/tickets?q={rare}"),
            lambda a: _ok_page(a) and rare in a.body.lower(),
        ),
        (
            "search, common word",
            lambda n: agent.request("GET", f"/tickets?q={seeding.COMMON_WORD}"),
            _ok_page,
        ),
    ]

    def follow_redirect(answer: Response) -> None:
        visitor.request("GET", _path(answer.headers["location"]))

    results = []
    for name, send, check in scenarios:
        # Like a browser, the visitor follows the redirect to the status page, which shows
        # (and so removes from the session cookie) the "thank you" message.
        then = follow_redirect if name == "form POST" else None
        results.append(
            time_scenario(name, send, check, requests=requests, warmup=warmup, then=then)
        )
        click.echo(
            f"  {name}: median {results[-1].median_ms:.1f} ms, p95 {results[-1].p95_ms:.1f} ms"
            + (f", {results[-1].errors} errors" if results[-1].errors else "")
        )
    return results


def count_tickets(database_url: str) -> int:
    """Tickets in the database, read directly."""
    parsed = make_url(database_url)
    if parsed.get_backend_name() == "sqlite":
        with sqlite3.connect(parsed.database) as conn:
            return conn.execute("SELECT count(*) FROM tickets").fetchone()[0]
    plain = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain) as conn:
        return conn.execute("SELECT count(*) FROM tickets").fetchone()[0]


def run_concurrency(port: int, database_url: str) -> ConcurrencyResult:
    """200 form posts from 8 threads at once: every one must make a ticket, none may fail."""
    before = count_tickets(database_url)
    lock = threading.Lock()
    timings: list[float] = []
    failures: list[str] = []
    per_thread = CONCURRENT_POSTS // CONCURRENT_THREADS
    clients = [Client(port) for _ in range(CONCURRENT_THREADS)]
    tokens = [client.csrf_token("/") for client in clients]
    barrier = threading.Barrier(CONCURRENT_THREADS)

    def worker(index: int) -> None:
        rng = random.Random(index)
        barrier.wait()
        for step in range(per_thread):
            number = 100_000 + index * per_thread + step
            started = time.perf_counter()
            try:
                answer = clients[index].request("POST", "/", _form(tokens[index], number, rng))
                problem = None if answer.status == 303 else f"HTTP {answer.status}"
            except (http.client.HTTPException, OSError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            with lock:
                timings.append((time.perf_counter() - started) * 1000)
                if problem:
                    failures.append(problem)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(CONCURRENT_THREADS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    return ConcurrencyResult(
        posts=per_thread * CONCURRENT_THREADS,
        threads=CONCURRENT_THREADS,
        tickets_created=count_tickets(database_url) - before,
        errors=len(failures),
        seconds=seconds,
        median_ms=statistics.median(timings),
        p95_ms=percentile(timings, 0.95),
        error_samples=sorted(set(failures))[:5],
    )


def count_queries(database_url: str) -> dict[str, str]:
    """SQL statements per page for 10 and for 100 rows shown, counted in-process."""
    from flask import Flask
    from sqlalchemy import event

    from helpdesk import create_app
    from helpdesk.extensions import db

    app: Flask = create_app(
        {
            "DATABASE_URL": database_url,
            "SECRET_KEY": "benchmark-queries",
            "WTF_CSRF_ENABLED": True,
            "LOGIN_RATE_LIMIT_ACCOUNT": "1000000/60",
            "LOGIN_RATE_LIMIT_IP": "1000000/60",
        }
    )
    statements: list[str] = []
    with app.app_context():
        client = app.test_client()
        page = client.get("/login").get_data(as_text=True)
        match = CSRF_RE.search(page)
        token = (match.group(1) or match.group(2)) if match else ""
        client.post(
            "/login",
            data={
                "csrf_token": token,
                "email": seeding.BENCH_AGENT_EMAIL,
                "password": seeding.BENCH_PASSWORD,
            },
        )

        def listener(conn, cursor, statement, *args: Any) -> None:
            if not statement.lstrip().upper().startswith(("BEGIN", "PRAGMA")):
                statements.append(statement)

        def measure(path: str) -> int:
            client.get(path)  # caches warm
            statements.clear()
            event.listen(db.engine, "before_cursor_execute", listener)
            try:
                response = client.get(path)
            finally:
                event.remove(db.engine, "before_cursor_execute", listener)
            return len(statements) if response.status_code == 200 else -response.status_code

        counts = {
            "queue page (25 rows)": (
                measure("/tickets?per_page=10"),
                measure("/tickets?per_page=100"),
            ),
            "search, common word": (
                measure(f"/tickets?per_page=10&q={seeding.COMMON_WORD}"),
                measure(f"/tickets?per_page=100&q={seeding.COMMON_WORD}"),
            ),
        }
        db.engine.dispose()
    return {name: f"{few} / {many}" for name, (few, many) in counts.items()}


def apply_targets(results: list[Result], tickets: int) -> None:
    """Fill each result's target and verdict for this scale."""
    targets = TARGETS_1M if tickets >= LARGE_SCALE else TARGETS_20K
    for result in results:
        if result.name not in targets:
            continue
        statistic, limit = targets[result.name]
        value = result.median_ms if statistic == "median" else result.p95_ms
        result.target = f"{statistic} ≤ {limit:g} ms"
        if tickets >= SMALL_SCALE:  # a smoke run shows the targets but is not judged
            result.passed = value <= limit and result.errors == 0


def table(results: list[Result], concurrency: ConcurrencyResult | None, requests: int) -> str:
    """The results as a Markdown table."""
    lines = [
        "| scenario | median ms | p95 ms | target | result | SQL statements (10 / 100 rows) |",
        "| --- | ---: | ---: | --- | --- | --- |",
    ]
    for r in results:
        verdict = "" if r.passed is None else ("pass" if r.passed else "**FAIL**")
        if r.errors:
            verdict = f"{verdict} ({r.errors} errors)".strip()
        name = r.name if r.requests == requests else f"{r.name} ({r.requests} requests)"
        lines.append(
            f"| {name} | {r.median_ms:.1f} | {r.p95_ms:.1f} | {r.target} | {verdict} | "
            f"{r.queries} |"
        )
    if concurrency is not None:
        ok = concurrency.tickets_created == concurrency.posts and concurrency.errors == 0
        lines.append(
            f"| {concurrency.posts} form POSTs from {concurrency.threads} threads | "
            f"{concurrency.median_ms:.1f} | {concurrency.p95_ms:.1f} | "
            f"{concurrency.posts} tickets, 0 errors | "
            f"{'pass' if ok else '**FAIL**'}: {concurrency.tickets_created} tickets, "
            f"{concurrency.errors} errors in {concurrency.seconds:.1f} s |  |"
        )
    return "\n".join(lines)


@contextmanager
def database(
    *, url: str | None, postgresql: bool, tickets: int, base: Path
) -> Iterator[tuple[str, str]]:
    """The database URL to benchmark and its engine name (starting PostgreSQL if asked)."""
    if postgresql:
        sys.path.insert(0, str(ROOT))
        from tests.pg import PostgresServer, postgres_unavailable_reason

        reason = postgres_unavailable_reason()
        if reason:
            raise click.ClickException(f"cannot start PostgreSQL: {reason}")
        server = PostgresServer(base / "pg")
        server.start()
        try:
            yield server.create_database("helpdesk_bench"), "postgresql"
        finally:
            server.stop()
    elif url:
        yield url, make_url(url).get_backend_name()
    else:
        WORK_DIR.mkdir(parents=True, exist_ok=True)
        yield f"sqlite:///{WORK_DIR / f'bench-{tickets}.sqlite3'}", "sqlite"


def wait_for_quiet(max_load: float, timeout: float = 600) -> None:
    """Wait until other work on the machine has calmed down (or ``timeout`` passed)."""
    deadline = time.monotonic() + timeout
    while os.getloadavg()[0] >= max_load and time.monotonic() < deadline:
        click.echo(f"  load average {os.getloadavg()[0]:.2f}; waiting for < {max_load}")
        time.sleep(15)


def _reusable(url: str, tickets: int) -> bool:
    try:
        return count_tickets(url) >= tickets
    except (sqlite3.Error, psycopg.Error):
        return False


@click.command()
@click.option("--tickets", default=20_000, show_default=True, type=click.IntRange(1))
@click.option("--customers", default=2_000, show_default=True, type=click.IntRange(1))
@click.option("--requests", default=200, show_default=True, type=click.IntRange(1))
@click.option("--warmup", default=20, show_default=True, type=click.IntRange(0))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1))
@click.option("--database-url", help="Benchmark this database (seeded unless --reuse).")
@click.option("--postgresql", is_flag=True, help="Start a throw-away PostgreSQL cluster.")
@click.option("--reuse", is_flag=True, help="Reuse the database of the last run of this size.")
@click.option("--smoke", is_flag=True, help="Tiny run (500 tickets, 20 requests) for CI.")
@click.option("--no-concurrency", is_flag=True, help="Skip the concurrent form posts.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--check", is_flag=True, help="Exit 1 when a target is missed, not only on errors.")
@click.option(
    "--max-load",
    type=float,
    help="Before measuring, wait (up to 10 minutes) until the 1-minute load average is below this.",
)
def main(
    tickets: int,
    customers: int,
    requests: int,
    warmup: int,
    workers: int,
    database_url: str | None,
    postgresql: bool,
    reuse: bool,
    smoke: bool,
    no_concurrency: bool,
    json_path: Path | None,
    check: bool,
    max_load: float | None,
) -> None:
    """Benchmark helpdesk over HTTP and print a table of medians and p95s."""
    if smoke:
        tickets, customers, requests, warmup = 500, 100, 20, 5
    with tempfile.TemporaryDirectory(prefix="helpdesk-bench-") as tmp:
        base = Path(tmp)
        with database(url=database_url, postgresql=postgresql, tickets=tickets, base=base) as (
            url,
            engine,
        ):
            if reuse and _reusable(url, tickets):
                click.echo(f"Reusing {url} ({count_tickets(url):,} tickets).")
                seeding.upgrade_schema(url)
                seed_seconds = None
            else:
                result = seeding.seed(url, tickets=tickets, customers=customers)
                click.echo(seeding.summary(result))
                seed_seconds = result.seconds
            if max_load is not None:
                wait_for_quiet(max_load)
            load_before = os.getloadavg()[0]
            instance = base / "instance"
            instance.mkdir()
            with gunicorn(url, instance, workers) as port:
                click.echo(
                    f"gunicorn, {workers} sync workers, port {port}; {requests} requests "
                    f"per scenario after {warmup} warm-up requests:"
                )
                results = run_scenarios(
                    port,
                    tickets=tickets,
                    requests=requests,
                    warmup=warmup,
                    rng=random.Random(7),
                )
                concurrency = None if no_concurrency else run_concurrency(port, url)
            queries = count_queries(url)
            size = seeding.database_size(url)
    for item in results:
        item.queries = queries.get(item.name, "")
    apply_targets(results, tickets)
    header = (
        f"{tickets:,} tickets on {engine} ({size / 1e6:,.0f} MB), {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load average {load_before:.2f} at start"
    )
    click.echo("\n" + header + "\n\n" + table(results, concurrency, requests))
    if concurrency and concurrency.error_samples:
        click.echo("Concurrency errors: " + "; ".join(concurrency.error_samples))
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(
            json.dumps(
                {
                    "tickets": tickets,
                    "engine": engine,
                    "database_bytes": size,
                    "seed_seconds": seed_seconds,
                    "workers": workers,
                    "requests": requests,
                    "warmup": warmup,
                    "load_average_at_start": load_before,
                    "results": [asdict(r) for r in results],
                    "concurrency": asdict(concurrency) if concurrency else None,
                },
                indent=2,
            )
        )
    errors = sum(r.errors for r in results)
    if concurrency:
        errors += concurrency.errors + (concurrency.posts - concurrency.tickets_created)
    missed = any(r.passed is False for r in results)
    if errors or (check and missed):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
