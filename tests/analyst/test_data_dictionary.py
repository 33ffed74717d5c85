"""The data dictionary: complete, true to the published files, and committed up to date."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import models

from dw_analytics.load.parquet import open_snapshot
from dw_analytics.pipelines.nightly import POWERBI_FOLDER, SNAPSHOT_TABLES
from dw_analytics.warehouse.dictionary import (
    AUTO_ID_DESCRIPTION,
    column_description,
    data_dictionary,
    powerbi_type_rows,
    render_markdown,
    undocumented_columns,
    warehouse_tables,
)
from dw_analytics.warehouse.models import FactSales

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dictionary() -> dict:
    return data_dictionary()


def test_every_warehouse_table_and_column_has_a_description(dictionary):
    assert undocumented_columns(dictionary) == [], (
        "add a docstring / help_text to these, then run manage.py data_dictionary"
    )


def test_a_column_without_help_text_counts_as_undocumented():
    bare = models.IntegerField()
    bare.set_attributes_from_name("n_things")
    assert column_description(bare) == ""
    table = {"name": "t", "description": "A table.", "columns": [{"name": "n_things", "description": ""}]}
    assert undocumented_columns({"tables": [table]}) == ["t.n_things"]


def test_the_dictionary_covers_every_warehouse_table_and_every_parquet_file(dictionary):
    names = [t["name"] for t in dictionary["tables"]]
    assert sorted(names) == sorted(warehouse_tables())
    assert [t["role"] for t in dictionary["tables"]] == ["dimension"] * 4 + ["fact"] + ["aggregate"] * 2
    published = {t["name"]: t["parquet_file"] for t in dictionary["tables"] if t["parquet_file"]}
    assert published == {name: "fact_sales/" if name == "fact_sales" else f"{name}.parquet" for name in SNAPSHOT_TABLES}
    for table in dictionary["tables"]:
        model = warehouse_tables()[table["name"]]
        in_database = [c["name"] for c in table["columns"] if not c.get("parquet_only")]
        assert in_database == [f.attname for f in model._meta.concrete_fields]
    fact = next(t for t in dictionary["tables"] if t["name"] == "fact_sales")
    assert fact["partition_cols"] == ["month_key"]
    assert [(c["name"], c["parquet_type"], c.get("parquet_only")) for c in fact["columns"]][-1] == (
        "month_key",
        "int64",
        True,
    )


def test_keys_and_types_of_the_fact_table(dictionary):
    fact = next(t for t in dictionary["tables"] if t["name"] == "fact_sales")
    assert (fact["primary_key"], fact["natural_key"]) == (["order_id"], ["order_id"])
    total = next(c for c in fact["columns"] if c["name"] == "total")
    assert total == {
        "name": "total",
        "description": "Order total, BRL.",
        "django_type": "DecimalField",
        "db_type": {"postgresql": "numeric(14, 2)", "sqlite": "decimal"},
        "parquet_type": "decimal128(19, 2)",
        "powerbi_type": "Fixed decimal number",
        "nullable": False,
        "primary_key": False,
        "unique": False,
        "natural_key": False,
        "references": None,
        "precision": 14,
        "scale": 2,
    }
    by_category = next(t for t in dictionary["tables"] if t["name"] == "sales_by_category")
    first = by_category["columns"][0]
    assert (first["name"], first["description"], first["primary_key"]) == ("id", AUTO_ID_DESCRIPTION, True)
    assert by_category["natural_key"] == ["categoria_id"]
    month = next(t for t in dictionary["tables"] if t["name"] == "sales_by_category_month")
    assert month["natural_key"] == ["month_key", "category_key"]


def test_relationships_go_from_the_fact_to_the_primary_key_of_each_dimension(dictionary):
    fact_relationships = [
        (r["from"], r["to"]) for r in dictionary["relationships"] if r["from"].startswith("fact_sales.")
    ]
    assert fact_relationships == [
        ("fact_sales.date_key", "dim_date.date_key"),
        ("fact_sales.product_key", "dim_product.product_key"),
        ("fact_sales.customer_key", "dim_customer.customer_key"),
        ("fact_sales.category_key", "dim_category.category_key"),
    ]
    primary_keys = {t["name"]: t["primary_key"] for t in dictionary["tables"]}
    for relationship in dictionary["relationships"]:
        table, column = relationship["to"].split(".")
        assert primary_keys[table] == [column], relationship
        assert (relationship["cardinality"], relationship["cross_filter"]) == ("many-to-one", "single")
    assert {f.attname for f in FactSales._meta.concrete_fields if f.help_text.startswith("->")} == {
        r["from"].split(".")[1] for r in dictionary["relationships"] if r["from"].startswith("fact_sales.")
    }


def test_parquet_types_in_the_dictionary_are_the_types_the_nightly_run_publishes(nightly, dictionary):
    manifest = open_snapshot(POWERBI_FOLDER).manifest["tables"]
    for table in dictionary["tables"]:
        if table["parquet_file"] is None:
            continue
        published = {c["name"]: c["type"] for c in manifest[table["name"]]["schema"]}
        documented = {c["name"]: c["parquet_type"] for c in table["columns"]}
        assert documented == published, table["name"]


def test_the_command_writes_markdown_and_json(tmp_path, dictionary):
    call_command("data_dictionary", output_dir=tmp_path, stdout=io.StringIO())
    assert json.loads((tmp_path / "data_dictionary.json").read_text(encoding="utf-8")) == dictionary
    markdown = (tmp_path / "data_dictionary.md").read_text(encoding="utf-8")
    assert markdown == render_markdown(dictionary)
    for table in dictionary["tables"]:
        assert f"\n### {table['name']}\n" in markdown
    assert "| `fact_sales.date_key` | `dim_date.date_key` | many-to-one | single |" in markdown
    assert (
        "| `total` |  | Order total, BRL. | DecimalField | numeric(14, 2) | decimal | decimal128(19, 2) | Fixed decimal number | no |"
        in markdown
    )


def test_the_check_option_passes_when_everything_is_documented():
    call_command("data_dictionary", check=True, stdout=io.StringIO())


def test_the_check_option_fails_naming_what_is_undocumented(monkeypatch):
    monkeypatch.setattr(
        "dw_analytics.warehouse.management.commands.data_dictionary.undocumented_columns",
        lambda dictionary: ["fact_sales.total"],
    )
    with pytest.raises(CommandError, match=r"Undocumented .*fact_sales\.total"):
        call_command("data_dictionary", check=True)


def test_the_committed_docs_are_up_to_date(dictionary):
    committed = ROOT / "docs" / "data_dictionary.json"
    assert json.loads(committed.read_text(encoding="utf-8")) == dictionary, (
        "docs/data_dictionary.* are stale: run `python manage.py data_dictionary`"
    )
    assert (ROOT / "docs" / "data_dictionary.md").read_text(encoding="utf-8") == render_markdown(dictionary)


def test_the_power_bi_guide_lists_every_published_column_with_its_type_and_every_relationship(dictionary):
    guide = (ROOT / "docs" / "powerbi.md").read_text(encoding="utf-8")
    for row in powerbi_type_rows(dictionary):
        assert row in guide, f"docs/powerbi.md §4 is stale; expected the row:\n{row}"
    for relationship in dictionary["relationships"]:
        many, one = (f"`{t}[{c}]`" for t, c in (side.split(".") for side in (relationship["from"], relationship["to"])))
        assert f"| {many} | {one} | many-to-one | single |" in guide
