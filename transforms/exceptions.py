"""Errors raised by the pure transforms.

``transforms`` must stay importable without Django and without
``dw_analytics``, so these classes mirror the interface of
``dw_analytics.core.exceptions.DWError`` (``message``, ``retryable``,
``context`` and structured fields read as attributes) instead of deriving
from it. A pipeline that wants one error family can catch
:class:`TransformError` and re-raise it as its own ``DWError`` subclass,
passing ``**err.context`` along.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: how many failing values an error message quotes
MAX_QUOTED_VALUES = 10


class TransformError(Exception):
    """Base class of the errors raised in ``transforms``.

    Args:
        message: what went wrong and what to do about it.
        retryable: never true for a pure transform: the same input fails again.
        **context: structured facts (``table``, ``column``, ``values``...)
            kept in ``self.context`` and readable as attributes.

    Example:
        >>> err = TransformError("bad input", table="orders", column="total")
        >>> err.table, err.line
        ('orders', None)
    """

    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        if retryable is not None:
            self.retryable = retryable
        self.context = {k: v for k, v in context.items() if v is not None}

    def __getattr__(self, name: str) -> Any:
        # Structured fields read as attributes (err.table, err.column); absent ones are None.
        if name.startswith("__") or name == "context":
            raise AttributeError(name)
        return self.context.get(name)


class MissingColumnsError(TransformError, KeyError):
    """An input frame lacks columns a transform needs. Carries ``table`` and ``columns``.

    Example:
        >>> str(MissingColumnsError.for_frame("orders", ["total"], ["id"]))
        "'orders' is missing column(s) total; it has: id"
    """

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.message

    @classmethod
    def for_frame(cls, table: str, missing: Iterable[str], present: Iterable[str]) -> MissingColumnsError:
        missing = list(missing)
        message = f"{table!r} is missing column(s) {', '.join(missing)}; it has: {', '.join(map(str, present))}"
        return cls(message, table=table, columns=missing)


class SchemaViolation(TransformError, ValueError):
    """A table breaks its schema or a fact key has no dimension row.

    Carries ``table``, ``column``, ``check`` (what was verified),
    ``values`` (up to :data:`MAX_QUOTED_VALUES` failing values) and
    ``n_failures``.

    Example:
        >>> err = SchemaViolation.for_values("fact_sales", "product_key", "exists in dim_product", [7, 9])
        >>> err.column, err.values
        ('product_key', [7, 9])
        >>> str(err)
        "fact_sales.product_key fails 'exists in dim_product' for 2 value(s): 7, 9"
    """

    @classmethod
    def for_values(
        cls,
        table: str,
        column: str | None,
        check: str,
        values: Iterable[Any],
        n_failures: int | None = None,
    ) -> SchemaViolation:
        values = list(values)
        quoted = values[:MAX_QUOTED_VALUES]
        n = len(values) if n_failures is None else n_failures
        where = f"{table}.{column}" if column else table
        more = f" (first {len(quoted)} shown)" if n > len(quoted) else ""
        message = f"{where} fails {check!r} for {n} value(s){more}: {', '.join(map(repr, quoted))}"
        return cls(message, table=table, column=column, check=check, values=quoted, n_failures=n)


class MoneyTypeError(TransformError, TypeError):
    """A money column is not exact (float) or not a decimal; carries ``table`` and ``column``."""
