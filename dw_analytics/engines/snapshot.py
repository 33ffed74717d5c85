"""Publish Parquet written by many workers as one atomic snapshot (or one atomic folder).

:func:`dw_analytics.load.parquet.publish_snapshot` writes every table itself,
from the calling process. When Dask workers write the part files of a big
table in parallel, the client must instead: open a temporary version folder
on shared storage, let the workers fill it, check what they wrote, write the
manifest, and only then rename the folder into place and switch the
``CURRENT`` pointer. :func:`staged_snapshot` does exactly that with the same
building blocks as ``publish_snapshot`` (``paths.atomic_output``, the version
naming, pointer, symlink and retention of ``load/parquet.py``), and produces
the same layout and manifest, so :func:`~dw_analytics.load.parquet.read_snapshot`,
``open_snapshot`` and Power BI's Folder query read it unchanged. A table
written by workers is a folder ``<table>/`` of ``part-NNNNN.parquet`` files
(or hive ``k=v/`` folders).

If anything fails before the pointer switch -- a worker killed for good, a
schema mismatch, the client interrupted -- the temporary folder is removed
and the previous version stays current.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from dw_analytics.load import parquet as _parquet
from dw_analytics.load.exceptions import LoadError, LoadValidationError
from dw_analytics.load.parquet import (
    SNAPSHOT_FORMAT,
    SNAPSHOT_LINK,
    SNAPSHOT_MANIFEST,
    SNAPSHOT_POINTER,
    DataSource,
    ParquetWriteResult,
    SnapshotResult,
)
from dw_analytics.load.paths import (
    atomic_output,
    remove_path,
    replace_symlink,
    resolve_output_path,
    write_text_atomic,
)

__all__ = ["SnapshotStage", "check_part_schemas", "staged_folder", "staged_snapshot"]

#: options the writers accept (as for ``write_parquet`` / ``publish_snapshot``)
WRITE_OPTIONS = ("timezone", "money_as_float", "row_group_size", "compression", "schema")


@dataclass
class SnapshotStage:
    """A version being assembled; tables are added by the client or registered after workers wrote them.

    Attributes:
        path: the temporary version folder (hidden until published).
        write_options: the writer options every part must use (``run_id``, ...).
        manifest: the manifest written last, in ``publish_snapshot``'s format.
        result: the :class:`SnapshotResult`, set once published.
    """

    root: Path
    version: str
    path: Path
    write_options: dict[str, Any]
    manifest: dict[str, Any]
    keep: int
    result: SnapshotResult | None = None
    _started: float = field(default_factory=time.perf_counter)

    def table_dir(self, name: str) -> Path:
        """Create and return ``<version>/<name>/``, the folder workers write the table's parts into."""
        _parquet._check_table_name(name, str(self.root))
        folder = self.path / name
        folder.mkdir()
        return folder

    def write_table(self, name: str, data: DataSource, partition_cols: Sequence[str] | None = None) -> None:
        """Write a (small) table from this process, as ``publish_snapshot`` does."""
        _parquet._check_table_name(name, str(self.root))
        partitions = _parquet._partition_list(partition_cols, str(self.root))
        dest = self.path / name if partitions else self.path / f"{name}.parquet"
        if partitions:
            dest.mkdir()
        opts = _parquet._options(target=f"{self.root}:{name}", **self.write_options)
        stats = _parquet._write_dataset(data, dest, partitions, opts, target=f"{self.root}:{name}")
        prefix = f"{name}/" if partitions else ""
        self.manifest["tables"][name] = {
            "path": dest.name,
            "files": [prefix + f for f in stats.files],
            "n_rows": stats.n_rows,
            "partition_cols": partitions,
            "n_row_groups": stats.n_row_groups,
            "bytes": stats.bytes_written,
            "schema": [{"name": c["name"], "type": c["type"]} for c in stats.schema],
        }

    def add_parts(
        self,
        name: str,
        parts: Sequence[Mapping[str, Any]],
        partition_cols: Sequence[str] | None = None,
        labels: Sequence[str] = (),
    ) -> None:
        """Register the part files workers wrote into :meth:`table_dir` (their stats, in order)."""
        folder = self.path / name
        schema = check_part_schemas(parts, labels, target=f"{self.root}:{name}")
        files = [f"{name}/{f}" for part in parts for f in part["files"]]
        if not files:
            schema = self._write_empty(name, folder)
            files = [f"{name}/part-00000.parquet"]
        for leftover in list(folder.rglob(".*")):  # hidden leftovers of dead attempts
            remove_path(leftover)
        self.manifest["tables"][name] = {
            "path": name,
            "files": sorted(files),
            "n_rows": sum(int(p["n_rows"]) for p in parts),
            "partition_cols": list(partition_cols or []),
            "n_row_groups": sum(int(p["n_row_groups"]) for p in parts),
            "bytes": sum(int(p["bytes"]) for p in parts),
            "schema": schema,
        }

    def _write_empty(self, name: str, folder: Path) -> list[dict[str, str]]:
        target = f"{self.root}:{name}"
        opts = _parquet._options(target=target, **self.write_options)
        if opts.schema is None:
            raise LoadValidationError(
                f"Table {name!r} has no rows in any partition and no schema= was given; pass "
                "schema= to publish an empty table",
                target=target,
                table=name,
            )
        stats = _parquet._write_dataset([], folder / "part-00000.parquet", [], opts, target=target)
        return [{"name": c["name"], "type": c["type"]} for c in stats.schema]


