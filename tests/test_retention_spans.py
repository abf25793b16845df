"""The spans the retention figures are read from: for random clients they answer exactly what
the tested definitions answer at every date (pure), and in the database the summary, the lists
and the review's statuses read from them equal a direct computation from the orders, and keep
equal after new orders (page, import, behind the app's back), refunds and a change of rules."""

from __future__ import annotations

import io
import random
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise
from typing import Any

import pytest
from alembic import command as alembic_command
from sqlalchemy import column, func, insert, select, table

from helpdesk import create_app
from helpdesk.core import orders
from helpdesk.core.accounts import create_agent
from helpdesk.core.customers import register_customer
from helpdesk.core.models import Customer, Order, OrderLine
from helpdesk.core.orders_import import import_orders
from helpdesk.extensions import db
from helpdesk.plugins import alembic_config, current_plugins
from plugins.retention import aggregates, report, service, spans
from plugins.retention.compute import figures_of
from plugins.retention.definitions import Figures, Purchase, Rules, evaluate, worst_change
from plugins.retention.models import ClientSpan, LossReason, SpanLength, SpanMoney, SpanState
from plugins.retention.timeline import OPEN_END, span_of, timeline

START = date(2023, 1, 1)
LINES = ("Coffee", "Tea", "Cake", "Mugs")
OTHER_RULES = Rules(
    regular_purchases=2,
    lost_min_days=30,
    lost_intervals=2,
    at_risk_intervals=1,
    aov_window_days=30,
    aov_drop_percent=Decimal("10"),
    line_history_days=120,
    line_min_purchases=2,
    period_days=90,
    lifetime_months=Decimal("12.5"),
)


@pytest.fixture(autouse=True)
def retention_enabled(app_config: dict[str, Any]) -> None:
    """The plugin switched on (the suite pins it off so the core's tests see the core)."""
    app_config["PLUGINS_DISABLED"] = ["hello", "categories", "surveys", "loyalty", "letters"]


def random_purchases(rng: random.Random, span_days: int = 900) -> list[Purchase]:
    """A client's orders: bursts and gaps, some same-day, two currencies now and then, half
    with product lines, amounts that fall over time for some."""
    purchases = []
    day = START + timedelta(days=rng.randrange(60))
    fall = rng.choice((1, 1, 2))
    for _ in range(rng.randint(1, 25)):
        day += timedelta(days=rng.choice((0, 3, 10, 20, 30, 45, 90, 200)))
        if (day - START).days > span_days:
            break
        amount = Decimal(rng.randint(100, 20_000)) / 100
        if fall == 2 and (day - START).days > span_days // 2:
            amount = amount / 4
        lines = frozenset(rng.sample(LINES, rng.randint(1, 2))) if rng.random() < 0.5 else None
        currency = "USD" if rng.random() < 0.1 else "EUR"
        purchases.append(
            Purchase(day, currency, amount.quantize(Decimal("0.01")), lines or frozenset())
        )
    return purchases


def span_at(found: list, day: date):
    """The span holding at ``day``, if any."""
    matching = [s for s in found if s.start <= day < s.end]
    assert len(matching) <= 1
    return matching[0] if matching else None


@pytest.mark.parametrize("rules", [Rules(), OTHER_RULES], ids=["default", "other"])
def test_spans_answer_what_the_definitions_answer_at_every_date(rules: Rules):
    rng = random.Random(10)
    for _ in range(150):
        purchases = random_purchases(rng)
        found = timeline(purchases, rules)
        assert all(a.end == b.start for a, b in pairwise(found))
        assert found[-1].end == OPEN_END
        edges = {s.start for s in found} | {s.start - timedelta(days=1) for s in found}
        probes = edges | {START + timedelta(days=rng.randrange(1500)) for _ in range(30)}
        for day in sorted(probes):
            figures = evaluate(purchases, day, rules)
            span = span_at(found, day)
            if figures.purchases == 0:
                assert span is None, day
                continue
            assert span == span_of(figures, span.start, span.end), day


def test_a_client_with_one_order_or_one_day_is_new_for_ever():
    one_day = [Purchase(START, "EUR", Decimal("10")), Purchase(START, "EUR", Decimal("20"))]
    (span,) = timeline(one_day, Rules())
    assert (span.start, span.end, span.status) == (START, OPEN_END, "new")


