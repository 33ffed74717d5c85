"""The seed's `etl` pipeline: valor x 1.1 (half-even), date in the business zone, each row once."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from dw_analytics.core.api import run
from dw_analytics.sales.models import Destino, FonteExterna

SP = dt.timezone(dt.timedelta(hours=-3))


def fonte(id_externo: str, valor: str, when: dt.datetime, processado: bool = False) -> FonteExterna:
    return FonteExterna.objects.create(id_externo=id_externo, valor=Decimal(valor), data=when, processado=processado)


@pytest.mark.django_db
def test_etl_uplifts_values_rounds_half_even_and_keeps_the_local_date():
    fonte("A", "10.05", dt.datetime(2026, 3, 1, 12, 0, tzinfo=SP))
    fonte("B", "10.15", dt.datetime(2026, 3, 1, 23, 30, tzinfo=SP))  # 02:30 UTC on the 2nd
    fonte("C", "0.00", dt.datetime(2026, 1, 1, 0, 0, tzinfo=SP))
    fonte("D", "99.99", dt.datetime(2026, 1, 1, tzinfo=SP), processado=True)

    log = run("etl")

    assert sorted(Destino.objects.values_list("id_externo", "valor", "data")) == [
        ("A", Decimal("11.06"), dt.date(2026, 3, 1)),  # 11.055 -> 11.06
        ("B", Decimal("11.16"), dt.date(2026, 3, 1)),  # 11.165 -> 11.16
        ("C", Decimal("0.00"), dt.date(2026, 1, 1)),
    ]
    assert (log.n_processed, log.n_inserted, log.n_errors) == (3, 3, 0)
    assert not FonteExterna.objects.filter(processado=False).exists()


@pytest.mark.django_db
def test_running_etl_twice_processes_each_source_row_once():
    for i in range(25):
        fonte(f"E{i:03d}", f"{i}.10", dt.datetime(2026, 2, 1, tzinfo=SP))

    first = run("etl", chunksize=10)
    second = run("etl", chunksize=10)

    assert (first.n_processed, first.n_inserted) == (25, 25)
    assert (second.n_processed, second.n_inserted, second.n_updated) == (0, 0, 0)
    assert Destino.objects.count() == 25
    assert Destino.objects.get(id_externo="E012").valor == Decimal("13.31")  # 12.10 x 1.1


@pytest.mark.django_db
def test_a_source_row_reset_to_unprocessed_is_upserted_not_duplicated():
    row = fonte("X", "1.00", dt.datetime(2026, 2, 1, tzinfo=SP))
    run("etl")
    FonteExterna.objects.filter(pk=row.pk).update(processado=False, valor=Decimal("2.00"))

    log = run("etl")

    assert (log.n_inserted, log.n_updated) == (0, 1)
    assert list(Destino.objects.values_list("id_externo", "valor")) == [("X", Decimal("2.20"))]