def check_part_schemas(
    parts: Sequence[Mapping[str, Any]], labels: Sequence[str] = (), *, target: str
) -> list[dict[str, str]]:
    """The common schema of parts written separately; a mismatch is a :class:`LoadValidationError`.

    Example:
        >>> check_part_schemas([{"files": ["a"], "schema": [{"name": "x", "type": "int64"}]}],
        ...                    target="t")
        [{'name': 'x', 'type': 'int64'}]
    """
    schema: list[dict[str, str]] | None = None
    first_label = ""
    for index, part in enumerate(parts):
        if not part["files"]:
            continue
        label = labels[index] if index < len(labels) else f"partition {index}"
        if schema is None:
            schema, first_label = list(part["schema"]), label
        elif list(part["schema"]) != schema:
            raise LoadValidationError(
                f"Partition {label} was written with columns {part['schema']} but {first_label} "
                f"with {schema}; give every partition the same dtypes, or pass schema=",
                target=target,
            )
    return schema or []


@contextmanager
def _abandon_on_error(stage: Path, *, attempts: int = 100, pause_s: float = 0.1) -> Iterator[None]:
    """On failure remove the stage, retrying while straggling workers still write into it.

    A worker's task may still be running when the client gives up (its result
    was lost with a dead worker and the scheduler re-ran it); it notices the
    folder is gone before its next chunk and stops, but until then it can add
    a file while the folder is being removed.
    """
    try:
        yield
    except BaseException:
        for _ in range(attempts):
            try:
                remove_path(stage)
                break
            except OSError:
                time.sleep(pause_s)
        raise


def _write_options(run_id: str | int | None, options: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(WRITE_OPTIONS))
    if unknown:
        raise LoadValidationError(f"unknown Parquet option(s) {unknown}; valid: {', '.join(WRITE_OPTIONS)}", target="")
    opts = _parquet._options(target="", run_id=run_id, **options)  # validates them once
    return {
        **dict(options),
        "run_id": opts.run_id,
        "created_at": opts.created_at,
        "metadata": dict(opts.metadata),
    }


