"""The plugin manager: one per app, hooks called with each plugin isolated from the others.

Plugins are found through the ``helpdesk`` entry-point group (built-in plugins register there
too). ``HELPDESK_PLUGINS`` (a list of names) limits which load; ``HELPDESK_TRACE_HOOKS=1`` logs
every hook call with its arguments and results.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import Any

import pluggy
from flask import Flask, current_app

from helpdesk import hookspecs

ENTRY_POINT_GROUP = "helpdesk"
log = logging.getLogger(__name__)


def create_plugin_manager(app: Flask, extra_plugins: Iterable[Any] = ()) -> pluggy.PluginManager:
    """A fresh manager for ``app``: hookspecs, entry-point plugins, then ``extra_plugins``."""
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    wanted = app.config.get("PLUGINS")
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if wanted is not None and ep.name not in wanted:
            continue
        if pm.get_plugin(ep.name) is not None:
            continue
        pm.register(ep.load(), name=ep.name)
    for plugin in extra_plugins:
        pm.register(plugin, name=getattr(plugin, "__name__", type(plugin).__name__))
    pm.check_pending()
    if os.environ.get("HELPDESK_TRACE_HOOKS"):
        pm.add_hookcall_monitoring(_trace_before, _trace_after)
    return pm


def _trace_before(hook_name: str, hook_impls: list, kwargs: dict[str, Any]) -> None:
    log.info("hook %s(%r) -> %s", hook_name, kwargs, [impl.plugin_name for impl in hook_impls])


def _trace_after(outcome: Any, hook_name: str, hook_impls: list, kwargs: dict[str, Any]) -> None:
    log.info("hook %s returned %r", hook_name, outcome.get_result())


def call_each(hook_name: str, **kwargs: Any) -> list[Any]:
    """Call every implementation of ``hook_name`` in turn; a plugin that raises is logged by
    name and skipped, so it can neither break the caller nor silence the other plugins.

    Returns the non-``None`` results in pluggy's call order.
    """
    pm: pluggy.PluginManager = current_app.extensions["helpdesk_plugins"]
    hook = getattr(pm.hook, hook_name)
    results = []
    for impl in reversed(hook.get_hookimpls()):
        try:
            result = impl.function(**{name: kwargs[name] for name in impl.argnames})
        except Exception:
            log.exception("plugin %r failed in %s", impl.plugin_name, hook_name)
            continue
        if result is not None:
            results.append(result)
    return results
