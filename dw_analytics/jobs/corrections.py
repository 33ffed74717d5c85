"""Batch corrections: validate a file of corrected values, dry-run it, apply it, revert it.

A corrections file (CSV, Excel ``.xlsx`` or Parquet) has the key column(s) of a model and
the columns to correct. :func:`plan_corrections` reads it with the extract readers, types
every column as the model does (the dtypes :func:`read_queryset` gives), checks the model's
constraints a column at a time, reads the current rows of the file's keys, and compares:

* **rejected**: a value of the wrong type, too long, outside the choices, with too many
  digits, negative in a positive field, missing where required, a foreign key to nothing,
  a unique value another row already has, a key repeated in the file, or (when the key is
  the auto-increment primary key) an id that does not exist. Each with its line and reason.
* **inserted**: keys not in the table (natural keys only).
* **updated**: rows whose values differ, with a per-column before/after diff.
* **unchanged**: the rest.

:func:`apply_corrections` runs the ``apply_corrections`` pipeline: the same plan inside the
run's transaction, then one ``write_model(..., mode="upsert")`` of the inserted and updated
rows, and a :class:`~dw_analytics.ops.models.CorrectionRun` record whose audit folder
``DW_OUTPUT_DIR/corrections/<id>/`` keeps ``updated.parquet`` (keys, ``before__<col>`` and
``after__<col>``) and ``inserted.parquet`` (keys and values). :func:`revert_corrections`
restores the before-values and deletes the inserted rows, refusing when any of those rows
changed since (``force=True`` overrides).

Line numbers: CSV lines count the header as line 1 and assume one line per record (rows
with a wrong field count are reported with their exact line by the reader); Excel rows
are sheet rows (header = 1); Parquet rows are 1-based positions.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from django.db import models
from django.utils import timezone

from dw_analytics.core.exceptions import ConfigurationError
from dw_analytics.core.pipeline import BasePipeline
from dw_analytics.core.registry import register
from dw_analytics.extract._types import STRING_DTYPE
from dw_analytics.extract.csv import read_csv_chunks
from dw_analytics.extract.excel import read_excel
from dw_analytics.extract.queryset import read_queryset
from dw_analytics.jobs._common import (
    field_for,
    file_sha256,
    get_model,
    model_frame,
    parse_bool,
    parse_list,
)
from dw_analytics.jobs.exceptions import CorrectionError, CorrectionsRejected, RevertConflict
from dw_analytics.load.models import write_model
from dw_analytics.load.parquet import write_parquet
from dw_analytics.load.paths import resolve_output_path

__all__ = [
    "CorrectionReport",
    "apply_corrections",
    "plan_corrections",
    "read_corrections_file",
    "revert_corrections",
]

#: keys per ``IN (...)`` list, under every backend's parameter limit
IN_BATCH = 10_000
#: above this many keys the current rows are read by one scan of the table instead
SCAN_THRESHOLD = 200_000
#: integer keys spanning at most this many times their count are read by a range scan
RANGE_DENSITY = 50
#: key values per range read (memory bound of the range scan)
RANGE_WINDOW = 500_000
AUDIT_FOLDER = "corrections"
REJECTED_COLUMNS = ["line", "key", "column", "value", "reason"]
_INTEGER = re.compile(r"^[+-]?\d+$")
_TZ_SUFFIX = r"(?:Z|[+-]\d\d:?\d\d)$"
_TRUE = {"true", "1", "yes", "y", "t", "sim", "s", "verdadeiro"}
_FALSE = {"false", "0", "no", "n", "f", "nao", "não", "falso"}
_POSITIVE = {"PositiveIntegerField", "PositiveSmallIntegerField", "PositiveBigIntegerField"}


# -- reading the file ----------------------------------------------------------------------------


@dataclass
class CorrectionsFile:
    """The rows of a corrections file, their line numbers, and rows the reader set aside."""

    frame: pd.DataFrame
    lines: np.ndarray
    unreadable: pd.DataFrame  # file, line, column, value, reason


def read_corrections_file(
    path: str | Path,
    *,
    sep: str = ",",
    encoding: str = "utf-8",
    sheet: str | None = None,
) -> CorrectionsFile:
    """Read a ``.csv`` (every column as text), ``.xlsx`` or ``.parquet`` corrections file.

    Example:
        >>> read_corrections_file("precos.csv", sep=";").frame.columns.tolist()  # doctest: +SKIP
        ['id', 'preco']
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt", ".gz", ".zip"):
        with read_csv_chunks(path, sep=sep, encoding=encoding) as probe:
            columns = list(probe.columns)
        chunks = read_csv_chunks(path, sep=sep, encoding=encoding, dtypes=dict.fromkeys(columns, "string"))
        frames = list(chunks)
        frame = (
            pd.concat(frames, ignore_index=True)
            if frames
            else pd.DataFrame({c: pd.Series([], dtype="string") for c in columns})
        )
        quarantine = chunks.quarantine
        # Records are one line each: the good rows are the lines the reader did not set aside.
        lines = np.setdiff1d(np.arange(2, chunks.n_rows + 2, dtype=np.int64), quarantine["line"].to_numpy(np.int64))
        return CorrectionsFile(frame, lines, quarantine)
    if suffix in (".xlsx", ".xlsm"):
        frame = read_excel(path, sheet)
        return CorrectionsFile(frame, np.arange(2, len(frame) + 2), _empty_quarantine())
    if suffix == ".parquet":
        frame = pq.read_table(path).to_pandas(types_mapper=pd.ArrowDtype)
        return CorrectionsFile(frame, np.arange(1, len(frame) + 1), _empty_quarantine())
    raise CorrectionError(
        f"{path}: unsupported corrections file type {suffix!r}; use .csv, .xlsx or .parquet",
        file=str(path),
    )


def _empty_quarantine() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=object) for c in ("file", "line", "column", "value", "reason")})


# -- the report ---------------------------------------------------------------------------------------


