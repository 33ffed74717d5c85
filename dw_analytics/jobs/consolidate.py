"""Consolidation: many CSV files of the same kind (branch exports) → one model, each file once.

Files come from a glob pattern. Each is read with :func:`read_csv_chunks` through a declared
mapping (TOML), normalised to the target's field names, tagged with its source file and
loaded with :func:`write_model` as one run of the ``consolidate`` pipeline (one transaction
per file: a bad file does not undo the others). A file whose SHA-256 was already loaded
into that model is skipped, whatever its name. Rows the reader cannot use are quarantined
with file, line, column and reason, kept with the run and counted on the file's record
(:class:`~dw_analytics.ops.models.ConsolidatedFile`).

The mapping file (every key optional)::

    sep = "auto"            # "," ";" "\\t" "|" or "auto" (sniffed from the header line)
    encoding = "auto"       # any codec, or "auto": UTF-8 (with or without BOM) when the
                            # bytes are valid UTF-8, else fallback_encoding
    fallback_encoding = "cp1252"
    decimal = "."           # decimal mark of numbers
    thousands = ""          # thousands separator to ignore
    mode = "append"         # or "upsert" with keys = [...]
    keys = ["filial", "numero_nota", "item"]
    source_field = "arquivo_origem"   # target field that receives the file name

    [columns]               # source header -> target field ("" drops the column)
    "Data da venda" = "data_venda"

    [dates]                 # target field -> strptime format, or "iso"
    data_venda = "%d/%m/%Y"

    [decimals]              # target field -> scale, or [precision, scale]
    valor_total = 2

    [constants]             # target field -> value for every row
    [filename]              # fields taken from the file name by a regex's named groups
    pattern = "vendas_(?P<filial>[A-Z]{2}[0-9]{2})_"

    [[files]]               # overrides for files whose name matches a glob
    match = "*_rj*.csv"
    sep = ";"
    decimal = ","
    encoding = "cp1252"
    [files.columns]
    "DATA" = "data_venda"

Without a mapping, headers must be the target's field names; decimal fields are read
exactly with their model scale, date fields as ISO dates, text fields as text.
"""

from __future__ import annotations

import codecs
import fnmatch
import glob
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from django.db import IntegrityError, models

from dw_analytics.core.exceptions import DWError
from dw_analytics.core.pipeline import BasePipeline
from dw_analytics.core.registry import register
from dw_analytics.extract.csv import CsvChunks, read_csv_chunks
from dw_analytics.jobs._common import field_for, file_sha256, get_model, parse_dict
from dw_analytics.jobs.exceptions import ConsolidationError
from dw_analytics.load.base import LoadResult
from dw_analytics.load.models import write_model

__all__ = ["ConsolidationReport", "FileOutcome", "consolidate", "file_settings", "load_mapping"]

SEPARATORS = (",", ";", "\t", "|")
_SCALARS = ("sep", "encoding", "fallback_encoding", "decimal", "thousands", "mode", "keys", "source_field")
_TABLES = ("columns", "dates", "decimals", "constants", "filename")
_DEFAULTS: dict[str, Any] = {
    "sep": "auto",
    "encoding": "auto",
    "fallback_encoding": "cp1252",
    "decimal": ".",
    "thousands": "",
    "mode": "append",
    "keys": [],
    "source_field": "arquivo_origem",
}
_TEXT_FIELDS = {"CharField", "TextField", "EmailField", "SlugField", "URLField"}


def load_mapping(mapping: str | Path | Mapping[str, Any] | None) -> dict[str, Any]:
    """Read a TOML mapping file (or take a dict) and check its keys.

    Raises:
        ConsolidationError: unreadable TOML or unknown keys (the message lists the valid ones).

    Example:
        >>> load_mapping({"sep": ";", "columns": {"Data": "data_venda"}})["sep"]
        ';'
    """
    if mapping is None:
        return {}
    if isinstance(mapping, Mapping):
        data = dict(mapping)
        where = "mapping"
    else:
        where = str(mapping)
        try:
            data = tomllib.loads(Path(mapping).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConsolidationError(f"cannot read the mapping {where}: {exc}", file=where) from exc
    valid = {*_SCALARS, *_TABLES, "files"}
    for section in [data, *data.get("files", [])]:
        unknown = sorted(set(section) - valid - {"match"})
        if unknown:
            raise ConsolidationError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(valid)}", file=where)
    for entry in data.get("files", []):
        if "match" not in entry:
            raise ConsolidationError(f'{where}: every [[files]] entry needs match = "glob"', file=where)
    return data


