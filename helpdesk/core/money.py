"""Money in the database: ``ExactDecimal`` keeps a ``Decimal`` with a fixed number of places as
an integer count of its smallest unit, on every database. Sums in SQL are then exact on SQLite
too (whose NUMERIC is a binary double), which balances and ledgers need.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

# The largest count a BIGINT holds.
_MAX_UNITS = 2**63 - 1


class ExactDecimal(TypeDecorator[Decimal]):
    """A ``Decimal`` with ``places`` digits after the point, stored as a BIGINT of
    ``10**-places`` units (``places=4``: 12.5 is stored as 125000). ``func.sum`` over such a
    column reads back as a ``Decimal``. A value with more places, or too large to store,
    raises ``ValueError``: check amounts before they reach the database."""

    impl = BigInteger
    cache_ok = True

    def __init__(self, places: int = 4) -> None:
        super().__init__()
        self.places = places

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if not isinstance(value, (Decimal, int)) or isinstance(value, bool):
            raise ValueError(f"an exact amount must be a Decimal, not {type(value).__name__}")
        units = Decimal(value).scaleb(self.places)
        if not units.is_finite() or units != units.to_integral_value():
            raise ValueError(f"{value} has more than {self.places} places")
        if abs(units) > _MAX_UNITS:
            raise ValueError(f"{value} is too large to store")
        return int(units)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(value).scaleb(-self.places)
