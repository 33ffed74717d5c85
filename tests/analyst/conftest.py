"""Fixtures of the analyst-side tests: a small demo shop and its nightly refresh."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db.models import BigIntegerField, F, Sum
from django.db.models.functions import Cast, Round

from dw_analytics.core.api import run
from dw_analytics.core.registry import all_pipelines, unregister
from dw_analytics.sales.services import demo_data_create

# Far enough in the past that every demo order's last change is too (the nightly
# run only takes changes older than DW_WATERMARK_LAG_S).
SHOP_END = dt.date(2026, 6, 30)


@pytest.fixture
def shop(db):
    """A demo shop of 400 orders over one year (every run of it is identical)."""
    return demo_data_create(orders=400, seed=7, end=SHOP_END, years=1)


@pytest.fixture
def nightly(shop, output_dir):
    """The shop after a nightly run: warehouse tables, Parquet snapshot, Excel report."""
    return run("nightly")


@pytest.fixture
def prototypes():
    """Unregister the notebook prototypes a test registers."""
    before = set(all_pipelines())
    yield
    for name in set(all_pipelines()) - before:
        unregister(name)


def sql_cents(queryset, column: str) -> Decimal:
    """SUM(column) by the database in integer cents (exact on SQLite too)."""
    cents = queryset.aggregate(c=Sum(Cast(Round(F(column) * 100), BigIntegerField())))["c"]
    return Decimal(cents or 0).scaleb(-2)
