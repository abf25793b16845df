"""Ways to group customers in reports, offered by plugins (``helpdesk_customer_groupings``):
a report joins its rows to a grouping's query to break its figures down, without knowing the
tables of the plugin that classifies the customers."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, Subquery

from helpdesk.plugins import call_each_named

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Grouping:
    """One way to group customers: ``query`` selects (customer id, group name) for the
    customers it groups; the others are in the group ``otherwise``."""

    key: str
    label: str
    query: Select[Any]
    otherwise: str

    def subquery(self) -> tuple[Subquery, ColumnElement[Any], ColumnElement[Any]]:
        """The query as a subquery to outer-join to a report's rows on its customer id column
        (the first), and its group name column (the second)."""
        sub = self.query.subquery()
        customer_id, name = list(sub.c)[:2]
        return sub, customer_id, name


def customer_groupings() -> dict[str, Grouping]:
    """The groupings the enabled plugins offer, by key (the first plugin to give a key wins;
    a malformed answer is logged and left out)."""
    found: dict[str, Grouping] = {}
    for plugin, answer in call_each_named("helpdesk_customer_groupings"):
        for item in answer if isinstance(answer, list) else [answer]:
            try:
                grouping = Grouping(
                    key=str(item["key"]),
                    label=str(item["label"]),
                    query=item["query"],
                    otherwise=str(item.get("otherwise", "")),
                )
            except (KeyError, TypeError):
                log.error("plugin %r: helpdesk_customer_groupings gave %r", plugin, item)
                continue
            if not isinstance(grouping.query, Select):
                log.error("plugin %r: grouping %r has no select query", plugin, grouping.key)
                continue
            found.setdefault(grouping.key, grouping)
    return found