@dataclass
class CorrectionReport:
    """What a corrections file would do (dry run) or did (applied).

    Attributes:
        inserted: the new rows (keys and values), one per row.
        updated: the diff, one row per changed cell: the key columns, ``column``,
            ``before`` and ``after`` (as text).
        rejected: one row per problem: ``line``, ``key`` (as text), ``column``, ``value``,
            ``reason``; a row may have several.
        n_unchanged: rows whose values already equal the file's.
    """

    model: str
    keys: list[str]
    columns: list[str]
    file: str
    sha256: str
    n_rows: int
    inserted: pd.DataFrame
    updated: pd.DataFrame
    rejected: pd.DataFrame
    n_unchanged: int
    # typed rows to write, and the stored values of the rows that change
    to_write: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    before: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    run_id: int | None = None
    correction_id: int | None = None

    @property
    def n_inserted(self) -> int:
        return len(self.inserted)

    @property
    def n_updated(self) -> int:
        return len(self.before)

    @property
    def n_rejected(self) -> int:
        return int(self.rejected["line"].nunique()) if len(self.rejected) else 0

    def summary(self) -> str:
        """One line of counts, e.g. ``3 rows: 1 inserted, 1 updated, 0 unchanged, 1 rejected``."""
        return (
            f"{self.n_rows} rows: {self.n_inserted} inserted, {self.n_updated} updated, "
            f"{self.n_unchanged} unchanged, {self.n_rejected} rejected"
        )


def plan_corrections(
    path: str | Path,
    model: str | type[models.Model],
    keys: Sequence[str],
    *,
    sep: str = ",",
    decimal: str = ".",
    encoding: str = "utf-8",
    sheet: str | None = None,
    using: str = "default",
) -> CorrectionReport:
    """Validate a corrections file against ``model`` and compare it with the stored rows.

    Nothing is written: this is the dry run (``apply_corrections --dry-run``).

    Args:
        path: a ``.csv``, ``.xlsx`` or ``.parquet`` file.
        model: the model label (``sales.Pedido``) or class.
        keys: the field(s) identifying a row: the primary key, a unique field or the
            fields of a unique constraint.
        sep, decimal, encoding: how the CSV is written (``decimal=","`` for ``12,30``).
        sheet: the Excel sheet (default the first).
        using: database alias.

    Returns:
        A :class:`CorrectionReport`.

    Raises:
        CorrectionError: a column that is not a field of the model, a missing key column,
            or a file type that is not supported.

    Example:
        >>> report = plan_corrections("precos.csv", "sales.Produto", ["id"])  # doctest: +SKIP
        >>> report.summary()  # doctest: +SKIP
        '3 rows: 0 inserted, 2 updated, 0 unchanged, 1 rejected'
        >>> report.updated  # doctest: +SKIP
           id column  before  after
        0   7  preco   10.00  12.50
    """
    model = get_model(model)
    source = read_corrections_file(path, sep=sep, encoding=encoding, sheet=sheet)
    planner = _Planner(model, list(keys), source, str(path), decimal=decimal, using=using)
    report = planner.plan()
    report.sha256 = file_sha256(path)
    return report


