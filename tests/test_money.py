"""``ExactDecimal``: money stored as integer units, exact in sums on every database."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import StatementError

from helpdesk import ExactDecimal
from helpdesk.extensions import db

ledger = sa.Table(
    "test_money_ledger",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("amount", ExactDecimal(4)),
    sa.Column("cents", ExactDecimal(2)),
)


@pytest.fixture
def table(app):
    ledger.create(db.engine)
    yield ledger
    db.session.rollback()
    ledger.drop(db.engine)


def test_amounts_read_back_exactly_and_sum_exactly(table):
    amounts = [Decimal("0.1")] * 1000 + [Decimal("99999999999.9999"), Decimal("-0.0001")]
    db.session.execute(table.insert(), [{"amount": amount} for amount in amounts])
    total = db.session.scalar(sa.select(sa.func.sum(table.c.amount)))
    assert total == sum(amounts) == Decimal("100000000099.9998")
    stored = db.session.scalars(sa.select(table.c.amount).order_by(table.c.id.desc())).first()
    assert stored == Decimal("-0.0001") and isinstance(stored, Decimal)


def test_none_stays_none(table):
    db.session.execute(table.insert(), [{"amount": None, "cents": Decimal("1.25")}])
    row = db.session.execute(sa.select(table.c.amount, table.c.cents)).one()
    assert row == (None, Decimal("1.25"))


@pytest.mark.parametrize(
    "value", [Decimal("0.00001"), Decimal("NaN"), Decimal("Infinity"), Decimal("1e30"), 0.1, "1"]
)
def test_inexact_or_foreign_values_are_refused_not_rounded(table, value):
    with pytest.raises(StatementError) as caught:
        db.session.execute(table.insert(), [{"amount": value}])
    assert isinstance(caught.value.orig, ValueError)
    db.session.rollback()


def test_the_places_are_per_column(table):
    with pytest.raises(StatementError):
        db.session.execute(table.insert(), [{"cents": Decimal("1.001")}])
