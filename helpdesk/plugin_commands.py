"""``helpdesk plugins list|enable NAME|disable NAME``."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from helpdesk.cli import _clear_errors
from helpdesk.plugins import current_plugins


@click.group("plugins")
def plugins() -> None:
    """List, enable and disable plugins (every worker follows at once, no restart)."""


@plugins.command("list")
@with_appcontext
def list_plugins() -> None:
    """Every installed plugin: name, state, pinned, version, description."""
    rows = current_plugins().describe()
    if not rows:
        click.echo("No plugins are installed.")
        return
    width = max(len(info.name) for info in rows)
    for info in rows:
        state = "broken" if info.broken else "enabled" if info.enabled else "disabled"
        pinned = "pinned" if info.pinned else "-"
        details = f"could not be loaded: {info.error}" if info.broken else info.description
        click.echo(
            f"{info.name:<{width}}  {state:<8}  {pinned:<6}  {info.version or '-':<10}  {details}"
        )


@plugins.command("enable")
@click.argument("name")
@with_appcontext
@_clear_errors
def enable(name: str) -> None:
    """Apply NAME's migrations, then enable it."""
    current_plugins().set_enabled(name, True, actor="cli")
    click.echo(f"Plugin {name} enabled.")


@plugins.command("disable")
@click.argument("name")
@with_appcontext
@_clear_errors
def disable(name: str) -> None:
    """Disable NAME: its pages, panels, hooks and commands go; its tables and data stay."""
    current_plugins().set_enabled(name, False, actor="cli")
    click.echo(f"Plugin {name} disabled; its data is kept.")