class _Planner:
    def __init__(
        self,
        model: type[models.Model],
        keys: list[str],
        source: CorrectionsFile,
        path: str,
        *,
        decimal: str,
        using: str,
    ) -> None:
        self.model = model
        self.label = model._meta.label
        self.source = source
        self.path = path
        self.decimal = decimal
        self.using = using
        self.fields = self._resolve_columns(source.frame.columns, keys)
        self.keys = [self.fields[c].attname for c in self._key_columns(keys)]
        self.columns = [f.attname for c, f in self.fields.items() if f.attname not in self.keys]
        self.rejections: list[pd.DataFrame] = []

    # -- columns ---------------------------------------------------------------------------
    def _resolve_columns(self, columns: pd.Index, keys: list[str]) -> dict[str, models.Field]:
        resolved, unknown = {}, []
        for column in columns:
            f = field_for(self.model, str(column))
            if f is None:
                unknown.append(str(column))
            else:
                resolved[str(column)] = f
        if unknown:
            valid = ", ".join(f.attname for f in self.model._meta.concrete_fields)
            raise CorrectionError(
                f"{self.path}: column(s) {', '.join(map(repr, unknown))} are not fields of "
                f"{self.label}; its fields are: {valid}",
                file=self.path,
                column=unknown[0],
            )
        attnames = [f.attname for f in resolved.values()]
        duplicated = sorted({a for a in attnames if attnames.count(a) > 1})
        if duplicated:
            raise CorrectionError(f"{self.path}: several columns map to {duplicated}; keep one", file=self.path)
        return resolved

    def _key_columns(self, keys: list[str]) -> list[str]:
        if not keys:
            raise CorrectionError("give the key field(s) identifying a row (--key)")
        by_attname = {f.attname: c for c, f in self.fields.items()}
        columns = []
        for key in keys:
            f = field_for(self.model, key)
            if f is None or f.attname not in by_attname:
                raise CorrectionError(
                    f"{self.path}: key column {key!r} is missing from the file (columns: {', '.join(self.fields)})",
                    file=self.path,
                    column=key,
                )
            columns.append(by_attname[f.attname])
        return columns

    # -- the plan ------------------------------------------------------------------------------
    def plan(self) -> CorrectionReport:
        raw = self.source.frame.rename(columns={c: f.attname for c, f in self.fields.items()})
        raw = raw.reset_index(drop=True)
        self.raw = raw
        self.lines = self.source.lines
        canonical = model_frame(self.model, [*self.keys, *self.columns], self.using)
        typed = {}
        for name in [*self.keys, *self.columns]:
            typed[name] = self._coerce(name, raw[name], canonical[name].dtype)
        frame = pd.DataFrame(typed)
        self._check_constraints(frame)
        self._check_duplicate_keys(frame)
        for f in self._single_unique_fields():
            self._check_unique(frame, f)
        rejected_rows = self._rejected_positions()
        valid = frame.loc[~np.isin(np.arange(len(frame)), rejected_rows)]
        current = _nullable(self._current_rows(valid[self.keys]), keep=self.keys)
        merged = valid.merge(current, on=self.keys, how="left", suffixes=("", "__stored"), indicator=True)
        new = merged["_merge"].to_numpy() == "left_only"
        merged_positions = valid.index.to_numpy()
        new_rows = self._accept_new_rows(valid.loc[new], merged_positions[new])
        old = merged.loc[~new].reset_index(drop=True)
        changed_cells = {c: _differs(old[c], old[f"{c}__stored"]) for c in self.columns}
        changed = np.zeros(len(old), dtype=bool)
        for mask in changed_cells.values():
            changed |= mask
        diff = self._diff(old, changed_cells)
        before = old.loc[changed, [*self.keys, *(f"{c}__stored" for c in self.columns)]]
        before = before.rename(columns={f"{c}__stored": c for c in self.columns}).reset_index(drop=True)
        updates = old.loc[changed, [*self.keys, *self.columns]]
        to_write = (
            pd.concat([new_rows, updates], ignore_index=True) if len(new_rows) else updates.reset_index(drop=True)
        )
        return CorrectionReport(
            model=self.label,
            keys=self.keys,
            columns=self.columns,
            file=self.path,
            sha256="",
            n_rows=len(frame) + len(self.source.unreadable),
            inserted=new_rows.reset_index(drop=True),
            updated=diff,
            rejected=self._rejected_frame(),
            n_unchanged=int((~changed).sum()),
            to_write=to_write,
            before=before,
        )

    # -- typing ---------------------------------------------------------------------------------
    def _reject(self, mask: np.ndarray, column: str, reason: str | pd.Series) -> None:
        positions = np.flatnonzero(mask)
        if not len(positions):
            return
        values = self.raw[column].iloc[positions] if column in self.raw else pd.Series([""] * len(positions))
        reasons = reason.iloc[positions].to_numpy() if isinstance(reason, pd.Series) else reason
        self.rejections.append(
            pd.DataFrame(
                {
                    "position": positions,
                    "column": column,
                    "value": values.astype(object).where(values.notna(), "").astype(str).to_numpy(),
                    "reason": reasons,
                }
            )
        )

    def _coerce(self, name: str, series: pd.Series, dtype: Any) -> pd.Series:
        f = field_for(self.model, name)
        present = series.notna().to_numpy(bool).copy()
        if isinstance(series.dtype, pd.StringDtype) or series.dtype == object:
            present &= (series.astype("string").str.strip() != "").fillna(False).to_numpy(bool)
        kind = _kind(dtype)
        if kind == "int":
            values, ok = _to_integers(series)
            self._reject(present & ~ok, name, "not a whole number")
            result = pd.Series(values, dtype="Int64")
        elif kind == "decimal":
            precision, scale = dtype.pyarrow_dtype.precision, dtype.pyarrow_dtype.scale
            values, reasons = _to_decimals(series, precision, scale, self.decimal)
            self._reject(present & reasons.notna().to_numpy(), name, reasons)
            result = values
        elif kind == "float":
            text = _as_text(series)
            if self.decimal != ".":
                text = text.str.replace(self.decimal, ".", regex=False)
            result = pd.to_numeric(text, errors="coerce").astype("float64")
            self._reject(present & result.isna().to_numpy(), name, "not a number")
        elif kind == "bool":
            result, ok = _to_booleans(series)
            self._reject(present & ~ok, name, "not a boolean (true/false, 1/0, sim/não)")
        elif kind == "datetime":
            result = _to_datetimes(series, dtype)
            self._reject(present & result.isna().to_numpy(), name, "not a date-time (ISO 8601)")
        elif kind == "date":
            result = _to_dates(series)
            self._reject(present & result.isna().to_numpy(), name, "not a date (YYYY-MM-DD)")
        elif kind in ("string", "category"):
            result = _as_text(series).str.strip().where(lambda s: s != "", None).astype(STRING_DTYPE)
            max_length = getattr(f, "max_length", None)
            if max_length:
                too_long = (result.str.len() > max_length).fillna(False).to_numpy(bool)
                self._reject(too_long, name, f"longer than {max_length} characters")
            if kind == "category":
                choices = list(dtype.categories)
                outside = (result.notna() & ~result.isin(choices)).to_numpy(bool)
                self._reject(outside, name, f"not one of the choices ({', '.join(map(str, choices))})")
                result = result.where(~outside, None).astype(dtype)
        else:
            raise CorrectionError(
                f"{self.label}.{name}: corrections do not support {f.get_internal_type()} fields",
                column=name,
            )
        return result.reset_index(drop=True)

    # -- constraints ------------------------------------------------------------------------------
    def _check_constraints(self, frame: pd.DataFrame) -> None:
        for name in frame.columns:
            f = field_for(self.model, name)
            column = frame[name]
            if not f.null:
                original_missing = self.raw[name].isna().to_numpy() | (
                    self.raw[name].astype("string").str.strip() == ""
                ).fillna(True).to_numpy(bool)
                reason = "the key is missing" if name in self.keys else "a value is required"
                self._reject(original_missing, name, reason)
            if f.get_internal_type() in _POSITIVE:
                self._reject((column < 0).fillna(False).to_numpy(bool), name, "must be zero or positive")
            if f.is_relation and f.many_to_one:
                self._check_references(column, f)

    def _check_references(self, column: pd.Series, f: models.ForeignKey) -> None:
        related = f.related_model
        wanted = column.dropna().unique()
        found: set[Any] = set()
        target = f.target_field.attname
        for start in range(0, len(wanted), IN_BATCH):
            batch = [int(v) if isinstance(v, np.integer) else v for v in wanted[start : start + IN_BATCH]]
            found.update(
                related._default_manager.using(self.using)
                .filter(**{f"{target}__in": batch})
                .values_list(target, flat=True)
            )
        missing = (column.notna() & ~column.isin(list(found))).to_numpy(bool)
        self._reject(missing, f.attname, f"no {related._meta.label} with this {target}")

    def _check_duplicate_keys(self, frame: pd.DataFrame) -> None:
        duplicated = frame.duplicated(self.keys, keep=False).to_numpy(bool)
        if duplicated.any():
            counts = frame.groupby(self.keys, dropna=False)[self.keys[0]].transform("size")
            reasons = "key appears " + counts.astype(str) + " times in the file"
            self._reject(duplicated, self.keys[0], reasons)

    def _single_unique_fields(self) -> list[models.Field]:
        return [
            field_for(self.model, c)
            for c in self.columns
            if field_for(self.model, c).unique and not field_for(self.model, c).primary_key
        ]

    def _check_unique(self, frame: pd.DataFrame, f: models.Field) -> None:
        column = frame[f.attname]
        in_file = (column.notna() & column.duplicated(keep=False)).to_numpy(bool)
        self._reject(in_file, f.attname, f"{f.attname} must be unique; the file repeats this value")
        values = column.dropna().unique().tolist()
        holders = [
            read_queryset(
                self.model.objects.using(self.using).filter(**{f"{f.attname}__in": values[i : i + IN_BATCH]}),
                fields=[*self.keys, f.attname],
            )
            for i in range(0, len(values), IN_BATCH)
        ]
        if not holders:
            return
        stored = pd.concat(holders, ignore_index=True)
        probe = (
            frame[[*self.keys, f.attname]]
            .reset_index()
            .merge(stored, on=f.attname, how="inner", suffixes=("", "__holder"))
        )
        other = np.zeros(len(probe), dtype=bool)
        for key in self.keys:
            other |= _differs(probe[key], probe[f"{key}__holder"])
        taken = np.zeros(len(frame), dtype=bool)
        taken[probe.loc[other, "index"].to_numpy(np.int64)] = True
        self._reject(taken, f.attname, f"{f.attname} is already used by another row")

    def _accept_new_rows(self, rows: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
        if not len(rows):
            return rows[[*self.keys, *self.columns]]
        pk = self.model._meta.pk
        if self.keys == [pk.attname] and pk.get_internal_type() in ("AutoField", "BigAutoField", "SmallAutoField"):
            mask = np.zeros(len(self.raw), dtype=bool)
            mask[positions] = True
            self._reject(mask, pk.attname, f"no {self.label} with this {pk.attname}")
            return rows.iloc[0:0][[*self.keys, *self.columns]]
        required = [
            f.attname
            for f in self.model._meta.concrete_fields
            if not f.null
            and not f.has_default()
            and not getattr(f, "auto_now", False)
            and not getattr(f, "auto_now_add", False)
            and not (f.primary_key and f.get_internal_type() in ("AutoField", "BigAutoField"))
            and f.attname not in (*self.keys, *self.columns)
        ]
        if required:
            mask = np.zeros(len(self.raw), dtype=bool)
            mask[positions] = True
            self._reject(mask, self.keys[0], f"new row: the file lacks required column(s) {', '.join(required)}")
            return rows.iloc[0:0][[*self.keys, *self.columns]]
        return rows[[*self.keys, *self.columns]]

    # -- current rows and the diff ------------------------------------------------------------------
    def _current_rows(self, keys: pd.DataFrame) -> pd.DataFrame:
        return current_rows(self.model, keys, [*self.keys, *self.columns], using=self.using)

    def _diff(self, old: pd.DataFrame, changed_cells: dict[str, np.ndarray]) -> pd.DataFrame:
        parts = [
            pd.DataFrame(
                {
                    **{k: old.loc[mask, k].to_numpy() for k in self.keys},
                    "column": c,
                    "before": _display(old.loc[mask, f"{c}__stored"]),
                    "after": _display(old.loc[mask, c]),
                }
            )
            for c, mask in changed_cells.items()
            if mask.any()
        ]
        if not parts:
            return pd.DataFrame(columns=[*self.keys, "column", "before", "after"])
        diff = pd.concat(parts, ignore_index=True)
        order = {c: i for i, c in enumerate(self.columns)}
        diff["_order"] = diff["column"].map(order)
        return diff.sort_values([*self.keys, "_order"], kind="stable").drop(columns="_order").reset_index(drop=True)

    # -- rejections -------------------------------------------------------------------------------
    def _rejected_positions(self) -> np.ndarray:
        if not self.rejections:
            return np.array([], dtype=np.int64)
        return np.unique(np.concatenate([r["position"].to_numpy(np.int64) for r in self.rejections]))

    def _rejected_frame(self) -> pd.DataFrame:
        parts = []
        if self.rejections:
            found = pd.concat(self.rejections, ignore_index=True)
            keys_as_text = pd.Series(key_text(self.raw[self.keys].astype("string").fillna("")))
            parts.append(
                pd.DataFrame(
                    {
                        "line": self.lines[found["position"].to_numpy(np.int64)],
                        "key": keys_as_text.iloc[found["position"]].to_numpy(),
                        "column": found["column"].to_numpy(),
                        "value": found["value"].to_numpy(),
                        "reason": found["reason"].to_numpy(),
                    }
                )
            )
        unreadable = self.source.unreadable
        if len(unreadable):
            parts.append(
                pd.DataFrame(
                    {
                        "line": unreadable["line"].to_numpy(np.int64),
                        "key": "",
                        "column": unreadable["column"].fillna("").to_numpy(),
                        "value": unreadable["value"].to_numpy(),
                        "reason": unreadable["reason"].to_numpy(),
                    }
                )
            )
        if not parts:
            return pd.DataFrame({c: pd.Series([], dtype="int64" if c == "line" else object) for c in REJECTED_COLUMNS})
        rejected = pd.concat(parts, ignore_index=True)
        rejected["line"] = rejected["line"].astype("int64")
        return rejected.sort_values(["line", "column"], kind="stable").reset_index(drop=True)


def current_rows(
    model: type[models.Model], keys: pd.DataFrame, fields: list[str], *, using: str = "default"
) -> pd.DataFrame:
    """The stored ``fields`` of the rows whose key columns match ``keys`` (one row per key).

    How the rows are found (then joined exactly on every key column): integer keys
    spanning at most :data:`RANGE_DENSITY` times their count are read with one chunked
    range scan (``BETWEEN``: an index range, streamed as Arrow); more keys than
    :data:`SCAN_THRESHOLD` by a chunked scan of the table; otherwise ``IN`` lists of
    :data:`IN_BATCH` keys on the first key column. (Compiling a 10,000-value ``IN`` costs
    Django ~0.2 s; a range scan reads over a million rows a second.)

    Example:
        >>> current_rows(Produto, pd.DataFrame({"id": [1, 2]}), ["id", "preco"])  # doctest: +SKIP
    """
    key_names = list(keys.columns)
    first = key_names[0]
    manager = model._default_manager.using(using).order_by()
    unique_first = keys[first].dropna().unique()
    if not len(unique_first):
        return model_frame(model, fields, using)
    if pd.api.types.is_integer_dtype(keys[first].dtype):
        low, high = int(unique_first.min()), int(unique_first.max())
        if high - low + 1 <= RANGE_DENSITY * len(unique_first):
            # whole reads of bounded windows take the fast columnar path (ADBC on SQLite)
            windows = range(low, high + 1, RANGE_WINDOW)
            chunks = (
                read_queryset(
                    manager.filter(**{f"{first}__range": (start, min(start + RANGE_WINDOW - 1, high))}),
                    fields=fields,
                )
                for start in windows
            )
            return _join_chunks(chunks, keys, key_names, model, fields, using)
    if len(unique_first) > SCAN_THRESHOLD:
        chunks = read_queryset(manager, fields=fields, chunksize=500_000)
    else:
        chunks = (
            read_queryset(
                manager.filter(**{f"{first}__in": _plain(unique_first[i : i + IN_BATCH])}),
                fields=fields,
            )
            for i in range(0, len(unique_first), IN_BATCH)
        )
    return _join_chunks(chunks, keys, key_names, model, fields, using)


def _join_chunks(chunks, keys, key_names, model, fields, using) -> pd.DataFrame:
    wanted = keys.drop_duplicates()
    if len(key_names) == 1:
        found = [chunk[chunk[key_names[0]].isin(wanted[key_names[0]])] for chunk in chunks]
    else:
        found = [chunk.merge(wanted, on=key_names, how="inner") for chunk in chunks]
    if not found:
        return model_frame(model, fields, using)
    return pd.concat(found, ignore_index=True)


def _nullable(frame: pd.DataFrame, keep: Sequence[str] = ()) -> pd.DataFrame:
    """Integers and booleans as their nullable dtypes, so a left join keeps their type."""
    changes = {
        c: "Int64" if pd.api.types.is_integer_dtype(frame[c].dtype) else "boolean"
        for c in frame.columns
        if c not in keep and frame[c].dtype.kind in "iub" and not isinstance(frame[c].dtype, pd.ArrowDtype)
    }
    return frame.astype(changes) if changes else frame


def _plain(values: np.ndarray) -> list[Any]:
    return [v.item() if isinstance(v, np.generic) else v for v in values]


# -- vectorized conversions ------------------------------------------------------------------


def _kind(dtype: Any) -> str:
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if isinstance(dtype, pd.ArrowDtype):
        arrow = dtype.pyarrow_dtype
        if pa.types.is_decimal(arrow):
            return "decimal"
        if pa.types.is_date(arrow):
            return "date"
        if pa.types.is_string(arrow) or pa.types.is_large_string(arrow):
            return "string"
        return "other"
    if isinstance(dtype, pd.DatetimeTZDtype):
        return "datetime"
    if isinstance(dtype, pd.StringDtype):
        return "string"
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    return "other"


def _as_text(series: pd.Series) -> pd.Series:
    """Values as text; numbers through Arrow (shortest round-trip form, exact for decimals)."""
    if isinstance(series.dtype, pd.StringDtype):
        return series.astype("string")
    try:
        array = pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return (
            series.astype(object).where(series.notna(), None).astype(str).where(series.notna(), None).astype("string")
        )
    if pa.types.is_timestamp(array.type) or pa.types.is_date(array.type):
        return pd.Series(array.cast(pa.string()), dtype="string")
    return pd.Series(pc.cast(array, pa.string()), dtype="string", index=series.index)


def _to_integers(series: pd.Series) -> tuple[pd.array, np.ndarray]:
    if pd.api.types.is_integer_dtype(series.dtype):
        return pd.array(series, dtype="Int64"), np.ones(len(series), dtype=bool)
    text = _as_text(series).str.strip()
    # whole floats from Excel (3.0) are whole numbers
    text = text.str.replace(r"\.0+$", "", regex=True)
    ok = text.str.fullmatch(_INTEGER.pattern).fillna(False).to_numpy(bool)
    values = pd.array([None] * len(series), dtype="Int64")
    if ok.any():
        parsed = pc.cast(pa.array(text[ok].to_numpy(dtype=object)), pa.int64())
        values[ok] = pd.array(parsed.to_numpy(zero_copy_only=False), dtype="Int64")
    return values, ok


def _to_decimals(series: pd.Series, precision: int, scale: int, decimal_mark: str) -> tuple[pd.Series, pd.Series]:
    """Exact decimals from text (Arrow compute, no float), and a rejection reason per row."""
    text = _as_text(series).str.strip()
    if decimal_mark != ".":
        text = text.str.replace(".", "", regex=False).str.replace(decimal_mark, ".", regex=False)
    array = pa.array(text.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    parts = pc.extract_regex(array, r"^(?P<sign>[+-]?)(?P<integer>\d*)(?:\.(?P<fraction>\d*))?$")
    integer = pc.utf8_ltrim(parts.field("integer"), characters="0")
    fraction = pc.utf8_rtrim(parts.field("fraction"), characters="0")
    matched = pc.is_valid(parts)
    empty = pc.and_(
        pc.equal(pc.utf8_length(parts.field("integer")), 0),
        pc.equal(pc.utf8_length(parts.field("fraction")), 0),
    )
    malformed = pc.and_(pc.is_valid(array), pc.or_kleene(pc.invert(matched), empty))
    too_precise = pc.greater(pc.utf8_length(fraction), scale)
    too_large = pc.greater(pc.utf8_length(integer), precision - scale)
    reasons = pd.Series([None] * len(text), dtype=object)
    too_large_mask = too_large.to_numpy(zero_copy_only=False)
    too_precise_mask = too_precise.to_numpy(zero_copy_only=False)
    reasons[pd.array(too_large_mask, dtype="boolean").fillna(False).to_numpy(bool)] = (
        f"more than {precision - scale} digits before the decimal point"
    )
    reasons[pd.array(too_precise_mask, dtype="boolean").fillna(False).to_numpy(bool)] = (
        f"more than {scale} decimal places"
    )
    reasons[pd.array(malformed.to_numpy(zero_copy_only=False), dtype="boolean").fillna(False).to_numpy(bool)] = (
        "not a decimal number"
    )
    ok = (pd.Series(array.is_valid().to_numpy(zero_copy_only=False)) & reasons.isna()).to_numpy(bool)
    decimal_type = pa.decimal128(precision, scale)
    clean = pc.binary_join_element_wise(
        parts.field("sign"),
        pc.if_else(pc.equal(pc.utf8_length(parts.field("integer")), 0), "0", parts.field("integer")),
        ".",
        pc.if_else(pc.is_valid(parts.field("fraction")), parts.field("fraction"), ""),
        "",
    )
    clean = pc.if_else(pa.array(ok), clean, pa.nulls(len(clean), pa.string()))
    values = pd.Series(pc.cast(clean, decimal_type), dtype=pd.ArrowDtype(decimal_type))
    return values, reasons


def _to_booleans(series: pd.Series) -> tuple[pd.Series, np.ndarray]:
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.astype("boolean"), np.ones(len(series), dtype=bool)
    text = _as_text(series).str.strip().str.lower()
    values = pd.Series(pd.array([None] * len(text), dtype="boolean"))
    is_true = text.isin(_TRUE).to_numpy(bool)
    is_false = text.isin(_FALSE).to_numpy(bool)
    values[is_true] = True
    values[is_false] = False
    return values, is_true | is_false


def _to_datetimes(series: pd.Series, dtype: pd.DatetimeTZDtype) -> pd.Series:
    zone = str(dtype.tz)
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return series.dt.tz_convert(zone).astype(dtype)
    if pd.api.types.is_datetime64_dtype(series.dtype):
        return series.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT").astype(dtype)
    text = _as_text(series).str.strip()
    aware = text.str.contains(_TZ_SUFFIX, regex=True).fillna(False).to_numpy(bool)
    result = pd.Series(pd.NaT, index=text.index, dtype=dtype)
    if aware.any():
        parsed = pd.to_datetime(text[aware], format="ISO8601", errors="coerce", utc=True)
        result[aware] = parsed.dt.tz_convert(zone).astype(dtype)
    naive = ~aware & text.notna().to_numpy(bool)
    if naive.any():
        parsed = pd.to_datetime(text[naive], format="ISO8601", errors="coerce")
        result[naive] = parsed.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT").astype(dtype)
    return result


def _to_dates(series: pd.Series) -> pd.Series:
    dtype = pd.ArrowDtype(pa.date32())
    if isinstance(series.dtype, pd.ArrowDtype) and pa.types.is_date(series.dtype.pyarrow_dtype):
        return series.astype(dtype)
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        stamps = series
    else:
        stamps = pd.to_datetime(_as_text(series).str.strip(), format="ISO8601", errors="coerce")
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):
        stamps = stamps.dt.tz_localize(None)
    days = stamps.to_numpy(dtype="datetime64[D]")
    return pd.Series(pa.array(days, type=pa.date32(), from_pandas=True), dtype=dtype)


def _comparable(series: pd.Series) -> pd.Series:
    if isinstance(series.dtype, pd.CategoricalDtype):
        return series.astype(object).astype(STRING_DTYPE)
    return series


def _differs(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Element-wise "not the same value", with two missing values counting as equal."""
    a = _comparable(a).reset_index(drop=True)
    b = _comparable(b).reset_index(drop=True)
    a_missing = a.isna().to_numpy(bool)
    b_missing = b.isna().to_numpy(bool)
    both = ~a_missing & ~b_missing
    result = a_missing != b_missing
    if both.any():
        not_equal = a[both].to_numpy() != b[both].astype(a.dtype).to_numpy()
        result[both] = np.asarray(not_equal, dtype=bool)
    return result


def _display(series: pd.Series) -> np.ndarray:
    text = _comparable(series).astype("string")
    return text.astype(object).where(text.notna(), None).to_numpy()


# -- applying and reverting -------------------------------------------------------------------


@register
class ApplyCorrectionsPipeline(BasePipeline):
    """Apply a corrections file in one transaction and record how to revert it.

    Example:
        >>> log = ApplyCorrectionsPipeline(file="precos.csv", model="sales.Produto", keys=["id"]).run()  # doctest: +SKIP
    """

    name = "apply_corrections"
    description = "Batch corrections from a CSV / Excel / Parquet file (upsert, audited, revertible)"
    parameters = {
        "file": str,
        "model": str,
        "keys": parse_list,
        "sep": str,
        "decimal": str,
        "encoding": str,
        "sheet": str,
        "strict": parse_bool,
    }

    def execute(self) -> CorrectionReport:
        from dw_analytics.ops.models import CorrectionRun

        p = self.params
        report = self.step(
            "validate",
            plan_corrections,
            p["file"],
            p["model"],
            p["keys"],
            sep=p.get("sep", ","),
            decimal=p.get("decimal", "."),
            encoding=p.get("encoding", "utf-8"),
            sheet=p.get("sheet"),
            using=self.using,
        )
        self.add_processed(report.n_rows)
        if len(report.rejected):
            self.quarantine(report.rejected.assign(file=report.file).drop(columns="key"))
        if p.get("strict") and len(report.rejected):
            raise CorrectionsRejected(
                f"{report.file}: {report.n_rejected} row(s) rejected; nothing was written "
                f"(first: line {report.rejected['line'].iloc[0]}, {report.rejected['reason'].iloc[0]})",
                file=report.file,
            )
        model = get_model(report.model)
        if len(report.to_write):
            self.step(
                "load",
                write_model,
                complete_rows(model, report.to_write, report.keys, using=self.using),
                model,
                mode="upsert",
                unique_fields=report.keys,
                using=self.using,
            )
        record = CorrectionRun.objects.using(self.using).create(
            model_label=report.model,
            key_fields=report.keys,
            columns=report.columns,
            file_name=str(report.file),
            file_sha256=report.sha256,
            applied_by=self._triggered_by,
            applied_at=timezone.now(),
            n_inserted=report.n_inserted,
            n_updated=report.n_updated,
            n_unchanged=report.n_unchanged,
            n_rejected=report.n_rejected,
            audit_path=f"{AUDIT_FOLDER}/{{id}}",
            run_id=self.log.run_id,
        )
        record.audit_path = f"{AUDIT_FOLDER}/{record.pk}"
        record.save(update_fields=["audit_path"])
        self.step("audit", _write_audit, report, record.audit_path)
        report.run_id = self.log.run_id
        report.correction_id = record.pk
        return report

    def run(self, *, raise_errors: bool = True, triggered_by: str = "") -> Any:
        self._triggered_by = triggered_by
        return super().run(raise_errors=raise_errors, triggered_by=triggered_by)


def _write_audit(report: CorrectionReport, folder: str) -> None:
    after = report.to_write.iloc[report.n_inserted :].reset_index(drop=True)
    updated = report.before[report.keys].copy()
    for column in report.columns:
        updated[f"before__{column}"] = report.before[column].to_numpy()
        updated[f"after__{column}"] = after[column].to_numpy()
    # UTC in the audit files: wall-clock time would be ambiguous in a daylight-saving hour
    if len(updated):
        write_parquet(_audit_types(updated), f"{folder}/updated.parquet", timezone="UTC")
    if report.n_inserted:
        write_parquet(_audit_types(report.inserted), f"{folder}/inserted.parquet", timezone="UTC")


def _audit_types(frame: pd.DataFrame) -> pd.DataFrame:
    """Choices (categorical columns) as plain text: the audit files outlive the choices."""
    categorical = [c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)]
    return frame.astype({c: STRING_DTYPE for c in categorical}) if categorical else frame


def apply_corrections(
    path: str | Path,
    model: str | type[models.Model],
    keys: Sequence[str],
    *,
    dry_run: bool = False,
    strict: bool = False,
    sep: str = ",",
    decimal: str = ".",
    encoding: str = "utf-8",
    sheet: str | None = None,
    triggered_by: str = "",
    using: str = "default",
) -> CorrectionReport:
    """Validate and apply (or, with ``dry_run``, only report) a corrections file.

    Applying runs the ``apply_corrections`` pipeline: one transaction, recorded in
    ``PipelineRun`` (rejected rows in its quarantine) and in ``CorrectionRun`` with the
    audit folder needed by :func:`revert_corrections`.

    Args:
        path: the ``.csv`` / ``.xlsx`` / ``.parquet`` file.
        model: the model label or class.
        keys: the field(s) identifying a row.
        dry_run: report only; nothing is written.
        strict: write nothing when any row is rejected (:class:`CorrectionsRejected`).
        sep, decimal, encoding, sheet: how to read the file.
        triggered_by: the user applying it (recorded).
        using: database alias.

    Returns:
        The :class:`CorrectionReport` (``correction_id`` set when applied).

    Example:
        >>> report = apply_corrections("precos.csv", "sales.Produto", ["id"], triggered_by="ana")  # doctest: +SKIP
        >>> report.correction_id  # doctest: +SKIP
        12
    """
    if dry_run:
        return plan_corrections(
            path, model, keys, sep=sep, decimal=decimal, encoding=encoding, sheet=sheet, using=using
        )
    params: dict[str, Any] = {
        "file": str(path),
        "model": get_model(model)._meta.label,
        "keys": list(keys),
        "sep": sep,
        "decimal": decimal,
        "encoding": encoding,
        "strict": strict,
    }
    if sheet:
        params["sheet"] = sheet
    log = ApplyCorrectionsPipeline(using=using, **params).run(triggered_by=triggered_by)
    return log.result


@register
class RevertCorrectionsPipeline(BasePipeline):
    """Undo an applied correction: restore before-values, delete inserted rows."""

    name = "revert_corrections"
    description = "Revert an applied batch correction (refuses when its rows changed since)"
    parameters = {"correction_id": int, "force": parse_bool}

    def execute(self) -> dict[str, int]:
        from dw_analytics.ops.models import CorrectionRun

        record = CorrectionRun.objects.using(self.using).filter(pk=self.params["correction_id"]).first()
        if record is None:
            raise ConfigurationError(f"no correction run {self.params['correction_id']}")
        if record.status != CorrectionRun.Status.APPLIED:
            raise RevertConflict(f"correction {record.pk} is already {record.status}", correction_id=record.pk)
        model = get_model(record.model_label)
        keys, columns = list(record.key_fields), list(record.columns)
        updated, inserted = _read_audit(record, model, keys, columns, self.using)
        conflicts = self.step("check", _revert_conflicts, model, keys, columns, updated, inserted, self.using)
        if conflicts and not self.params.get("force"):
            raise RevertConflict(
                f"correction {record.pk}: {len(conflicts)} row(s) changed since it was applied "
                f"(first keys: {conflicts[:5]}); reverting would overwrite those changes. "
                "Use --force to revert anyway.",
                correction_id=record.pk,
            )
        restored = deleted = 0
        if len(updated):
            before = updated[keys].copy()
            for column in columns:
                before[column] = updated[f"before__{column}"].to_numpy()
            before = complete_rows(model, before, keys, using=self.using)
            result = self.step(
                "restore", write_model, before, model, mode="upsert", unique_fields=keys, using=self.using
            )
            restored = result.n_updated
        if len(inserted):
            deleted = self.step("delete", _delete_keys, model, inserted[keys], self.using)
            self.log.n_deleted += deleted
        record.status = CorrectionRun.Status.REVERTED
        record.reverted_at = timezone.now()
        record.reverted_by = self._triggered_by
        record.save(update_fields=["status", "reverted_at", "reverted_by"])
        self.add_processed(len(updated) + len(inserted))
        return {"restored": restored, "deleted": deleted, "conflicts": len(conflicts)}

    def run(self, *, raise_errors: bool = True, triggered_by: str = "") -> Any:
        self._triggered_by = triggered_by
        return super().run(raise_errors=raise_errors, triggered_by=triggered_by)


def _read_audit(
    record: Any, model: type[models.Model], keys: list[str], columns: list[str], using: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    folder = resolve_output_path(record.audit_path)
    canonical = model_frame(model, [*keys, *columns], using)

    def read(name: str, wanted: dict[str, str]) -> pd.DataFrame:
        path = folder / name
        if not path.exists():
            return pd.DataFrame({out: canonical[src].iloc[0:0] for out, src in wanted.items()})
        table = pq.read_table(path).to_pandas(types_mapper=pd.ArrowDtype)
        return pd.DataFrame({out: _from_audit(table[out], canonical[src].dtype) for out, src in wanted.items()})

    updated_columns = {k: k for k in keys}
    for column in columns:
        updated_columns[f"before__{column}"] = column
        updated_columns[f"after__{column}"] = column
    inserted_columns = {c: c for c in [*keys, *columns]}
    return read("updated.parquet", updated_columns), read("inserted.parquet", inserted_columns)


def _from_audit(series: pd.Series, dtype: Any) -> pd.Series:
    kind = _kind(dtype)
    if kind == "datetime":
        naive = series.astype("datetime64[us]")
        return naive.dt.tz_localize("UTC").dt.tz_convert(str(dtype.tz)).astype(dtype)
    if kind == "category":
        return series.astype(object).astype(dtype)
    if kind in ("string",):
        return series.astype(object).where(series.notna(), None).astype(dtype)
    if kind == "int":
        return series.astype("Int64").astype(dtype if series.notna().all() else "Int64")
    if kind == "bool":
        return series.astype("boolean")
    return series.astype(dtype)


def _revert_conflicts(
    model: type[models.Model],
    keys: list[str],
    columns: list[str],
    updated: pd.DataFrame,
    inserted: pd.DataFrame,
    using: str,
) -> list[str]:
    conflicts: list[str] = []
    for frame, prefix, missing_conflicts in ((updated, "after__", True), (inserted, "", False)):
        if not len(frame):
            continue
        stored = current_rows(model, frame[keys], [*keys, *columns], using=using)
        merged = frame.merge(stored, on=keys, how="left", suffixes=("", "__now"), indicator=True)
        gone = merged["_merge"].to_numpy() == "left_only"
        changed = gone.copy() if missing_conflicts else np.zeros(len(merged), dtype=bool)
        for column in columns:
            now = merged[f"{column}__now" if f"{column}__now" in merged else column]
            expected = merged[f"{prefix}{column}"]
            changed |= ~gone & _differs(expected, now)
        conflicts.extend(key_text(merged.loc[changed, keys]))
    return conflicts


def key_text(keys: pd.DataFrame) -> list[str]:
    """Keys as text, ``a|b`` for composite keys (vectorized string concatenation).

    Example:
        >>> key_text(pd.DataFrame({"a": [1], "b": ["x"]}))
        ['1|x']
    """
    text = keys.astype(object).astype(str)
    joined = text.iloc[:, 0]
    for column in text.columns[1:]:
        joined = joined + "|" + text[column]
    return joined.tolist()


def complete_rows(
    model: type[models.Model], frame: pd.DataFrame, keys: list[str], *, using: str = "default"
) -> pd.DataFrame:
    """Add the stored values of required fields the frame lacks, so an upsert can write it.

    ``write_model`` needs every non-null field without a default, even for rows it only
    updates; values already stored are written back unchanged (and not counted as changes).
    """
    missing = [
        f.attname
        for f in model._meta.concrete_fields
        if not f.null
        and not f.has_default()
        and not getattr(f, "auto_now", False)
        and not getattr(f, "auto_now_add", False)
        and not (f.primary_key and f.get_internal_type() in ("AutoField", "BigAutoField", "SmallAutoField"))
        and f.attname not in frame.columns
    ]
    if not missing or not len(frame):
        return frame
    stored = current_rows(model, frame[keys], [*keys, *missing], using=using)
    return frame.merge(stored, on=keys, how="inner")


def _delete_keys(model: type[models.Model], keys: pd.DataFrame, using: str) -> int:
    manager = model._default_manager.using(using)
    names = list(keys.columns)
    deleted = 0
    if len(names) == 1:
        values = _plain(keys[names[0]].to_numpy())
        for start in range(0, len(values), IN_BATCH):
            deleted += manager.filter(**{f"{names[0]}__in": values[start : start + IN_BATCH]}).delete()[0]
        return deleted
    rows = keys.astype(object).to_dict("records")
    for start in range(0, len(rows), 500):
        condition = models.Q()
        for row in rows[start : start + 500]:
            condition |= models.Q(**{k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()})
        deleted += manager.filter(condition).delete()[0]
    return deleted


def revert_corrections(
    correction_id: int, *, force: bool = False, triggered_by: str = "", using: str = "default"
) -> dict[str, int]:
    """Revert an applied correction (the ``revert_corrections`` pipeline, one transaction).

    Restores the previous values of the rows it updated and deletes the rows it inserted.
    Refuses (:class:`RevertConflict`) when any of those rows changed since it was applied
    (a later correction, an edit in the admin) unless ``force`` is set.

    Example:
        >>> revert_corrections(12, triggered_by="ana")  # doctest: +SKIP
        {'restored': 2, 'deleted': 1, 'conflicts': 0}
    """
    params = {"correction_id": correction_id, "force": force}
    return RevertCorrectionsPipeline(using=using, **params).run(triggered_by=triggered_by).result