# --- in the database ----------------------------------------------------------------------


def seed(rng: random.Random, count: int) -> list[Customer]:
    """``count`` customers with random orders (recorded as the app does), a few without, and
    a loss reason recorded for some."""
    customers = []
    for index in range(count):
        customer = register_customer({"email": f"c{index}@example.com", "name": f"C {index}"})
        customers.append(customer)
        if index % 3 == 0:
            reason = ("price", "moved", "unknown")[index % 9 // 3]
            service.record_loss_reason(customer, reason, "", None)
        if index % 7 == 0:
            continue
        for number, p in enumerate(random_purchases(rng)):
            orders.record_order(
                customer,
                ordered_on=p.day,
                amount=None if p.lines else p.amount,
                currency=p.currency,
                reference=f"c{index}-{number}",
                lines=[{"product_line": line, "amount": p.amount} for line in sorted(p.lines)]
                or None,
            )
    return customers


# How the drying-up list sorts by each key the spans answer (as the page did before the
# database sorted it): by the value, ties in the lists' order, clients without one last.
DRYING_KEYS: dict[str, Any] = {
    "signal": lambda f: ",".join(f.signals),
    "aov_change": lambda f: (
        None if worst_change(f) is None else (float(worst_change(f)), worst_change(f))
    ),
    "last_order": lambda f: f.last_day,
}


def drying_orders(ids: list[int], every: dict[int, Figures]) -> dict[tuple, list[int]]:
    """The drying-up clients ``ids`` (in the lists' order) by each key and direction."""
    found = {}
    for key, get in DRYING_KEYS.items():
        present = [cid for cid in ids if get(every[cid]) is not None]
        missing = [cid for cid in ids if get(every[cid]) is None]
        for descending in (False, True):
            ordered = sorted(present, key=lambda cid: get(every[cid]), reverse=descending)
            found[key, descending] = ordered + missing
    return found


def direct(as_of: date) -> dict[str, Any]:
    """What the plugin must show at ``as_of``, from every client's figures computed straight
    from their orders (the definitions, as the plugin computed them before the spans)."""
    rules = service.rules()
    ids = list(db.session.scalars(select(Customer.id).order_by(Customer.id)))
    every = {cid: f for cid, f in figures_of(ids, as_of, rules).items() if f.purchases}
    period_from = as_of - timedelta(days=rules.period_days)
    lost = {cid: f for cid, f in every.items() if f.status == "lost" and f.lost_on > period_from}
    lists = {
        status: sorted(
            (
                (f.last_day, cid)
                for cid, f in every.items()
                if (f.won_back_on is not None if status == "won_back" else f.status == status)
            ),
            reverse=True,
        )
        for status in service.LIST_STATUSES
    }
    recorded = dict(db.session.execute(select(LossReason.customer_id, LossReason.reason)).all())
    lost_reasons = Counter(recorded[cid] for cid in lost if cid in recorded)
    return {
        "summary": {
            "lost_12m": {
                "count": len(lost),
                "revenue_before": service.money(
                    service.add_up(f.revenue_before for f in lost.values())
                ),
                "lifetime_value_lost": service.money(
                    service.add_up(f.lifetime_value_lost for f in lost.values())
                ),
            },
            "won_back_12m": {"count": len(lists["won_back"])},
            "drying_up": {"count": len(lists["drying_up"])},
            "reasons": service.reason_breakdown(lost_reasons, len(lost)),
        },
        "months": service.monthly_lost(as_of, Counter(f.lost_on for f in lost.values())),
        "drying_orders": drying_orders([cid for _, cid in lists["drying_up"]], every),
        "lists": {status: [cid for _, cid in found] for status, found in lists.items()},
        "statuses": [(cid, f.status, f.won_back_on) for cid, f in sorted(every.items())],
        "drying": {
            cid: (f.signals, f.last_day) for cid, f in every.items() if f.status == "drying_up"
        },
        "drying_shown": {
            cid: (f.signals, f.stopped_lines, f.aov_change_percent, f.last_day)
            for cid, f in every.items()
            if f.status == "drying_up"
        },
    }


def from_spans(as_of: date) -> dict[str, Any]:
    """The same, as the plugin now reads it (the drying-up orders whole and cut short, which
    the database sorts)."""
    summary = service.summary(as_of)
    drying = service.clients(as_of, "drying_up")
    orders = {}
    for key, descending in ((k, d) for k in DRYING_KEYS for d in (False, True)):
        ranked = aggregates.drying_up_ids(as_of, key, descending, None)
        for limit in (1, 2, 5):
            assert aggregates.drying_up_ids(as_of, key, descending, limit) == ranked[:limit]
        orders[key, descending] = ranked
    return {
        "summary": {
            key: summary[key] for key in ("lost_12m", "won_back_12m", "drying_up", "reasons")
        },
        "months": service.monthly_lost(as_of, service.lost_totals(as_of).by_day),
        "drying_orders": orders,
        "lists": {
            status: [item.customer_id for item in service.clients(as_of, status)]
            for status in service.LIST_STATUSES
        },
        "statuses": spans.statuses_at(as_of),
        "drying": {item.customer_id: (list(item.signals), item.last_day) for item in drying},
        "drying_shown": {
            row.customer.id: (
                row.figures.signals,
                row.figures.stopped_lines,
                row.figures.aov_change_percent,
                row.figures.last_day,
            )
            for key in ("aov_change", "name")
            for row in report.drying_rows(as_of, key, False, None)[0]
        },
    }


DATES = (
    date(2023, 3, 1),
    date(2023, 11, 15),
    date(2024, 6, 30),
    date(2025, 1, 1),
    date(2025, 9, 1),
)


def assert_in_step() -> None:
    for as_of in DATES:
        assert from_spans(as_of) == direct(as_of), as_of
    # The stored longest span of each status bounds every span of it.
    longest = dict(db.session.execute(select(SpanLength.status, SpanLength.longest_days)).all())
    for status, start, end in db.session.execute(
        select(ClientSpan.status, ClientSpan.valid_from, ClientSpan.valid_to)
    ):
        assert (end - start).days <= longest[status], (status, start, end)


@pytest.fixture
def shop(app) -> Iterator[list[Customer]]:
    yield seed(random.Random(7), 40)


def untouched_spans(changed: list[int]) -> set[tuple]:
    """Every span of the customers not in ``changed``."""
    rows = db.session.execute(
        select(ClientSpan.customer_id, ClientSpan.valid_from, ClientSpan.valid_to).where(
            ClientSpan.customer_id.not_in(changed)
        )
    )
    return {tuple(row) for row in rows}


def test_the_spans_follow_new_orders_refunds_and_imports(app, shop):
    assert_in_step()
    built = db.session.get(SpanState, spans.STATE_ID)
    assert built.orders_count == db.session.scalar(select(func.count()).select_from(Order))
    # A new order on a page or by the API: only its customer's spans are rebuilt.
    changed = [shop[0].id, shop[1].id]
    before = untouched_spans(changed)
    orders.record_order(shop[1], ordered_on="2024-06-01", amount="5.00", currency="EUR")
    orders.record_order(shop[0], ordered_on="2025-02-01", amount="900.00", currency="EUR")
    summary = spans.ensure_current()
    assert summary is not None and not summary.full and summary.customers == 2
    # Only the spans that changed are written: shop[1]'s spans before its new order stay.
    now = db.session.scalar(
        select(func.count()).select_from(ClientSpan).where(ClientSpan.customer_id.in_(changed))
    )
    assert 0 < summary.spans < now
    assert spans.ensure_current() is None
    assert untouched_spans(changed) == before
    assert_in_step()
    # A refund changes no figure (refunds are not deducted) and rebuilds nothing.
    order = db.session.scalar(select(Order).where(Order.customer_id == shop[2].id).limit(1))
    orders.refund_order(order, amount="1.00", reason="broken")
    assert spans.ensure_current() is None
    assert_in_step()
    # An import, with product lines and a new customer.
    csv_text = (
        "customer_email,date,amount,currency,reference,product_line\n"
        "c3@example.com,2024-01-10,40.00,EUR,imp-1,Coffee\n"
        "c3@example.com,2024-01-10,10.00,EUR,imp-1,Tea\n"
        "new@example.com,2024-02-01,10.00,EUR,imp-2,\n"
        "c5@example.com,2024-12-24,70.00,USD,imp-3,\n"
    )
    imported = import_orders(io.BytesIO(csv_text.encode()), source="test")
    assert imported.imported == 4 and not imported.failures
    assert_in_step()
    # A new order and an old one gone: a page rebuilds the new order's customer (it counts
    # the newer orders only); the review's count finds the other and rebuilds everything.
    gone = db.session.scalar(select(Order.id).where(Order.customer_id == shop[10].id).limit(1))
    db.session.execute(OrderLine.__table__.delete().where(OrderLine.order_id == gone))
    db.session.execute(Order.__table__.delete().where(Order.id == gone))
    db.session.commit()
    orders.record_order(shop[11], ordered_on="2025-03-03", amount="8.00", currency="EUR")
    summary = spans.ensure_current()
    assert summary is not None and not summary.full and summary.customers == 1
    summary = spans.ensure_current(thorough=True)
    assert summary is not None and summary.full
    assert_in_step()


def test_the_spans_follow_orders_inserted_behind_the_apps_back(app, shop):
    assert_in_step()
    last_id = db.session.scalar(select(func.max(Order.id)))
    db.session.execute(
        insert(Order),
        [
            {
                "id": last_id + 1,
                "customer_id": shop[8].id,
                "ordered_on": date(2024, 3, 3),
                "amount": Decimal("12.00"),
                "currency": "EUR",
                "source": "bulk",
                "reference": "b1",
            },
            {
                "id": last_id + 2,
                "customer_id": shop[9].id,
                "ordered_on": date(2025, 8, 1),
                "amount": Decimal("3.00"),
                "currency": "EUR",
                "source": "bulk",
                "reference": "b2",
            },
        ],
    )
    db.session.execute(
        insert(OrderLine), [{"order_id": last_id + 1, "product_line": "Cake", "amount": 12}]
    )
    db.session.commit()
    assert_in_step()
    # Orders gone (not through the app): pages look at the highest id only, the review also
    # counts the orders and rebuilds everything.
    db.session.execute(OrderLine.__table__.delete().where(OrderLine.order_id == last_id + 1))
    db.session.execute(Order.__table__.delete().where(Order.id == last_id + 1))
    db.session.commit()
    assert spans.ensure_current() is None
    summary = spans.ensure_current(thorough=True)
    assert summary is not None and summary.full
    assert_in_step()


def test_other_rules_rebuild_the_spans(app, shop):
    assert_in_step()
    app.config.update(
        RETENTION_REGULAR_PURCHASES=2,
        RETENTION_LOST_MIN_DAYS=60,
        RETENTION_AOV_WINDOW_DAYS=60,
        RETENTION_PERIOD_DAYS=200,
    )
    assert spans.ensure_current().full
    assert_in_step()


def test_the_rebuild_command(app, runner, shop):
    db.session.execute(ClientSpan.__table__.delete())
    db.session.commit()
    result = runner.invoke(args=["retention", "rebuild"])
    assert result.exit_code == 0, result.output
    with_orders = db.session.scalar(select(func.count(Order.customer_id.distinct())))
    assert f"of {with_orders} client(s) with orders" in result.output
    assert_in_step()


def test_the_aov_change_order_decides_equal_doubles_exactly(app):
    # -1/3 and -0.3333333333333333 are the same double: the exact value decides.
    third, near = "-1/3", "-3333333333333333/10000000000000000"
    assert float(Fraction(third)) == float(Fraction(near)) and Fraction(third) < Fraction(near)
    kinds = {
        "a": (third, date(2025, 1, 10)),
        "b": (near, date(2025, 1, 20)),
        "c": ("-1/2", date(2025, 1, 5)),
        "d": (None, date(2025, 1, 30)),
        "e": (third, date(2025, 1, 10)),  # ties with a: the lists' order (higher id first)
    }
    ids = {}
    for name, (worst, last_day) in kinds.items():
        ids[name] = register_customer({"email": f"{name}@example.com", "name": name}).id
        db.session.add(
            ClientSpan(
                customer_id=ids[name],
                valid_from=date(2025, 1, 1),
                valid_to=OPEN_END,
                status="drying_up",
                first_day=date(2024, 1, 1),
                last_day=last_day,
                signals="aov_drop" if worst else "line_stopped",
                worst_change=worst,
                worst_order=None if worst is None else float(Fraction(worst)),
            )
        )
    # As a build would record it: how long the longest drying-up span lasts.
    db.session.add(SpanLength(status="drying_up", longest_days=(OPEN_END - START).days))
    db.session.commit()
    expected = {False: "ceabd", True: "beacd"}
    for descending, names in expected.items():
        for limit in (None, 0, 1, 2, 3, 4, 5, 6):
            found = aggregates.drying_up_ids(date(2025, 2, 1), "aov_change", descending, limit)
            assert found == [ids[n] for n in names][:limit], (descending, limit)


def test_the_migration_fills_what_it_adds_from_the_spans_there_are(tmp_path):
    fresh = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'old.sqlite3'}",
            "SECRET_KEY": "x",
        }
    )
    with fresh.app_context():
        alembic_command.upgrade(alembic_config(), "retention_0002")
        customer = register_customer({"email": "old@example.com", "name": "Old"})
        names = ("customer_id", "first_day", "last_day", "valid_from", "valid_to", "status")
        extra = ("signals", "worst_change", "lost_on")
        old_spans = table("retention_spans", *map(column, (*names, *extra)))
        spans_before = [
            ("2024-01-01", "2024-03-01", "drying_up", "aov_drop", "-2/5", None),
            ("2024-03-01", "2024-05-01", "drying_up", "aov_drop", "-1/3", None),
            ("2024-05-01", "9999-12-31", "lost", "", None, "2024-04-30"),
        ]
        db.session.execute(
            insert(old_spans),
            [
                dict(
                    zip(
                        (*names, *extra),
                        (customer.id, "2023-01-01", "2024-01-01", *row),
                        strict=True,
                    )
                )
                for row in spans_before
            ],
        )
        old_money = table(
            "retention_span_money",
            *map(
                column, ("customer_id", "valid_from", "currency", "revenue_before", "spend_total")
            ),
        )
        db.session.execute(
            insert(old_money),
            [
                {
                    "customer_id": customer.id,
                    "valid_from": "2024-05-01",
                    "currency": "EUR",
                    "revenue_before": 1000,
                    "spend_total": 50000,
                }
            ],
        )
        db.session.commit()
        assert "retention_0003" in current_plugins().upgrade()
        found = db.session.execute(
            select(ClientSpan.worst_change, ClientSpan.worst_order).order_by(ClientSpan.valid_from)
        ).all()
        assert found == [("-2/5", -0.4), ("-1/3", -1 / 3), (None, None)]
        lengths = db.session.execute(select(SpanLength.status, SpanLength.longest_days))
        assert sorted(lengths) == [("drying_up", 61), ("lost", 2_913_052)]
        money = db.session.execute(
            select(
                SpanMoney.valid_to, SpanMoney.lost_on, SpanMoney.span_days, SpanMoney.spend_total
            )
        ).one()
        assert money == (OPEN_END, date(2024, 4, 30), 365, Decimal("5.0000"))
        db.session.remove()
        db.engine.dispose()


