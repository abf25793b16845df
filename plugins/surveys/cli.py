"""``helpdesk surveys rebuild-rollup``: recount the appraisal's daily roll-up from the surveys,
with a progress bar (a month a step) and a summary."""

from __future__ import annotations

import time

import click
from flask.cli import with_appcontext

from plugins.surveys import rollup


@click.group("surveys")
def surveys() -> None:
    """SMS surveys: maintenance of the appraisal's data."""


@surveys.command("rebuild-rollup")
@with_appcontext
def rebuild_rollup() -> None:
    """Recount the daily roll-up (survey_daily) the appraisal reads, from the surveys.

    Safe while the worker and the webhooks run (they wait for it); the report reads the old
    figures until it commits. Prints the rows written and how many were wrong before.
    """
    started = time.perf_counter()
    months = rollup.spans()
    with click.progressbar(length=len(months), label="Counting surveys per month") as bar:
        done = rollup.rebuild(months, progress=bar.update)
    click.echo(
        f"{done.surveys} surveys in {done.rows} day rows; {done.corrected} rows corrected "
        f"({time.perf_counter() - started:.1f} s)"
    )
