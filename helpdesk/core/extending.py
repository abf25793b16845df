"""What the core asks plugins while it works: top-bar links, page panels, report pages, queue
filters and badges, and extra API fields.

Every answer is checked here: a malformed one is logged with the plugin's name and left out, so
a plugin can spoil neither a page nor a response.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, g, request, url_for
from flask_login import current_user
from sqlalchemy import Select
from werkzeug.routing import BuildError

from helpdesk.plugins import call_each_named

log = logging.getLogger(__name__)
TONE = re.compile(r"[a-z0-9-]{1,30}\Z")
# A top-bar search box's query argument.
_FIELD_NAME = re.compile(r"[a-z_][a-z0-9_]{0,30}\Z")
_NAV = "helpdesk_nav"
_QUEUE_FILTERS = "helpdesk_queue_filters"


def init_app(app: Flask) -> None:
    """Give templates the helpers that ask plugins for page parts."""
    helpers = (
        nav_items,
        nav_searches,
        ticket_panels,
        customer_panels,
        queue_filter_fields,
        queue_badges,
    )
    for helper in helpers:
        app.add_template_global(helper)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _answers(hook_name: str, **kwargs: Any) -> Iterable[tuple[str, dict[str, Any]]]:
    """Each dict the enabled plugins answered (a dict or a list of dicts each), by plugin."""
    for plugin, result in call_each_named(hook_name, **kwargs):
        for item in _as_list(result):
            if isinstance(item, dict):
                yield plugin, item
            else:
                log.error("plugin %r: %s gave %r, not a dict", plugin, hook_name, item)


def _url(plugin: str, item: dict[str, Any]) -> str | None:
    if item.get("url"):
        return str(item["url"])
    try:
        return url_for(str(item.get("endpoint")))
    except BuildError:
        log.error("plugin %r: no page for the endpoint %r", plugin, item.get("endpoint"))
        return None


def nav_items() -> list[dict[str, Any]]:
    """The enabled plugins' top-bar links for the logged-in agent: ``label``, ``url``,
    ``current`` (the page shown)."""
    return _nav()[0]


def nav_searches() -> list[dict[str, Any]]:
    """The enabled plugins' top-bar search boxes (a card number, ...): ``label``, ``url`` (a
    page answering GET) and ``field`` (the query argument the box fills)."""
    return _nav()[1]


def _nav() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The links and the search boxes, asked of the plugins once per request."""
    if not current_user.is_authenticated:
        return [], []
    if _NAV in g:
        return g.get(_NAV)
    links, searches = [], []
    agent = current_user._get_current_object()
    for plugin, item in _answers("helpdesk_nav_items", agent=agent):
        if item.get("admin_only") and not agent.is_admin:
            continue
        url = _url(plugin, item)
        if url is None:
            continue
        label = str(item.get("label", ""))
        field = item.get("search")
        if field is None:
            links.append({"label": label, "url": url, "current": url == request.path})
        elif isinstance(field, str) and _FIELD_NAME.fullmatch(field):
            searches.append({"label": label, "url": url, "field": field})
        else:
            log.error("plugin %r: nav search field %r is not a simple name", plugin, field)
    setattr(g, _NAV, (links, searches))
    return links, searches


def _panels(hook_name: str, **kwargs: Any) -> list[dict[str, Any]]:
    return [
        {
            "title": str(panel.get("title", "")),
            "html": panel.get("html", ""),
            "place": "top" if panel.get("place") == "top" else "side",
        }
        for _, panel in _answers(hook_name, **kwargs)
    ]


def ticket_panels(ticket: Any) -> list[dict[str, Any]]:
    """The enabled plugins' panels for the ticket page: ``title`` and ``html`` (``Markup`` is
    shown as HTML, plain text is escaped)."""
    return _panels("helpdesk_ticket_panels", ticket=ticket)


def customer_panels(customer: Any) -> list[dict[str, Any]]:
    """The enabled plugins' panels for the customer page (as ``ticket_panels``)."""
    return _panels("helpdesk_customer_panels", customer=customer)


def reports() -> list[dict[str, str]]:
    """The enabled plugins' report pages: ``title``, ``url``, ``description``, by title."""
    pages = []
    for plugin, item in _answers("helpdesk_reports"):
        url = _url(plugin, item)
        if url is not None:
            pages.append(
                {
                    "title": str(item.get("title", "")),
                    "url": url,
                    "description": str(item.get("description", "")),
                }
            )
    return sorted(pages, key=lambda page: page["title"].casefold())


