"""Read a Django QuerySet into pandas, fast and typed from the model.

The query is compiled by Django (filters, joins across relations, annotations,
ordering all stay the ORM's job), executed on the raw database cursor, and the
rows are turned into typed columns a whole column at a time: no model
instances, no dict per row. Column types follow the model fields; see
:mod:`dw_analytics.extract._types` for the table of rules.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd
from django.conf import settings
from django.core.exceptions import EmptyResultSet, FieldDoesNotExist, FieldError
from django.db import connections, models, transaction
from django.db.models.expressions import Col
from django.db.models.sql.constants import LOUTER

from dw_analytics.core.fields import INTEGER_FIELD_TYPES
from dw_analytics.extract import _fetch
from dw_analytics.extract import _types as t
from dw_analytics.extract.exceptions import ExtractError

__all__ = ["read_queryset"]

_STRING_FIELDS = {
    "CharField",
    "TextField",
    "EmailField",
    "SlugField",
    "URLField",
    "FilePathField",
    "FileField",
    "ImageField",
    "GenericIPAddressField",
    "IPAddressField",
}
_KIND_BY_FIELD = {
    "FloatField": t.FLOAT,
    "DecimalField": t.DECIMAL,
    "BooleanField": t.BOOL,
    "NullBooleanField": t.BOOL,
    "DateTimeField": t.DATETIME,
    "DateField": t.DATE,
    "TimeField": t.TIME,
}
# Kinds whose vectorized conversion equals what the ORM's converters return;
# other kinds computed by an expression go through the ORM's converters first
# (e.g. TruncMonth on SQLite returns local wall-clock text the ORM localizes).
_VECTOR_SAFE_KINDS = {t.INT, t.FLOAT, t.BOOL, t.DECIMAL, t.STRING}


def read_queryset(
    qs: models.QuerySet,
    fields: Sequence[str] | None = None,
    chunksize: int | None = None,
    *,
    decimals_as_float: bool = False,
) -> pd.DataFrame | Iterator[pd.DataFrame]:
    """Read a QuerySet into a DataFrame, or into an iterator of DataFrames.

    Filters, ``values()`` paths across relations (``produto__categoria__nome``),
    annotations and ordering of ``qs`` are kept; the columns are named as
    ``qs.values(*fields)`` names them. Types follow the model:

    - ``DecimalField`` → exact ``ArrowDtype(decimal128(max_digits, decimal_places))``
      (``float64`` only with ``decimals_as_float=True``);
    - ``DateTimeField`` → tz-aware ``datetime64[us, settings.TIME_ZONE]``
      (America/Sao_Paulo here; the instants are the UTC ones Django stored);
    - ``DateField`` → ``ArrowDtype(date32)``, a calendar date with no time or zone;
    - integers and foreign keys → ``int64``; ``Int64`` when the column can be
      NULL (a nullable field, or a LEFT JOIN through a nullable/reverse relation);
    - booleans → ``bool`` / ``boolean``; fields with ``choices`` → ``category``
      whose categories are the declared choices; text → ``str``.

    Annotations are typed from their ``output_field``: a decimal aggregate
    (``Sum``) gets precision 38 so a large total cannot overflow; decimal
    arithmetic without ``max_digits`` gets precision 38 and the scale SQL gives
    it (the larger scale for ``+``/``-``, the sum for ``*``); an ``Avg`` keeps
    the places the database returns. Only ``Count`` is taken as never NULL.

    How rows travel (all routes give identical frames): on PostgreSQL a whole
    read is one ``COPY (query) TO STDOUT`` on the Django connection, parsed by
    Arrow; on SQLite, outside any transaction, ADBC reads the file straight
    into Arrow (inside ``transaction.atomic`` the Django connection's cursor is
    used, so the caller's uncommitted writes are seen); otherwise the DB-API
    cursor. With ``chunksize``, rows are streamed: SQLite steps its cursor,
    PostgreSQL uses a server-side (named) cursor inside a transaction (the
    caller's, or one held for the iteration and committed when it ends or is
    closed), so memory is bounded by the chunk, whatever the table size. Every
    chunk has the same columns and dtypes; an empty QuerySet gives one empty,
    typed frame.

    Args:
        qs: the QuerySet (a ``values()`` QuerySet keeps its selected fields).
        fields: the ``values()`` field names or paths to read; default: the
            fields of ``qs.values()`` (concrete fields by attname, e.g. ``cliente_id``,
            plus annotations).
        chunksize: rows per DataFrame; ``None`` reads everything into one frame.
        decimals_as_float: return decimals as ``float64`` (inexact; opt-in).

    Returns:
        A DataFrame, or an iterator of DataFrames when ``chunksize`` is set.

    Raises:
        ExtractError: a field path is unknown, or a value cannot take its column type.

    Example:
        >>> df = read_queryset(
        ...     Pedido.objects.filter(quantidade__gt=1),
        ...     ["id", "produto__categoria__nome", "total", "criado_em"],
        ... )
        >>> df.dtypes["total"]
        decimal128(14, 2)[pyarrow]
    """
    if chunksize is not None and chunksize < 1:
        raise ExtractError(f"chunksize must be a positive number of rows, got {chunksize!r}")
    plan = _QueryPlan.build(qs, fields, decimals_as_float=decimals_as_float)
    if chunksize is None:
        return plan.read_all()
    return plan.iter_chunks(chunksize)


class _QueryPlan:
    """A compiled values() query: its SQL, its connection and its typed columns."""

    def __init__(self, using: str, sql: str | None, params: Sequence[Any], specs: list[t.ColumnSpec]) -> None:
        self.using = using
        self.sql = sql  # None when Django knows the result is empty
        self.params = params
        self.specs = specs
        # False when the SQL has more columns than specs (ordering columns a DISTINCT
        # adds) or locks rows (COPY cannot run SELECT ... FOR UPDATE).
        self.fast_ok = True

    @classmethod
    def build(cls, qs: models.QuerySet, fields: Sequence[str] | None, *, decimals_as_float: bool) -> _QueryPlan:
        try:
            # A values()/values_list() QuerySet read without fields keeps its own columns.
            keep = fields is None and qs._fields
            values_qs = qs if keep else qs.values(*(fields or ()))
        except (FieldError, FieldDoesNotExist) as exc:
            raise ExtractError(
                f"Cannot read {qs.model.__name__} fields {list(fields or [])}: {exc}",
                table=qs.model._meta.db_table,
            ) from exc
        using = values_qs.db
        connection = connections[using]
        query = values_qs.query
        compiler = query.get_compiler(using=using)
        try:
            sql, params = compiler.as_sql()
        except EmptyResultSet:
            sql, params = None, ()
        except (FieldError, FieldDoesNotExist) as exc:
            raise ExtractError(f"Cannot compile the query on {qs.model.__name__}: {exc}") from exc
        if not compiler.select:
            compiler.setup_query()
        if query.selected:
            names = list(query.selected)
        else:
            names = [*query.extra_select, *query.values_select, *query.annotation_select]
        expressions = [entry[0] for entry in compiler.select[: compiler.col_count]]
        if len(names) != len(expressions):
            raise ExtractError(
                f"Cannot map the selected columns {names} of {qs.model.__name__} to the SQL "
                f"result ({len(expressions)} columns)."
            )
        specs = [
            _column_spec(name, expr, query, connection, decimals_as_float)
            for name, expr in zip(names, expressions, strict=True)
        ]
        plan = cls(using, sql, params, specs)
        plan.fast_ok = not query.select_for_update and not compiler.has_extra_select
        return plan

    def read_all(self) -> pd.DataFrame:
        if self.sql is None:
            return t.frame_from_columns(self.specs, [])
        connection = connections[self.using]
        return _fetch.read_frame(connection, self.sql, self.params, self.specs, fast_ok=self.fast_ok)

    def iter_chunks(self, chunksize: int) -> Iterator[pd.DataFrame]:
        if self.sql is None:
            return iter([t.frame_from_columns(self.specs, [])])
        return self._stream(chunksize)

    def _stream(self, chunksize: int) -> Iterator[pd.DataFrame]:
        connection = connections[self.using]
        chunks = _fetch.iter_frames(connection, self.sql, self.params, self.specs, chunksize, fast_ok=self.fast_ok)
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            # A named (server-side) cursor without WITH HOLD lives in a transaction.
            # Closing the iterator early commits (nothing was written by us), so
            # work the caller did between chunks is not rolled back with it.
            with transaction.atomic(using=self.using):
                try:
                    yield from chunks
                except GeneratorExit:
                    chunks.close()
                    return
        else:
            yield from chunks


def _column_spec(name: str, expression: Any, query: Any, connection: Any, decimals_as_float: bool) -> t.ColumnSpec:
    tz = settings.TIME_ZONE or "UTC"
    naive_tz = "UTC" if settings.USE_TZ else tz
    try:
        output_field = expression.output_field
    except FieldError:
        output_field = None
    is_column = isinstance(expression, Col)
    field = output_field
    while field is not None and field.is_relation and getattr(field, "target_field", None):
        field = field.target_field  # a foreign key takes its target's type
    internal = field.get_internal_type() if field is not None else ""
    if internal in INTEGER_FIELD_TYPES:
        kind = t.INT
    elif internal in _STRING_FIELDS:
        kind = t.STRING
    else:
        kind = _KIND_BY_FIELD.get(internal, t.OBJECT)

    if is_column:
        join = query.alias_map.get(expression.alias)
        outer = getattr(join, "join_type", None) == LOUTER
        nullable = bool(output_field.null) or outer
    else:
        # Only a Count is known never to be NULL; other expressions may be.
        nullable = not isinstance(expression, models.Count)

    precision = scale = None
    if kind == t.DECIMAL:
        precision = field.max_digits
        scale = field.decimal_places
        if scale is None:
            scale = _combined_decimal_scale(expression)
        if not is_column and getattr(expression, "contains_aggregate", False):
            precision = t.MAX_DECIMAL_PRECISION  # a Sum can outgrow the field's digits
        if isinstance(expression, models.Avg):
            scale = None  # a mean has more places than its inputs: keep the database's

    categories = None
    if is_column and output_field.choices and kind in (t.STRING, t.INT):
        categories = [key for key, _label in output_field.flatchoices]

    fallback = None
    if kind not in _VECTOR_SAFE_KINDS and (kind == t.OBJECT or not is_column):
        fallback = _orm_converter(expression, connection)
    if fallback is not None and kind != t.OBJECT:
        spec = t.ColumnSpec(name, kind, nullable, precision, scale, tz, categories, decimals_as_float, naive_tz)
        return _ConvertedSpec.wrap(spec, fallback)
    return t.ColumnSpec(
        name,
        kind,
        nullable,
        precision,
        scale,
        tz,
        categories,
        decimals_as_float,
        naive_tz,
        fallback,
    )


def _combined_decimal_scale(expression: Any) -> int | None:
    """The scale of decimal arithmetic (``F("total") - F("custo")``) from its operands.

    Sums and differences keep the larger scale, products add the scales (as
    SQL numeric does); a quotient has no fixed scale (None: taken from the values).
    """
    if isinstance(expression, Col | models.Value):
        field = getattr(expression, "output_field", None)
        if getattr(field, "get_internal_type", lambda: "")() == "DecimalField":
            return field.decimal_places
        if isinstance(expression, models.Value):
            value = expression.value
            return max(0, -value.as_tuple().exponent) if hasattr(value, "as_tuple") else 0
        return 0
    field = getattr(expression, "_output_field_or_none", None)
    if field is not None and getattr(field, "decimal_places", None) is not None:
        return field.decimal_places
    connector = getattr(expression, "connector", None)
    sources = expression.get_source_expressions()
    if connector is None and len(sources) == 1:  # a wrapper (ExpressionWrapper, Coalesce...)
        return _combined_decimal_scale(sources[0])
    scales = [_combined_decimal_scale(source) for source in sources]
    if not scales or None in scales:
        return None
    if connector in ("+", "-"):
        return max(scales)
    if connector == "*":
        return sum(scales)
    return None


def _orm_converter(expression: Any, connection: Any) -> Any:
    converters = connection.ops.get_db_converters(expression) + expression.get_db_converters(connection)
    if not converters:
        return None

    def convert(value: Any) -> Any:
        for converter in converters:
            value = converter(value, expression, connection)
        return value

    return convert


class _ConvertedSpec(t.ColumnSpec):
    """A typed column whose values first go through the ORM's own converters."""

    orm_converter: Any = None

    @classmethod
    def wrap(cls, spec: t.ColumnSpec, converter: Any) -> _ConvertedSpec:
        wrapped = cls(**{f: getattr(spec, f) for f in spec.__dataclass_fields__})
        wrapped.orm_converter = converter
        return wrapped

    @property
    def needs_orm_values(self) -> bool:
        return True

    def convert(self, values: Sequence[Any]) -> pd.Series:
        return super().convert([self.orm_converter(v) for v in values])

    def convert_arrow(self, array: Any) -> pd.Series:
        return self.convert(array.to_pylist())