@contextmanager
def staged_snapshot(
    folder: str | os.PathLike[str],
    *,
    keep: int = _parquet.DEFAULT_KEEP_VERSIONS,
    run_id: str | int | None = None,
    **write_options: Any,
) -> Iterator[SnapshotStage]:
    """Assemble a snapshot version in a hidden folder; publish it (pointer last) when the block succeeds.

    Args:
        folder: the snapshot folder under ``DW_OUTPUT_DIR`` (shared storage
            when Dask workers write into it).
        keep: versions kept after publishing.
        run_id: recorded in the manifest and in every file.
        **write_options: ``timezone``, ``money_as_float``, ``row_group_size``,
            ``compression``, ``schema`` -- as in ``publish_snapshot``.

    Yields:
        The :class:`SnapshotStage`; after the block, ``stage.result`` is the
        :class:`SnapshotResult`.

    Raises:
        LoadError: the publish failed; the previous version is still current.

    Example:
        >>> with staged_snapshot("star", run_id=7) as stage:  # doctest: +SKIP
        ...     stage.write_table("dim_date", dates)
        ...     ...  # workers write into stage.table_dir("fact_sales"), then stage.add_parts(...)
        >>> stage.result.version  # doctest: +SKIP
    """
    root = resolve_output_path(folder)
    target = str(root)
    if keep < 1:
        raise LoadValidationError(f"keep must be at least 1, got {keep}", target=target)
    options = _write_options(run_id, write_options)
    root.mkdir(parents=True, exist_ok=True)
    version = _parquet._new_version_name(root, options["run_id"])
    manifest: dict[str, Any] = {
        "format": SNAPSHOT_FORMAT,
        "version": version,
        "run_id": options["run_id"],
        "created_at": options["created_at"],
        "dw_analytics_version": _parquet._version(),
        "timezone": options.get("timezone", _parquet.DEFAULT_TIMEZONE),
        "tables": {},
    }
    try:
        with atomic_output(root / version, directory=True) as tmp:
            stage = SnapshotStage(root, version, tmp, options, manifest, keep)
            with _abandon_on_error(tmp):
                yield stage
            if not manifest["tables"]:
                raise LoadValidationError("the snapshot has no table", target=target)
            (tmp / SNAPSHOT_MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
        # The version is complete and durable; switching the pointer publishes it.
        try:
            write_text_atomic(root / SNAPSHOT_POINTER, version + "\n")
            replace_symlink(root / SNAPSHOT_LINK, version)
        except BaseException:
            if _parquet._current_version(root) != version:
                remove_path(root / version)
            raise
    except LoadError:
        raise
    except (OSError, pa.ArrowException) as exc:
        raise LoadError(
            f"Publishing snapshot {target} failed; the previous version is still current: {exc}",
            target=target,
        ) from exc
    removed = _parquet._apply_retention(root, keep, current=version)
    stage.result = SnapshotResult(
        target=target,
        n_inserted=sum(t["n_rows"] for t in manifest["tables"].values()),
        duration_s=time.perf_counter() - stage._started,
        details={"run_id": options["run_id"], "created_at": options["created_at"]},
        version=version,
        version_path=str(root / version),
        tables={k: {"n_rows": v["n_rows"], "files": v["files"]} for k, v in manifest["tables"].items()},
        removed_versions=removed,
    )


@contextmanager
def staged_folder(
    path: str | os.PathLike[str], *, run_id: str | int | None = None, **write_options: Any
) -> Iterator[SnapshotStage]:
    """Like :func:`staged_snapshot` for one table published at ``path`` (a folder) by one rename.

    The distributed counterpart of ``write_parquet(df, path, partition_cols=...)``:
    workers write into ``stage.table_dir(...)``; the folder replaces ``path``
    atomically (no manifest, no versions). ``stage.result`` is a
    :class:`ParquetWriteResult`.

    Example:
        >>> with staged_folder("sales_parts") as stage:  # doctest: +SKIP
        ...     folder = stage.table_dir("data")
    """
    target = resolve_output_path(path)
    options = _write_options(run_id, write_options)
    started = time.perf_counter()
    try:
        with atomic_output(target, directory=True) as tmp:
            stage = SnapshotStage(target, "", tmp, options, {"tables": {}}, 1)
            with _abandon_on_error(tmp):
                yield stage
            tables = stage.manifest["tables"]
            if len(tables) != 1:
                raise LoadValidationError("a staged folder holds exactly one table", target=str(target))
            (name,) = tables
            entry = tables[name]
            # The table's folder becomes the published folder itself.
            for item in (tmp / name).iterdir():
                os.replace(item, tmp / item.name)
            (tmp / name).rmdir()
    except LoadError:
        raise
    except (OSError, pa.ArrowException) as exc:
        raise LoadError(f"Writing Parquet {target} failed, nothing was published: {exc}", target=str(target)) from exc
    files = [str(target / f.split("/", 1)[1]) for f in entry["files"]]
    stage.result = ParquetWriteResult(
        target=str(target),
        n_inserted=entry["n_rows"],
        duration_s=time.perf_counter() - started,
        details={"partition_cols": entry["partition_cols"], "run_id": options["run_id"]},
        files=files,
        n_row_groups=entry["n_row_groups"],
        bytes_written=entry["bytes"],
        schema=entry["schema"],
    )
