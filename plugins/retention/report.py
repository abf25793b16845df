"""The dashboard's pieces: the drying-up table (sorted, as CSV), the monthly chart of lost
clients and the small AOV trend charts, drawn as SVG coordinates for the templates."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

from helpdesk import spreadsheet_safe
from plugins.retention import aggregates, service
from plugins.retention.service import ClientRow

SORT_KEYS = ("name", "signal", "aov_change", "last_order", "manager", "complaints")
CHART_HEIGHT = 120
CHART_BAR = 40


# Sort keys read for every drying-up client (``service.sort_values``; the spans answer the
# others, ``aggregates.SPAN_SORTS``), each with the value of a client without one (``None``:
# last either way). The page then loads only the rows it shows.
ROW_SORTS: dict[str, Any] = {"name": None, "manager": None, "complaints": 0}


def _sorted(items: list, get, descending: bool) -> list:
    """``items`` by ``get``; those without a value go last either way."""
    present = [i for i in items if get(i) is not None]
    missing = [i for i in items if get(i) is None]
    return sorted(present, key=get, reverse=descending) + missing


def drying_rows(
    as_of: date, key: str, descending: bool, limit: int | None
) -> tuple[list[ClientRow], int]:
    """The drying-up clients at D by ``key`` (one of ``SORT_KEYS``), the first ``limit`` (all
    for ``None``) with what the list shows of them (``DryingUp``), customer, manager and
    complaints; and how many there are. Ties keep the lists' order (latest last purchase first)."""
    if key in aggregates.SPAN_SORTS:
        total = service.count(as_of, "drying_up")
        ids = aggregates.drying_up_ids(as_of, key, descending, limit)
        rows = service.client_rows(ids, as_of)
    else:
        listed = service.drying_up_listed(as_of)
        total = len(listed)
        values = service.sort_values(listed, key, as_of)
        ids = _sorted(listed, lambda cid: values.get(cid, ROW_SORTS[key]), descending)[:limit]
        rows = service.client_rows(ids, as_of)
    return service.with_drying_up(rows, as_of), total


def changes_text(row: ClientRow) -> str:
    """The AOV change per currency as shown: ``EUR -40.00 %``."""
    changes = row.figures.aov_change_percent
    return ", ".join(f"{c} {service.percent(v)} %" for c, v in sorted(changes.items()))


def to_csv(rows: list[ClientRow], as_of: date, with_scores: bool = False) -> str:
    """The drying-up list as CSV (spreadsheet formulas neutralised); ``with_scores`` adds each
    client's last survey score."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "as_of",
            "customer_id",
            "email",
            "name",
            "signals",
            "stopped_lines",
            "aov_change_percent",
            "last_order",
            "account_manager",
            "complaints_90d",
            *(["last_survey_score"] if with_scores else []),
        ]
    )
    for row in rows:
        writer.writerow(
            [
                as_of.isoformat(),
                row.customer.id,
                spreadsheet_safe(row.customer.email),
                spreadsheet_safe(row.customer.name),
                " ".join(row.figures.signals),
                spreadsheet_safe("; ".join(row.figures.stopped_lines)),
                changes_text(row),
                row.figures.last_day.isoformat() if row.figures.last_day else "",
                spreadsheet_safe(row.manager.email) if row.manager else "",
                row.complaints_90d,
                *([row.last_score if row.last_score is not None else ""] if with_scores else []),
            ]
        )
    return out.getvalue()


def month_bars(months: list[tuple[str, int]]) -> list[dict[str, Any]]:
    """Vertical bars for the monthly chart: ``label``, ``value``, ``x``, ``y``, ``height``."""
    top = max((count for _, count in months), default=0)
    bars = []
    for index, (label, count) in enumerate(months):
        height = round(count / top * CHART_HEIGHT) if top else 0
        bars.append(
            {
                "label": label,
                "value": count,
                "x": index * (CHART_BAR + 8),
                "y": CHART_HEIGHT - height + 16,
                "height": height,
            }
        )
    return bars


def trend_points(previous: Any, last: Any, width: int = 60, height: int = 20) -> str | None:
    """The ``points`` of a two-point line from the previous to the last 90 days' AOV (one
    currency), or ``None`` when either is missing."""
    if previous is None or last is None:
        return None
    top = max(previous, last) or 1
    y_prev = height - float(previous / top) * (height - 2) - 1
    y_last = height - float(last / top) * (height - 2) - 1
    return f"0,{y_prev:.1f} {width},{y_last:.1f}"