# How the drying-up list sorted by the customer rows before they were read as plain columns.
ROW_KEYS: dict[str, Any] = {
    "name": lambda r: r.customer.display_name.casefold(),
    "manager": lambda r: r.manager.name.casefold() if r.manager else None,
    "complaints": lambda r: r.complaints_90d,
}


def test_the_row_sorts_order_as_the_rows_do(app, shop):
    bea = create_agent(email="bea@example.com", name="bea", password="x" * 12)
    al = create_agent(email="al@example.com", name="Al", password="x" * 12)
    for index, customer in enumerate(shop[:30]):
        if index % 3:
            service.set_account_manager(customer, bea if index % 2 else al)
        if index % 4 == 1:
            customer.name = ""  # shown by their e-mail
    db.session.commit()
    for as_of in DATES:
        listed = [item.customer_id for item in service.clients(as_of, "drying_up")]
        rows = service.client_rows(listed, as_of)
        for key, get in ROW_KEYS.items():
            for descending in (False, True):
                expected = [r.customer.id for r in report._sorted(rows, get, descending)]
                found, total = report.drying_rows(as_of, key, descending, None)
                assert [r.customer.id for r in found] == expected, (as_of, key, descending)
                assert total == len(listed)
                cut, _ = report.drying_rows(as_of, key, descending, 2)
                assert [r.customer.id for r in cut] == expected[:2]
