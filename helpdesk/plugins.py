"""The plugin manager: one per app, every hook called with each plugin isolated from the others,
and plugins enabled or disabled at run time.

Plugins are found through the ``helpdesk`` entry-point group (built-in plugins register there
too), plus the objects or entry points given to ``create_app(plugins=...)``. ``PLUGINS`` (a list
of names) limits which entry points load. ``HELPDESK_TRACE_HOOKS=1`` logs every hook call with
its arguments and results.

Failure rules:

- an entry point that fails to import is logged with its name and listed as *broken*; the app
  starts without it;
- a hook implementation that raises is logged with the plugin's name and skipped; the caller and
  the other plugins go on;
- a hook implementation whose name or arguments match no hookspec is a
  ``pluggy.PluginValidationError`` at start-up (``check_pending``): a typo must not be silence.
  So is a hook wrapper: each implementation is called on its own, so there is nothing to wrap.

Enabled or not is kept in ``PluginState`` rows (default: enabled) unless ``PLUGINS_ENABLED`` /
``PLUGINS_DISABLED`` pin it. Every change bumps the ``plugins`` row of ``StateVersion``; each app
context reads that number once (one small query, only when a hook has implementations) and
reloads the states when it moved, so every worker follows a change without a restart.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

import click
import pluggy
from alembic import command as alembic_command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from flask import Flask, abort, current_app, g
from flask.cli import AppGroup
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from helpdesk import hookspecs
from helpdesk.config import ConfigError
from helpdesk.core.errors import HelpdeskError, NotFound, ValidationError
from helpdesk.core.models import PluginState, StateVersion, utcnow
from helpdesk.extensions import db, migrate

ENTRY_POINT_GROUP = "helpdesk"
EXTENSION_KEY = "helpdesk_plugins"
STATE_KEY = "plugins"
CORE_VERSIONS_DIR = Path(__file__).resolve().parent / "migrations" / "versions"
_CHECKED = "helpdesk_plugin_state_checked"
log = logging.getLogger(__name__)


class PluginError(HelpdeskError):
    """A plugin cannot be switched as asked (pinned by config, broken, migration failed)."""

    status_code = 409


@dataclass
class PluginInfo:
    """What ``helpdesk plugins list`` and the admin page show about one plugin."""

    name: str
    version: str = ""
    description: str = ""
    error: str | None = None  # why it could not be loaded: the plugin is broken
    enabled: bool = False
    pinned: bool = False

    @property
    def broken(self) -> bool:
        return self.error is not None


class Plugins:
    """The plugins of one app: the pluggy manager, what each plugin is, which are enabled."""

    def __init__(self, app: Flask, extra: Iterable[Any] = ()) -> None:
        self.pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.pins = _pins(app.config)
        self.migration_dirs: dict[str, list[Path]] = {}
        self._trace = bool(os.environ.get("HELPDESK_TRACE_HOOKS"))
        self._version: int | None = None
        self._disabled = frozenset(name for name, on in self.pins.items() if not on)
        self._load(app.config.get("PLUGINS"), extra)
        self.pm.check_pending()
        app.cli = PluginCommands(app, self)
        for name, defaults in self.call_all("helpdesk_config_defaults"):
            if not isinstance(defaults, dict):
                log.error("plugin %r: config defaults must be a dict, not %r", name, defaults)
                continue
            for key, value in defaults.items():
                app.config.setdefault(key, value)
        for name, dirs in self.call_all("helpdesk_migration_dirs"):
            self.migration_dirs[name] = [Path(d).resolve() for d in _as_list(dirs)]

    # --- loading ------------------------------------------------------------------------

    def _load(self, wanted: Iterable[str] | None, extra: Iterable[Any]) -> None:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if wanted is None or ep.name in wanted:
                self._load_entry_point(ep)
        for plugin in extra:
            if isinstance(plugin, EntryPoint):
                self._load_entry_point(plugin)
            else:
                name = getattr(plugin, "__name__", type(plugin).__name__)
                self._register(plugin, name, getattr(plugin, "__version__", ""), "")

    def _load_entry_point(self, ep: EntryPoint) -> None:
        if ep.name in self.infos:
            return
        try:
            plugin = ep.load()
        except Exception as exc:
            log.exception("plugin %r could not be loaded from %s", ep.name, ep.value)
            self.infos[ep.name] = PluginInfo(ep.name, error=f"{type(exc).__name__}: {exc}")
            return
        dist = getattr(ep, "dist", None)
        version = dist.version if dist else getattr(plugin, "__version__", "")
        description = (dist.metadata.get("Summary") or "") if dist else ""
        self._register(plugin, ep.name, version, description)

    def _register(self, plugin: Any, name: str, version: str, description: str) -> None:
        doc = (getattr(plugin, "__doc__", None) or "").strip()
        self.pm.register(plugin, name=name)
        for caller in self.pm.get_hookcallers(plugin) or []:
            if any(
                i.plugin is plugin and (i.wrapper or i.hookwrapper) for i in caller.get_hookimpls()
            ):
                raise pluggy.PluginValidationError(
                    plugin, f"plugin {name!r}: hook wrappers are not supported ({caller.name})"
                )
        self.infos[name] = PluginInfo(
            name, str(version), description or (doc.splitlines()[0] if doc else "")
        )

    def register_parts(self, app: Flask) -> None:
        """Add every plugin's blueprints and commands to ``app`` (after the core's own, which
        keep their names). A disabled plugin's blueprints answer 404 while it stays so."""
        for name, blueprints in self.call_all("helpdesk_blueprints"):
            for blueprint in _as_list(blueprints):
                try:
                    app.register_blueprint(blueprint)
                except Exception:
                    log.exception("plugin %r: blueprint %r not registered", name, blueprint)
                    continue
                app.before_request_funcs.setdefault(blueprint.name, []).append(self._gate(name))
        for name, commands in self.call_all("helpdesk_cli_commands"):
            for command in _as_list(commands):
                app.cli.add_plugin_command(name, command)

    def _gate(self, name: str) -> Callable[[], None]:
        def answer_404_while_disabled() -> None:
            if not self.is_enabled(name):
                abort(404)

        return answer_404_while_disabled

    # --- calling hooks ------------------------------------------------------------------

    def call_all(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """``(plugin name, result)`` of every implementation, enabled or not (start-up hooks)."""
        return self._call(hook_name, frozenset(), kwargs)

    def call_enabled(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """``(plugin name, result)`` of every enabled plugin's implementation, in pluggy's order
        (last registered first); ``None`` results are left out, failures logged and skipped."""
        hook = getattr(self.pm.hook, hook_name)
        if not hook.get_hookimpls():
            return []
        return self._call(hook_name, self.disabled(), kwargs)

    def call_enabled_many(self, hook_name: str, calls: Sequence[dict[str, Any]]) -> list[list[Any]]:
        """``call_enabled(hook_name, **kwargs)``'s results for each ``kwargs`` of ``calls``
        (``None`` results left out). For more than one call, a plugin that also implements
        ``<hook_name>_many`` answers all of them in one call of that (``requests``:
        ``calls``; it returns one result per request, in order); the others are asked once
        per call."""
        skip = self.disabled()
        answered: dict[str, list[Any]] = {}
        many = []
        if len(calls) > 1:
            many = self._call(f"{hook_name}_many", skip, {"requests": list(calls)})
        for name, answers in many:
            if isinstance(answers, list) and len(answers) == len(calls):
                answered[name] = answers
            else:
                log.error(
                    "plugin %r answered %s_many with something other than %d results; "
                    "asking %s instead",
                    name,
                    hook_name,
                    len(calls),
                    hook_name,
                )
        results: list[list[Any]] = [[] for _ in calls]
        for impl in reversed(getattr(self.pm.hook, hook_name).get_hookimpls()):
            if impl.plugin_name in skip:
                continue
            if impl.plugin_name in answered:
                each = answered[impl.plugin_name]
            else:
                each = [self._call_one(impl, hook_name, kwargs, ()) for kwargs in calls]
            for found, result in zip(results, each, strict=True):
                if result is not None:
                    found.append(result)
        return results

    def _call(
        self,
        hook_name: str,
        skip: frozenset[str],
        kwargs: dict,
        passes: tuple[type[Exception], ...] = (),
    ) -> list[tuple[str, Any]]:
        """Each implementation on its own (pluggy would stop at the first that raises); an
        exception of a type in ``passes`` reaches the caller, any other is logged."""
        results = []
        for impl in reversed(getattr(self.pm.hook, hook_name).get_hookimpls()):
            if impl.plugin_name in skip:
                continue
            result = self._call_one(impl, hook_name, kwargs, passes)
            if result is not None:
                results.append((impl.plugin_name, result))
        return results

    def _call_one(
        self,
        impl: pluggy.HookImpl,
        hook_name: str,
        kwargs: dict,
        passes: tuple[type[Exception], ...],
    ) -> Any:
        """One implementation's result (``None`` when it failed: logged)."""
        if self._trace:
            log.info("hook %s(%r) -> %s", hook_name, kwargs, impl.plugin_name)
        try:
            result = impl.function(*[kwargs[name] for name in impl.argnames])
        except passes:
            raise
        except Exception:
            log.exception("plugin %r failed in %s", impl.plugin_name, hook_name)
            return None
        if self._trace:
            log.info("hook %s by %s returned %r", hook_name, impl.plugin_name, result)
        return result

    # --- enabled or not -----------------------------------------------------------------

    def disabled(self) -> frozenset[str]:
        """The names of the disabled plugins, checked against the database once per app
        context (so once per request)."""
        if not g.get(_CHECKED):
            self.refresh()
            g.setdefault(_CHECKED, True)
        return self._disabled

    def is_enabled(self, name: str) -> bool:
        """Whether ``name`` is loaded and enabled now."""
        info = self.infos.get(name)
        return info is not None and not info.broken and name not in self.disabled()

    def refresh(self) -> None:
        """Reload the enabled states if the ``plugins`` state version moved (no query when
        the configuration pins every plugin)."""
        if self.pins.keys() >= self.infos.keys():
            return
        try:
            version = db.session.scalar(
                select(StateVersion.version).where(StateVersion.key == STATE_KEY)
            )
        except (OperationalError, ProgrammingError):
            db.session.rollback()  # no tables yet (before `helpdesk init-db`): pins only
            return
        version = version or 0
        if version == self._version:
            return
        stored = dict(db.session.execute(select(PluginState.name, PluginState.enabled)).all())
        self._disabled = frozenset(
            name for name in self.infos if not self.pins.get(name, stored.get(name, True))
        )
        self._version = version

    def describe(self) -> list[PluginInfo]:
        """Every plugin, loaded or broken, by name, with its state now."""
        disabled = self.disabled()
        for name, info in self.infos.items():
            info.enabled = not info.broken and name not in disabled
            info.pinned = name in self.pins
        return sorted(self.infos.values(), key=lambda info: info.name)

    def set_enabled(self, name: str, enabled: bool, *, actor: str = "") -> None:
        """Enable (after applying its migrations) or disable a plugin, for every worker.

        Raises ``NotFound`` for an unknown name and ``PluginError`` for a pinned or broken
        plugin. Disabling never drops a table: the plugin's data waits for it to come back.
        """
        info = self.infos.get(name)
        if info is None:
            known = ", ".join(sorted(self.infos)) or "none"
            raise NotFound(f"no plugin named {name!r} is installed (installed: {known})")
        if name in self.pins:
            raise PluginError(
                f"plugin {name!r} is pinned {'on' if self.pins[name] else 'off'} by "
                "PLUGINS_ENABLED / PLUGINS_DISABLED in the configuration; change it there"
            )
        if enabled and info.broken:
            raise PluginError(f"plugin {name!r} is broken and cannot be enabled: {info.error}")
        if enabled:
            self.upgrade([name])
        row = db.session.get(PluginState, name) or PluginState(name=name)
        row.enabled, row.changed_at, row.changed_by = enabled, utcnow(), actor
        db.session.add(row)
        _bump_version()
        db.session.commit()
        g.pop(_CHECKED, None)

    # --- migrations ---------------------------------------------------------------------

    def upgrade(self, names: Iterable[str] | None = None) -> list[str]:
        """Upgrade the core and the branches of ``names`` (default: every enabled plugin) to
        their newest revisions; returns the revisions aimed at. Raises ``PluginError``."""
        wanted = set(self.enabled_names() if names is None else names)
        config = alembic_config()
        targets = [
            revision.revision
            for revision in self._branch_heads(ScriptDirectory.from_config(config))
            if self._owner(Path(revision.path)) in wanted | {None}
        ]
        db.session.commit()  # release this session's locks: Alembic works on its own connection
        for target in targets:
            try:
                alembic_command.upgrade(config, target)
            except CommandError as exc:
                raise PluginError(f"the database could not be upgraded to {target}: {exc}") from exc
        return targets

    def _branch_heads(self, script: ScriptDirectory) -> list[Any]:
        """The newest revision of the core and of each plugin. Alembic's own "heads" leave out
        a revision another branch ``depends_on`` (a plugin needing the core's newest table), so
        heads are found per owner: a revision no revision of the same owner builds on."""
        revisions = list(script.walk_revisions())
        built_on: set[tuple[str | None, str]] = set()
        for revision in revisions:
            owner = self._owner(Path(revision.path))
            downs = revision.down_revision or ()
            for down in (downs,) if isinstance(downs, str) else downs:
                built_on.add((owner, down))
        return [r for r in revisions if (self._owner(Path(r.path)), r.revision) not in built_on]

    def enabled_names(self) -> list[str]:
        disabled = self.disabled()
        return [n for n, info in self.infos.items() if not info.broken and n not in disabled]

    def _owner(self, path: Path) -> str | None:
        """The plugin whose version directory holds the revision file ``path`` (core: None)."""
        folder = path.resolve().parent
        for name, dirs in self.migration_dirs.items():
            if folder in dirs:
                return name
        return None


class PluginCommands(AppGroup):
    """``app.cli``: the core's commands, and the enabled plugins' ones (a disabled plugin's
    commands are neither listed nor runnable)."""

    def __init__(self, app: Flask, plugins: Plugins) -> None:
        super().__init__(app.name)
        self.app = app
        self.plugins = plugins
        self.owners: dict[str, str] = {}

    def add_plugin_command(self, plugin_name: str, command: click.Command) -> None:
        """Add a plugin's command unless it is none or its name is taken."""
        if not isinstance(command, click.Command) or command.name in self.commands:
            log.error(
                "plugin %r: %r is not a click command or its name is taken", plugin_name, command
            )
            return
        self.add_command(command)
        self.owners[str(command.name)] = plugin_name

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand as exc:  # suggest only the commands shown
            raise click.exceptions.NoSuchCommand(
                exc.command_name, possibilities=self.list_commands(ctx), ctx=ctx
            ) from None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in super().list_commands(ctx) if self._visible(name)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        return command if command is not None and self._visible(cmd_name) else None

    def _visible(self, name: str) -> bool:
        owner = self.owners.get(name)
        if owner is None:
            return True
        with self.app.app_context():
            return self.plugins.is_enabled(owner)


@migrate.configure
def _plugin_version_locations(config: Config) -> Config:
    """Let Alembic see every plugin's version directories beside the core's."""
    plugins: Plugins | None = current_app.extensions.get(EXTENSION_KEY)
    if plugins is not None:
        dirs = [CORE_VERSIONS_DIR, *(d for ds in plugins.migration_dirs.values() for d in ds)]
        config.set_main_option("path_separator", "os")
        config.set_main_option("version_locations", os.pathsep.join(str(d) for d in dirs))
    return config


def alembic_config() -> Config:
    """The Alembic configuration of the current app (core and plugin version directories)."""
    extension = current_app.extensions["migrate"]
    return extension.migrate.get_config(extension.directory)


def current_plugins() -> Plugins:
    """The current app's ``Plugins``."""
    return current_app.extensions[EXTENSION_KEY]


def call_each(hook_name: str, **kwargs: Any) -> list[Any]:
    """Call every enabled plugin's implementation of ``hook_name`` in turn; a plugin that raises
    is logged by name and skipped, so it can neither break the caller nor silence the others.

    Returns the non-``None`` results in pluggy's call order.
    """
    return [result for _, result in current_plugins().call_enabled(hook_name, **kwargs)]


def call_each_refusable(hook_name: str, **kwargs: Any) -> list[Any]:
    """As ``call_each``, but a ``ValidationError`` a plugin raises (it refuses the input)
    reaches the caller; other failures are logged and skipped."""
    plugins = current_plugins()
    if not getattr(plugins.pm.hook, hook_name).get_hookimpls():
        return []
    found = plugins._call(hook_name, plugins.disabled(), kwargs, passes=(ValidationError,))
    return [result for _, result in found]


def call_each_named(hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
    """As ``call_each``, with the name of the plugin that gave each result."""
    return current_plugins().call_enabled(hook_name, **kwargs)


def _bump_version() -> None:
    """Move the ``plugins`` state version on, creating the row the first time."""
    moved = db.session.execute(
        update(StateVersion)
        .where(StateVersion.key == STATE_KEY)
        .values(version=StateVersion.version + 1)
    )
    if moved.rowcount:
        return
    try:
        with db.session.begin_nested():
            db.session.add(StateVersion(key=STATE_KEY, version=1))
    except IntegrityError:  # another worker created it meanwhile
        _bump_version()


def _pins(config: Any) -> dict[str, bool]:
    on = set(config.get("PLUGINS_ENABLED") or ())
    off = set(config.get("PLUGINS_DISABLED") or ())
    if on & off:
        raise ConfigError(
            f"plugins both in PLUGINS_ENABLED and PLUGINS_DISABLED: {', '.join(sorted(on & off))}"
        )
    return {name: True for name in on} | {name: False for name in off}


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]