def file_settings(mapping: Mapping[str, Any], file_name: str) -> dict[str, Any]:
    """The settings for one file: defaults, then the global keys, then the first matching ``[[files]]``.

    Example:
        >>> file_settings({"sep": ",", "files": [{"match": "*rj*", "sep": ";"}]}, "vendas_rj.csv")["sep"]
        ';'
    """
    settings = {**_DEFAULTS, **{k: mapping[k] for k in _SCALARS if k in mapping}}
    for table in _TABLES:
        settings[table] = dict(mapping.get(table, {}))
    for entry in mapping.get("files", []):
        if fnmatch.fnmatch(file_name, entry["match"]):
            settings.update({k: entry[k] for k in _SCALARS if k in entry})
            for table in _TABLES:
                settings[table].update(entry.get(table, {}))
            break
    return settings


def resolve_encoding(path: Path, encoding: str, fallback: str = "cp1252") -> str:
    """``encoding``, or for ``"auto"``: UTF-8 when the first MiB is valid UTF-8, else ``fallback``.

    Statistical detection guesses wrong on short files (a few accented words read as a
    Baltic code page), while branch systems in Brazil write UTF-8 or Windows-1252; a
    UTF-8 test is exact, so the rule is that test plus a declared fallback.

    Example:
        >>> resolve_encoding(Path("vendas.csv"), "auto")  # doctest: +SKIP
        'cp1252'
    """
    if encoding != "auto":
        return encoding
    with open(path, "rb") as handle:
        head = handle.read(1 << 20)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return fallback
    return "utf-8"


def sniff_separator(path: Path) -> str:
    """The most frequent of ``, ; tab |`` on the header line.

    Example:
        >>> sniff_separator(Path("vendas.csv"))  # doctest: +SKIP
        ';'
    """
    with open(path, "rb") as handle:
        head = handle.read(64 << 10)
    if head.startswith((b"\x1f\x8b", b"PK")):
        return ","  # compressed: the reader decompresses; say "sep" in the mapping
    first_line = head.splitlines()[0].decode("latin-1") if head else ""
    counts = {sep: first_line.count(sep) for sep in SEPARATORS}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


# -- the pipeline --------------------------------------------------------------------------------