def portal_forms() -> dict[str, str]:
    """``{kind: url}`` of the enabled plugins' public forms that replace the portal's form for
    a kind of request (the first plugin's page for a kind wins)."""
    forms: dict[str, str] = {}
    for plugin, answer in _answers("helpdesk_portal_forms"):
        for kind, endpoint in answer.items():
            url = _url(plugin, {"endpoint": endpoint})
            if url is not None:
                forms.setdefault(str(kind), url)
    return forms


def queue_badges(tickets: Sequence[Any]) -> dict[int, list[dict[str, str]]]:
    """``{ticket_id: [badge]}`` for the tickets shown, one hook call for the whole page; a
    badge is ``label``, ``title`` and ``tone`` (a CSS-safe word or empty)."""
    badges: dict[int, list[dict[str, str]]] = {}
    if not tickets:
        return badges
    for plugin, answer in _answers("helpdesk_queue_badges", tickets=list(tickets)):
        for ticket_id, items in answer.items():
            for item in _as_list(items):
                if not isinstance(item, dict) or not item.get("label"):
                    log.error("plugin %r: bad queue badge %r", plugin, item)
                    continue
                tone = str(item.get("tone", ""))
                badges.setdefault(ticket_id, []).append(
                    {
                        "label": str(item["label"]),
                        "title": str(item.get("title", "")),
                        "tone": tone if TONE.match(tone) else "",
                    }
                )
    return badges


@dataclass(frozen=True)
class QueueFilterSpec:
    """One plugin's extra queue filter (see ``helpdesk_queue_filters``)."""

    plugin: str
    name: str
    label: str
    choices: Any
    apply: Callable[[Select, str], Select]

    def choice_list(self) -> list[tuple[str, str]]:
        """The ``(value, label)`` pairs offered; none when the plugin fails to give them."""
        try:
            choices = self.choices() if callable(self.choices) else self.choices
            return [(str(value), str(label)) for value, label in choices]
        except Exception:
            log.exception("plugin %r failed to list the choices of %r", self.plugin, self.name)
            return []


def queue_filter_specs(reserved: Iterable[str]) -> list[QueueFilterSpec]:
    """The enabled plugins' queue filters; a name in ``reserved`` (the core's own query
    arguments) or already taken is refused."""
    taken = set(reserved)
    specs = []
    if _QUEUE_FILTERS not in g:  # asked once per request: the view and the form both need them
        setattr(g, _QUEUE_FILTERS, list(_answers("helpdesk_queue_filters")))
    for plugin, item in g.get(_QUEUE_FILTERS):
        name = str(item.get("name", ""))
        if not name or name in taken or not callable(item.get("apply")):
            log.error(
                "plugin %r: queue filter %r refused (no name, name taken or no apply)", plugin, name
            )
            continue
        taken.add(name)
        specs.append(
            QueueFilterSpec(
                plugin, name, str(item.get("label", name)), item.get("choices", []), item["apply"]
            )
        )
    return specs


def queue_filter_fields() -> list[dict[str, Any]]:
    """The plugin filters as the queue's filter form shows them: ``name``, ``label``,
    ``choices``."""
    from helpdesk.core.queue import QUERY_ARGS

    return [
        {"name": spec.name, "label": spec.label, "choices": spec.choice_list()}
        for spec in queue_filter_specs(QUERY_ARGS)
    ]


def apply_queue_filters(query: Select, chosen: dict[str, str], reserved: Iterable[str]) -> Select:
    """``query`` narrowed by the plugin filters in ``chosen`` (name → value); a filter that
    fails is logged and left out."""
    if not chosen:
        return query
    for spec in queue_filter_specs(reserved):
        if spec.name in chosen:
            try:
                query = spec.apply(query, chosen[spec.name])
            except Exception:
                log.exception(
                    "plugin %r failed to apply the queue filter %r", spec.plugin, spec.name
                )
    return query


def add_api_fields(hook_name: str, items: list[dict[str, Any]], **kwargs: Any) -> list[dict]:
    """``items`` (JSON objects with an ``id``) with the fields the enabled plugins add for them;
    one hook call for all. A field already there, or one that is not JSON, is left out."""
    if not items:
        return items
    by_id = {item["id"]: item for item in items}
    for plugin, answer in _answers(hook_name, **kwargs):
        for row_id, fields in answer.items():
            item = by_id.get(row_id)
            if item is None or not isinstance(fields, dict):
                continue
            for key, value in fields.items():
                if not isinstance(key, str) or key in item:
                    log.error("plugin %r: API field %r refused (taken or not text)", plugin, key)
                    continue
                try:
                    current_app.json.dumps(value)
                except (TypeError, ValueError):
                    log.error("plugin %r: API field %r is not JSON: %r", plugin, key, value)
                    continue
                item[key] = value
    return items
