"""``helpdesk retention review``: compute every client's status at a date, fire an event for each
change (``customer_lost``, ``customer_drying_up``, ``customer_won_back``), give each client
turning drying-up or lost a call task, and send each manager with new calls a digest.

Idempotent: the status each client had at the last review is kept (``retention_statuses``), so
running it again on the same data changes nothing, fires nothing and mails nobody.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import insert, select, update

from helpdesk import (
    Agent,
    Customer,
    Team,
    ValidationError,
    commit,
    db,
    notify_agents,
    queue_event,
    utcnow,
)
from plugins.retention import service, spans
from plugins.retention.models import AccountManager, CallTask, ClientStatus

EVENTS = {
    "lost": "helpdesk_customer_lost",
    "drying_up": "helpdesk_customer_drying_up",
}
BATCH = 2000


@dataclass
class ReviewSummary:
    """What a review did."""

    clients: int = 0
    changed: int = 0
    events: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    tasks: int = 0
    digests: int = 0


def review(as_of: date, progress: Callable[[int], None] = lambda n: None) -> ReviewSummary:
    """Review every client with orders at ``as_of`` (see the module's docstring), reading
    their statuses from the spans. Statuses and tasks are written in bulk, a batch at a time;
    only changed clients are loaded."""
    spans.ensure_current(thorough=True)
    now = spans.statuses_at(as_of)
    known = {
        cid: (status, won_back_on)
        for cid, status, won_back_on in db.session.execute(
            select(ClientStatus.customer_id, ClientStatus.status, ClientStatus.won_back_on)
        )
    }
    managers = dict(
        db.session.execute(select(AccountManager.customer_id, AccountManager.agent_id)).all()
    )
    tasked = set(
        db.session.execute(
            select(CallTask.customer_id, CallTask.kind).where(CallTask.as_of == as_of)
        ).all()
    )
    summary = ReviewSummary(clients=len(now))
    new_tasks: dict[int | None, list[tuple[str, int]]] = defaultdict(list)
    for start in range(0, len(now), BATCH):
        chunk = now[start : start + BATCH]
        changes = [
            (cid, status, won_back_on, known.get(cid))
            for cid, status, won_back_on in chunk
            if known.get(cid) != (status, won_back_on)
        ]
        customers = _customers([cid for cid, *_ in changes])
        inserts, updates, tasks = [], [], []
        for cid, status, won_back_on, before in changes:
            summary.changed += 1
            row = {"customer_id": cid, "status": status, "as_of": as_of}
            (updates if before else inserts).append({**row, "won_back_on": won_back_on})
            if (before is None or before[0] != status) and status in EVENTS:
                queue_event(EVENTS[status], customer=customers[cid], as_of=as_of)
                summary.events[status] += 1
                if (cid, status) not in tasked:
                    tasked.add((cid, status))
                    tasks.append({**row, "kind": status, "agent_id": managers.get(cid)})
                    new_tasks[managers.get(cid)].append((status, cid))
            if won_back_on is not None and (before is None or before[1] != won_back_on):
                queue_event("helpdesk_customer_won_back", customer=customers[cid], as_of=as_of)
                summary.events["won_back"] += 1
        _write(inserts, updates, tasks)
        summary.tasks += len(tasks)
        commit()
        progress(len(chunk))
    summary.digests = _send_digests(new_tasks, as_of)
    commit()
    return summary


def _write(inserts: list[dict], updates: list[dict], tasks: list[dict]) -> None:
    """The batch's statuses and call tasks, in a few multi-row statements."""
    if inserts:
        db.session.execute(insert(ClientStatus), inserts)
    if updates:
        db.session.execute(update(ClientStatus), updates)
    if tasks:
        now = utcnow()
        db.session.execute(
            insert(CallTask),
            [
                {
                    "customer_id": t["customer_id"],
                    "agent_id": t["agent_id"],
                    "kind": t["kind"],
                    "as_of": t["as_of"],
                    "created_at": now,
                    "reason_learned": "",
                    "offer_made": "",
                    "note": "",
                }
                for t in tasks
            ],
        )


def _customers(ids: list[int]) -> dict[int, Customer]:
    if not ids:
        return {}
    return {c.id: c for c in db.session.scalars(select(Customer).where(Customer.id.in_(ids)))}


def _send_digests(new_tasks: dict[int | None, list[tuple[str, int]]], as_of: date) -> int:
    """One mail per manager with new calls (unassigned ones go to the retention team)."""
    sent = 0
    team_name = current_app.config["RETENTION_TEAM"]
    team = db.session.scalar(select(Team).where(Team.name == team_name)) if team_name else None
    for agent_id, tasks in new_tasks.items():
        if agent_id is not None:
            recipients = [db.session.get(Agent, agent_id)]
        else:
            recipients = list(team.agents) if team is not None else []
        lines = [f"- {kind.replace('_', ' ')}: customer #{cid}" for kind, cid in tasks]
        text = (
            f"Retention review of {as_of.isoformat()}: {len(tasks)} client(s) to call.\n\n"
            + "\n".join(lines)
        )
        digest = hashlib.sha256(repr(sorted(tasks)).encode()).hexdigest()[:16]
        key = f"retention-digest-{agent_id or 'team'}-{as_of.isoformat()}-{digest}"
        if notify_agents(recipients, "Clients to call", text, key=key) is not None:
            sent += 1
    return sent


@click.group("retention")
def retention_group() -> None:
    """Keeping clients: who we lost, who is drying up, who to call."""


@retention_group.command("review")
@click.option("--as-of", "as_of", default="", help="The reference date YYYY-MM-DD (today).")
@with_appcontext
def review_command(as_of: str) -> None:
    """Compute every client's status at the date, fire the events of each change, create call
    tasks and send each manager a digest. Safe to run again (from cron, say daily)."""
    try:
        day = service.parse_as_of(as_of)
    except ValidationError as exc:
        raise click.BadParameter(exc.errors["as_of"], param_hint="--as-of") from None
    _bring_spans_up_to_date()
    total = len(spans.statuses_at(day))
    with click.progressbar(length=total, label="Reviewing clients") as bar:
        result = review(day, bar.update)
    click.echo(
        f"Reviewed {result.clients} clients at {day.isoformat()}: {result.changed} changed, "
        f"{result.events.get('lost', 0)} lost, {result.events.get('drying_up', 0)} drying up, "
        f"{result.events.get('won_back', 0)} won back; {result.tasks} call task(s), "
        f"{result.digests} digest(s) queued."
    )


def _bring_spans_up_to_date() -> None:
    """``spans.ensure_current`` with a progress bar over the customers it rebuilds."""
    with click.progressbar(length=spans.pending(), label="Following the orders") as bar:
        spans.ensure_current(bar.update, thorough=True)


@retention_group.command("rebuild")
@with_appcontext
def rebuild_command() -> None:
    """Rebuild every client's figures over time (the spans the pages, the API and the review
    read) from the orders: after an upgrade, or orders changed behind the app's back."""
    with click.progressbar(
        length=spans.customers_to_build(None), label="Rebuilding client figures"
    ) as bar:
        result = spans.rebuild(bar.update)
    click.echo(f"Rebuilt {result.spans} span(s) of {result.customers} client(s) with orders.")