@register
class ConsolidateFilePipeline(BasePipeline):
    """Load one file into the target model through its resolved settings (one transaction)."""

    name = "consolidate"
    description = "Load a branch file into a model through a column mapping, once per checksum"
    chunked = True
    parameters = {"file": str, "model": str, "settings": parse_dict, "sha256": str, "chunksize": int}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.path = Path(self.params["file"])
        self.model = get_model(self.params["model"])
        self.settings = dict(self.params["settings"])
        self.settings["encoding"] = resolve_encoding(
            self.path, self.settings["encoding"], self.settings["fallback_encoding"]
        )
        self.sha256 = self.params["sha256"]
        self.chunks: CsvChunks | None = None
        self.plan = _ReadPlan.build(self.model, self.path, self.settings)
        self._first = True

    def extract(self) -> Iterator[pd.DataFrame]:
        from dw_analytics.ops.models import ConsolidatedFile

        if (
            ConsolidatedFile.objects.using(self.using)
            .filter(target=self.model._meta.label, sha256=self.sha256)
            .exists()
        ):
            return iter(())  # loaded by a concurrent run meanwhile
        self.chunks = read_csv_chunks(
            self.path,
            sep=self.plan.sep,
            decimal=self.settings["decimal"],
            thousands=self.settings["thousands"] or None,
            encoding=self.settings["encoding"],
            chunksize=self.params.get("chunksize", 100_000),
            usecols=self.plan.usecols,
            dtypes=self.plan.dtypes,
            decimals=self.plan.decimals,
            dates=self.plan.dates,
        )
        return iter(self.chunks)

    def transform(self, chunk: pd.DataFrame) -> pd.DataFrame:
        frame = chunk.rename(columns=self.plan.rename)
        for name, value in self.plan.constants.items():
            frame[name] = value
        return frame

    def load(self, chunk: pd.DataFrame) -> LoadResult:
        keys = list(self.settings["keys"]) or None
        return write_model(chunk, self.model, mode=self.settings["mode"], unique_fields=keys, using=self.using)

    def execute(self) -> dict[str, Any]:
        from dw_analytics.ops.models import ConsolidatedFile

        super().execute()
        if self.chunks is None:
            return {"skipped": True, "n_rows": 0, "n_errors": 0}
        quarantine = self.chunks.quarantine
        quarantine["file"] = str(self.path)
        self.quarantine(quarantine)
        record = ConsolidatedFile.objects.using(self.using).create(
            target=self.model._meta.label,
            sha256=self.sha256,
            path=str(self.path)[:1000],
            size_bytes=self.path.stat().st_size,
            encoding=self.chunks.encoding,
            separator=self.plan.sep,
            n_rows=self.chunks.n_yielded,
            n_errors=self.chunks.n_errors,
            run_id=self.log.run_id,
        )
        return {"skipped": False, "n_rows": record.n_rows, "n_errors": record.n_errors, "record_id": record.pk}


@dataclass
class _ReadPlan:
    sep: str
    usecols: list[str]
    rename: dict[str, str]
    dtypes: dict[str, str]
    decimals: dict[str, Any]
    dates: dict[str, str | None]
    constants: dict[str, Any]

    @classmethod
    def build(cls, model: type[models.Model], path: Path, settings: Mapping[str, Any]) -> _ReadPlan:
        sep = settings["sep"]
        sep = sniff_separator(path) if sep == "auto" else sep.replace("\\t", "\t")
        header = _read_header(path, sep, settings["encoding"])
        columns = settings["columns"]
        rename, usecols, unmapped = {}, [], []
        for name in header:
            target = columns.get(name, name if name not in columns else "")
            if name in columns and not columns[name]:
                continue  # dropped on purpose
            if field_for(model, target) is None:
                unmapped.append(name)
                continue
            rename[name] = field_for(model, target).attname
            usecols.append(name)
        if unmapped:
            fields = ", ".join(f.attname for f in model._meta.concrete_fields)
            raise ConsolidationError(
                f"{path.name}: column(s) {', '.join(map(repr, unmapped))} map to no field of "
                f"{model._meta.label} ({fields}); add them to [columns] in the mapping "
                "(an empty target drops a column)",
                file=str(path),
                column=unmapped[0],
            )
        constants = dict(settings["constants"])
        pattern = settings["filename"].get("pattern")
        if pattern:
            found = re.search(pattern, path.name)
            if found is None:
                raise ConsolidationError(
                    f"{path.name}: the file name does not match [filename] pattern {pattern!r}",
                    file=str(path),
                )
            constants.update({k: v for k, v in found.groupdict().items() if v is not None})
        source_field = settings["source_field"]
        if source_field and field_for(model, source_field) is not None:
            constants[source_field] = path.name
        source_of = {attname: src for src, attname in rename.items()}
        dtypes, decimals, dates = {}, {}, {}
        for attname, src in source_of.items():
            f = field_for(model, attname)
            internal = f.get_internal_type()
            if attname in settings["decimals"]:
                scale = settings["decimals"][attname]
                decimals[src] = tuple(scale) if isinstance(scale, list) else scale
            elif internal == "DecimalField":
                decimals[src] = (f.max_digits, f.decimal_places)
            elif attname in settings["dates"]:
                fmt = settings["dates"][attname]
                dates[src] = None if fmt in ("iso", "", None) else fmt
            elif internal in ("DateField", "DateTimeField"):
                dates[src] = None
            elif internal in _TEXT_FIELDS:
                dtypes[src] = "string"
        return cls(sep, usecols, rename, dtypes, decimals, dates, constants)


