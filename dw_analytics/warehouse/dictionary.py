"""What the warehouse holds: its tables, their columns, keys and relationships.

One source of truth for the analyst side: :func:`dw_analytics.notebook.catalog`
and ``dw.load_table`` find tables here, and ``manage.py data_dictionary``
renders :func:`data_dictionary` as ``docs/data_dictionary.md`` and
``docs/data_dictionary.json``.

Where each fact comes from (nothing is written twice by hand):

* **tables**: every model of the ``warehouse`` app except the run machinery
  (:data:`RUN_MACHINERY`); the table name is the ``db_table`` without its
  ``dw_`` prefix, or the model name in snake case (``SalesByCategory`` ->
  ``sales_by_category``). The names match the Parquet snapshot's files.
* **descriptions**: a table's is its model docstring; a column's is its
  ``help_text``, else an explicit ``verbose_name``; an automatic ``id`` primary
  key is described as such. A column without any is reported by
  :func:`undocumented_columns` (and fails the test suite).
* **keys**: primary key and unique columns / constraints from the model;
  a *natural key* is a column whose ``help_text`` starts with "Natural key",
  else the model's multi-column unique constraint.
* **relationships**: a column whose ``help_text`` starts with
  ``-> dim_x.column`` references that dimension (many-to-one, single
  direction, as Power BI wants it).
* **types**: the Django field, the column type on PostgreSQL and SQLite (from
  Django's own backends, no connection needed), the Parquet type
  :func:`dw_analytics.load.parquet.publish_snapshot` writes and the type Power BI
  shows for it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from django.apps import apps
from django.db import models

from dw_analytics.load.parquet import DEFAULT_TIMEZONE, MAX_MONEY_SCALE, MONEY_PRECISION

__all__ = [
    "RUN_MACHINERY",
    "TABLE_WRITERS",
    "data_dictionary",
    "powerbi_type_rows",
    "render_markdown",
    "source_tables",
    "table_name",
    "undocumented_columns",
    "warehouse_tables",
    "write_data_dictionary",
]

WAREHOUSE_APP = "warehouse"
SOURCE_APP = "sales"
#: warehouse models that record how runs went rather than hold analytics data
RUN_MACHINERY = frozenset({"PipelineRun", "QuarantinedRow", "Watermark", "PipelineLock"})
#: table -> the pipelines whose successful run rewrites it (for "last refresh").
#: A pipeline class may also declare ``writes = ("table", ...)`` itself.
TABLE_WRITERS: dict[str, tuple[str, ...]] = {
    "sales_by_category": ("analytics", "star_schema", "nightly"),
    "sales_by_category_month": ("star_schema", "nightly"),
    "dim_date": ("star_schema", "nightly"),
    "dim_category": ("star_schema", "nightly"),
    "dim_product": ("star_schema", "nightly"),
    "dim_customer": ("star_schema", "nightly"),
    "fact_sales": ("star_schema", "nightly"),
    "destino": ("etl", "nightly"),
}
AUTO_ID_DESCRIPTION = "Row id assigned by the database (auto-increment); no business meaning."
POWERBI_FOLDER_HINT = "DW_OUTPUT_DIR/powerbi/current/"

_REFERENCE = re.compile(r"^->\s*(?P<table>[a-z0-9_]+)\.(?P<column>[a-z0-9_]+)")
_NATURAL_KEY = re.compile(r"^natural key", re.IGNORECASE)
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_INTEGER_FIELDS = (models.IntegerField, models.AutoField, models.ForeignKey)
_TEXT_FIELDS = (models.CharField, models.TextField, models.GenericIPAddressField, models.UUIDField)

POWERBI_TYPES = {
    "decimal": "Fixed decimal number",
    "int64": "Whole number",
    "string": "Text",
    "bool": "True/False",
    "date32[day]": "Date",
    "timestamp[us]": "Date/Time",
    "double": "Decimal number",
}


# -- which tables ---------------------------------------------------------------------
def table_name(model: type[models.Model]) -> str:
    """The name analysts, the Parquet snapshot and Power BI use for a model's table.

    Example:
        >>> from dw_analytics.warehouse.models import FactSales, SalesByCategory
        >>> table_name(FactSales), table_name(SalesByCategory)
        ('fact_sales', 'sales_by_category')
    """
    db_table = model._meta.db_table
    if db_table.startswith("dw_"):
        return db_table.removeprefix("dw_")
    return _CAMEL_BOUNDARY.sub("_", model.__name__).lower()


def warehouse_tables() -> dict[str, type[models.Model]]:
    """The warehouse's analytics tables by name (run history and locks left out).

    Example:
        >>> sorted(warehouse_tables())[:3]  # doctest: +SKIP
        ['dim_category', 'dim_customer', 'dim_date']
    """
    return _tables(WAREHOUSE_APP, exclude=RUN_MACHINERY)


def source_tables() -> dict[str, type[models.Model]]:
    """The operational tables of the ``sales`` app by name (``pedido``, ``produto``...).

    Example:
        >>> sorted(source_tables())  # doctest: +SKIP
        ['categoria', 'cliente', 'destino', 'fonte_externa', 'pedido', 'produto']
    """
    return _tables(SOURCE_APP)


def _tables(app_label: str, exclude: Iterable[str] = ()) -> dict[str, type[models.Model]]:
    skip = set(exclude)
    found = {
        table_name(model): model for model in apps.get_app_config(app_label).get_models() if model.__name__ not in skip
    }
    return dict(sorted(found.items()))


def snapshot_tables() -> dict[str, type[models.Model]]:
    """The tables the nightly run publishes as Parquet (name -> model)."""
    from dw_analytics.pipelines.nightly import SNAPSHOT_TABLES

    return dict(SNAPSHOT_TABLES)


PARTITION_COLUMN_DESCRIPTIONS = {
    "month_key": "Month of the order, yyyymm (America/Sao_Paulo), = date_key // 100; "
    "the Parquet partition column (month_key=yyyymm folders), Parquet only.",
}


def snapshot_partitions() -> dict[str, list[str]]:
    """Table -> partition columns of the published snapshot (kept as real columns for Power BI)."""
    from dw_analytics.pipelines.nightly import SNAPSHOT_PARTITIONS

    return dict(SNAPSHOT_PARTITIONS)


def _published_as_double() -> frozenset[str]:
    """Decimal columns the nightly run publishes as doubles (ratios wider than 4 places)."""
    from dw_analytics.pipelines import nightly

    return frozenset(getattr(nightly, "RATIO_COLUMNS", ()))


# -- describing one model ---------------------------------------------------------------
def table_description(model: type[models.Model]) -> str:
    """The model docstring, or "" when Django generated it (``Model(id, ...)``)."""
    doc = (model.__doc__ or "").strip()
    if not doc or doc.startswith(f"{model.__name__}("):
        return ""
    return " ".join(doc.split())


def column_description(field: models.Field) -> str:
    """``help_text``, else the auto-id wording, else an explicit ``verbose_name``, else ""."""
    if field.help_text:
        return str(field.help_text).strip()
    if field.primary_key and field.auto_created:
        return AUTO_ID_DESCRIPTION
    default_verbose = field.name.replace("_", " ")
    if field.verbose_name and str(field.verbose_name) != default_verbose:
        return str(field.verbose_name).strip()
    return ""


def parquet_type(field: models.Field) -> str:
    """The Arrow type ``publish_snapshot`` writes for a column read from this field.

    Example:
        >>> parquet_type(models.DecimalField(max_digits=14, decimal_places=2))
        'decimal128(19, 2)'
    """
    if isinstance(field, models.DecimalField):
        return f"decimal128({MONEY_PRECISION}, {min(field.decimal_places, MAX_MONEY_SCALE)})"
    if isinstance(field, models.BooleanField):
        return "bool"
    if isinstance(field, _INTEGER_FIELDS):
        return "int64"
    if isinstance(field, models.DateTimeField):  # before DateField: it is a subclass
        return "timestamp[us]"
    if isinstance(field, models.DateField):
        return "date32[day]"
    if isinstance(field, models.FloatField):
        return "double"
    if isinstance(field, _TEXT_FIELDS):
        return "string"
    return "string"


def powerbi_type(arrow_type: str) -> str:
    """The Power BI data type of a Parquet column type.

    Example:
        >>> powerbi_type("decimal128(19, 2)"), powerbi_type("timestamp[us]")
        ('Fixed decimal number', 'Date/Time')
    """
    key = "decimal" if arrow_type.startswith("decimal128") else arrow_type
    return POWERBI_TYPES.get(key, "Text")


@cache
def _backends() -> dict[str, Any]:
    """Database wrappers used only to ask each backend for its column types (never connected)."""
    from django.db.backends.postgresql.base import DatabaseWrapper as PostgresWrapper
    from django.db.backends.sqlite3.base import DatabaseWrapper as SQLiteWrapper

    settings = {"NAME": "", "USER": "", "PASSWORD": "", "HOST": "", "PORT": "", "OPTIONS": {},
                "TIME_ZONE": None, "CONN_MAX_AGE": 0, "CONN_HEALTH_CHECKS": False,
                "AUTOCOMMIT": True, "ATOMIC_REQUESTS": False, "TEST": {}}  # fmt: skip
    return {
        "postgresql": PostgresWrapper(dict(settings), alias="dictionary-postgresql"),
        "sqlite": SQLiteWrapper(dict(settings), alias="dictionary-sqlite"),
    }


def _natural_key(model: type[models.Model]) -> list[str]:
    fields = [f.attname for f in model._meta.concrete_fields if _NATURAL_KEY.match(str(f.help_text))]
    if fields:
        return fields
    for constraint in model._meta.constraints:
        if isinstance(constraint, models.UniqueConstraint) and len(constraint.fields) > 1:
            return [model._meta.get_field(name).attname for name in constraint.fields]
    return []


def describe_table(name: str, model: type[models.Model], *, parquet: bool) -> dict[str, Any]:
    """The dictionary entry of one table: description, keys, columns, relationships.

    Example:
        >>> from dw_analytics.warehouse.models import DimCategory
        >>> describe_table("dim_category", DimCategory, parquet=True)["primary_key"]
        ['category_key']
    """
    meta = model._meta
    natural = _natural_key(model)
    unique_sets = [
        [meta.get_field(n).attname for n in c.fields]
        for c in meta.constraints
        if isinstance(c, models.UniqueConstraint) and c.fields
    ]
    unique_sets += [[f.attname] for f in meta.concrete_fields if f.unique and not f.primary_key]
    columns, relationships = [], []
    as_double = _published_as_double()
    for field in meta.concrete_fields:
        arrow = "double" if field.attname in as_double else parquet_type(field)
        reference = _REFERENCE.match(str(field.help_text))
        column = {
            "name": field.attname,
            "description": column_description(field),
            "django_type": field.get_internal_type(),
            "db_type": {vendor: field.db_type(conn) for vendor, conn in _backends().items()},
            "parquet_type": arrow if parquet else None,
            "powerbi_type": powerbi_type(arrow) if parquet else None,
            "nullable": field.null,
            "primary_key": field.primary_key,
            "unique": field.unique,
            "natural_key": field.attname in natural,
            "references": None,
        }
        if isinstance(field, models.DecimalField):
            column["precision"], column["scale"] = field.max_digits, field.decimal_places
        if reference:
            target = f"{reference['table']}.{reference['column']}"
            column["references"] = target
            relationships.append(
                {
                    "from": f"{name}.{field.attname}",
                    "to": target,
                    "cardinality": "many-to-one",
                    "cross_filter": "single",
                }
            )
        columns.append(column)
    partitions = snapshot_partitions().get(name, []) if parquet else []
    known = {c["name"] for c in columns}
    columns += [_partition_column(column) for column in partitions if column not in known]
    return {
        "name": name,
        "role": _role(name),
        "model": f"{meta.app_label}.{model.__name__}",
        "db_table": meta.db_table,
        "parquet_file": (f"{name}/" if partitions else f"{name}.parquet") if parquet else None,
        "partition_cols": partitions,
        "description": table_description(model),
        "primary_key": [meta.pk.attname],
        "unique": unique_sets,
        "natural_key": natural,
        "columns": columns,
        "relationships": relationships,
    }


def _partition_column(name: str) -> dict[str, Any]:
    """A column that exists only in the Parquet files: a partition column (an int64 key)."""
    return {
        "name": name,
        "description": PARTITION_COLUMN_DESCRIPTIONS.get(name, ""),
        "django_type": None,
        "db_type": None,
        "parquet_type": "int64",
        "powerbi_type": powerbi_type("int64"),
        "nullable": False,
        "primary_key": False,
        "unique": False,
        "natural_key": False,
        "references": None,
        "parquet_only": True,
    }


def _role(name: str) -> str:
    if name.startswith("dim_"):
        return "dimension"
    if name.startswith("fact_"):
        return "fact"
    return "aggregate"


# -- the whole dictionary ------------------------------------------------------------------
def data_dictionary() -> dict[str, Any]:
    """Every warehouse table and Parquet dataset with its columns, keys and relationships.

    Returns:
        ``{"snapshot": {...}, "tables": [...], "relationships": [...]}``, tables
        in the order dimensions, facts, aggregates (each by name); see
        ``docs/data_dictionary.json`` for the shape.

    Example:
        >>> d = data_dictionary()  # doctest: +SKIP
        >>> [r["to"] for r in d["relationships"] if r["from"].startswith("fact_sales.")]  # doctest: +SKIP
        ['dim_date.date_key', 'dim_product.product_key', 'dim_customer.customer_key', 'dim_category.category_key']
    """
    published = snapshot_tables()
    order = {"dimension": 0, "fact": 1, "aggregate": 2}
    tables = sorted(
        (describe_table(name, model, parquet=name in published) for name, model in warehouse_tables().items()),
        key=lambda t: (order[t["role"]], t["name"]),
    )
    return {
        "title": "dw_analytics data dictionary",
        "generated_by": "manage.py data_dictionary",
        "snapshot": {
            "folder": POWERBI_FOLDER_HINT,
            "format": "Parquet 1.0, snappy; one <table>.parquet per table in each version",
            "timezone": DEFAULT_TIMEZONE,
            "timestamps": f"naive wall time in {DEFAULT_TIMEZONE}, microseconds",
            "money": f"decimal128({MONEY_PRECISION}, scale <= {MAX_MONEY_SCALE}), exact",
        },
        "tables": tables,
        "relationships": [r for t in tables for r in t["relationships"]],
    }


def undocumented_columns(dictionary: dict[str, Any] | None = None) -> list[str]:
    """``table.column`` of every column (and ``table`` of every table) without a description.

    Example:
        >>> undocumented_columns()  # doctest: +SKIP
        []
    """
    dictionary = dictionary or data_dictionary()
    missing = []
    for table in dictionary["tables"]:
        if not table["description"]:
            missing.append(table["name"])
        missing += [f"{table['name']}.{c['name']}" for c in table["columns"] if not c["description"]]
    return missing


def render_markdown(dictionary: dict[str, Any]) -> str:
    """The dictionary as a Markdown document (``docs/data_dictionary.md``).

    Example:
        >>> render_markdown(data_dictionary()).splitlines()[0]  # doctest: +SKIP
        '# dw_analytics data dictionary'
    """
    snap = dictionary["snapshot"]
    lines = [
        f"# {dictionary['title']}",
        "",
        f"Generated by `{dictionary['generated_by']}` from the models' docstrings and `help_text`; "
        "do not edit by hand (edit the models and regenerate).",
        "",
        f"* Parquet snapshot for Power BI: `{snap['folder']}` ({snap['format']}).",
        f"* Timestamps: {snap['timestamps']}. Money: {snap['money']}.",
        "* Keys: **PK** primary key, **NK** natural key (the source system's id), "
        "**U** unique, **FK** references a dimension (relationship in Power BI).",
        "",
        "## Relationships (star schema)",
        "",
        "| from (many) | to (one) | cardinality | cross filter |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| `{r['from']}` | `{r['to']}` | {r['cardinality']} | {r['cross_filter']} |"
        for r in dictionary["relationships"]
    ]
    lines += ["", "## Tables", ""]
    lines += [f"* [`{t['name']}`](#{t['name']}) ({t['role']}): {t['description']}" for t in dictionary["tables"]]
    for table in dictionary["tables"]:
        parquet = f"`{table['parquet_file']}`" if table["parquet_file"] else "not published"
        if table["partition_cols"]:
            parquet += f" (partitioned by {_names(table['partition_cols'])}: one folder per value)"
        lines += [
            "",
            f"### {table['name']}",
            "",
            table["description"],
            "",
            f"* Role: {table['role']}. Model: `{table['model']}`. Database table: `{table['db_table']}`. "
            f"Parquet: {parquet}.",
            f"* Primary key: {_names(table['primary_key'])}. Natural key: {_names(table['natural_key'])}. "
            f"Unique: {', '.join(_names(u) for u in table['unique']) or '-'}.",
        ]
        if table["relationships"]:
            lines.append(
                "* Relationships: "
                + ", ".join(f"`{r['from'].split('.', 1)[1]}` -> `{r['to']}`" for r in table["relationships"])
                + "."
            )
        lines += [
            "",
            "| column | keys | description | Django | PostgreSQL | SQLite | Parquet | Power BI | null |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for c in table["columns"]:
            db_type = c["db_type"] or {"postgresql": "-", "sqlite": "-"}
            lines.append(
                f"| `{c['name']}` | {_keys(c)} | {_cell(c['description'])} | {c['django_type'] or '-'} "
                f"| {db_type['postgresql']} | {db_type['sqlite']} | {c['parquet_type'] or '-'} "
                f"| {c['powerbi_type'] or '-'} | {'yes' if c['nullable'] else 'no'} |"
            )
    return "\n".join(lines) + "\n"


def _names(columns: list[str]) -> str:
    return ", ".join(f"`{c}`" for c in columns) or "-"


def _keys(column: dict[str, Any]) -> str:
    keys = [
        label
        for label, flag in (
            ("PK", column["primary_key"]),
            ("NK", column["natural_key"]),
            ("U", column["unique"] and not column["primary_key"]),
            ("FK", column["references"]),
        )
        if flag
    ]
    return " ".join(keys)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


POWERBI_TYPE_ORDER = [
    "Whole number",
    "Fixed decimal number",
    "Decimal number",
    "Text",
    "Date",
    "Date/Time",
    "True/False",
]


def powerbi_type_rows(dictionary: dict[str, Any]) -> list[str]:
    """One Markdown table row per published table: its columns grouped by Power BI type.

    ``docs/powerbi.md`` carries these rows (a test keeps them in step).

    Example:
        >>> powerbi_type_rows(data_dictionary())[0]  # doctest: +SKIP
        '| `dim_category` | category_key, categoria_id |  |  | categoria |  |  |  |'
    """
    rows = []
    for table in dictionary["tables"]:
        if not table["parquet_file"]:
            continue
        cells = [
            ", ".join(c["name"] for c in table["columns"] if c["powerbi_type"] == kind) for kind in POWERBI_TYPE_ORDER
        ]
        rows.append(f"| `{table['name']}` | " + " | ".join(cells) + " |")
    return rows


def write_data_dictionary(directory: str | Path) -> tuple[Path, Path]:
    """Write ``data_dictionary.md`` and ``data_dictionary.json`` into ``directory``.

    Returns:
        The two paths (Markdown, JSON).

    Example:
        >>> write_data_dictionary("docs")  # doctest: +SKIP
        (PosixPath('docs/data_dictionary.md'), PosixPath('docs/data_dictionary.json'))
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    dictionary = data_dictionary()
    markdown, as_json = folder / "data_dictionary.md", folder / "data_dictionary.json"
    markdown.write_text(render_markdown(dictionary), encoding="utf-8")
    as_json.write_text(json.dumps(dictionary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return markdown, as_json