def _read_header(path: Path, sep: str, encoding: str) -> list[str]:
    with read_csv_chunks(path, sep=sep, encoding=encoding) as probe:
        return [str(c) for c in probe.columns]


# -- the public function ---------------------------------------------------------------------


@dataclass
class FileOutcome:
    """What happened to one file: ``loaded``, ``skipped`` (same content loaded before) or ``failed``."""

    path: str
    sha256: str
    status: str
    n_rows: int = 0
    n_errors: int = 0
    run_id: int | None = None
    error: str = ""


@dataclass
class ConsolidationReport:
    """The outcome of every file matched by the pattern."""

    files: list[FileOutcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def n_rows(self) -> int:
        return sum(f.n_rows for f in self.files)

    @property
    def n_errors(self) -> int:
        return sum(f.n_errors for f in self.files)

    def summary(self) -> str:
        return (
            f"{len(self.files)} files: {self.count('loaded')} loaded, {self.count('skipped')} skipped "
            f"(already loaded), {self.count('failed')} failed; {self.n_rows:,} rows loaded, "
            f"{self.n_errors:,} quarantined"
        )


def consolidate(
    pattern: str,
    model: str | type[models.Model],
    *,
    mapping: str | Path | Mapping[str, Any] | None = None,
    chunksize: int = 100_000,
    triggered_by: str = "",
    using: str = "default",
) -> ConsolidationReport:
    """Load every file matching ``pattern`` into ``model``, skipping contents loaded before.

    Files are taken in name order; each is one ``consolidate`` pipeline run. A file that
    fails (bad mapping, rows the model refuses) is reported and the next file goes on.

    Args:
        pattern: a glob (``data/in/*.csv``; ``**`` recurses).
        model: the target model label or class (e.g. ``ops.VendaFilial``).
        mapping: a TOML file (module docstring) or the same as a dict.
        chunksize: rows per chunk.
        triggered_by: who asked (recorded).
        using: database alias.

    Returns:
        A :class:`ConsolidationReport` with one :class:`FileOutcome` per file.

    Raises:
        ConsolidationError: the mapping is unusable or no file matches.

    Example:
        >>> report = consolidate("data/in/vendas_*.csv", "ops.VendaFilial", mapping="filiais.toml")  # doctest: +SKIP
        >>> report.summary()  # doctest: +SKIP
        '3 files: 2 loaded, 1 skipped (already loaded), 0 failed; 1,200 rows loaded, 3 quarantined'
    """
    from dw_analytics.ops.models import ConsolidatedFile

    target = get_model(model)
    rules = load_mapping(mapping)
    paths = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
    if not paths:
        raise ConsolidationError(f"no file matches {pattern!r}", file=pattern)
    report = ConsolidationReport()
    loaded = ConsolidatedFile.objects.using(using).filter(target=target._meta.label)
    for path in paths:
        digest = file_sha256(path)
        if loaded.filter(sha256=digest).exists():
            report.files.append(FileOutcome(str(path), digest, "skipped"))
            continue
        try:
            pipeline = ConsolidateFilePipeline(
                using=using,
                file=str(path),
                model=target._meta.label,
                settings=file_settings(rules, path.name),
                sha256=digest,
                chunksize=chunksize,
            )
            log = pipeline.run(triggered_by=triggered_by)
        except (DWError, IntegrityError) as exc:
            report.files.append(FileOutcome(str(path), digest, "failed", error=f"{type(exc).__name__}: {exc}"))
            continue
        outcome = log.result
        status = "skipped" if outcome["skipped"] else "loaded"
        report.files.append(FileOutcome(str(path), digest, status, outcome["n_rows"], outcome["n_errors"], log.run_id))
    return report
