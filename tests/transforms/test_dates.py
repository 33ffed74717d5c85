"""The date dimension and the Brazilian holiday calendar."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal

from tests.transforms.frames import dates, orders
from transforms._common import days_to_yyyymmdd
from transforms.dates import (
    DIM_DATE_COLUMNS,
    brazilian_holidays,
    dim_date,
    easter_sunday,
    order_date_range,
)


def test_dim_date_covers_whole_years_with_one_row_per_day():
    result = dim_date("2024-03-10", "2025-05-02")
    assert len(result) == 366 + 365
    assert result["date_key"].iloc[0] == 20240101 and result["date_key"].iloc[-1] == 20251231
    assert list(result.columns) == DIM_DATE_COLUMNS
    assert result["date_key"].is_unique and result["date_key"].is_monotonic_increasing


def test_dim_date_first_days_of_2024():
    result = dim_date("2024-01-01", "2024-01-01").head(3)
    expected = pd.DataFrame(
        {
            "date_key": [20240101, 20240102, 20240103],
            "date": dates("2024-01-01", "2024-01-02", "2024-01-03"),
            "year": [2024] * 3,
            "quarter": [1] * 3,
            "month": [1] * 3,
            "month_name_pt": pd.array(["janeiro"] * 3, dtype="str"),
            "month_name_en": pd.array(["January"] * 3, dtype="str"),
            "day": [1, 2, 3],
            "day_of_year": [1, 2, 3],
            "weekday": [1, 2, 3],
            "weekday_name_pt": pd.array(["segunda-feira", "terça-feira", "quarta-feira"], dtype="str"),
            "weekday_name_en": pd.array(["Monday", "Tuesday", "Wednesday"], dtype="str"),
            "iso_year": [2024] * 3,
            "iso_week": [1] * 3,
            "is_weekend": [False] * 3,
            "is_holiday": [True, False, False],
            "is_optional_holiday": [False] * 3,
            "holiday_name": pd.array(["Confraternização Universal", None, None], dtype="str"),
            "is_business_day": [False, True, True],
        }
    )
    assert_frame_equal(result, expected)


def test_calendar_attributes_agree_with_python_datetime():
    result = dim_date("2020-01-01", "2027-12-31")
    python = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(len(result))]
    assert result["date"].tolist() == python
    assert result["weekday"].tolist() == [d.isoweekday() for d in python]
    assert result["iso_week"].tolist() == [d.isocalendar()[1] for d in python]
    assert result["iso_year"].tolist() == [d.isocalendar()[0] for d in python]
    assert result["day_of_year"].tolist() == [d.timetuple().tm_yday for d in python]
    assert result["is_weekend"].tolist() == [d.isoweekday() >= 6 for d in python]


@pytest.mark.parametrize(
    ("year", "easter"),
    [
        (2000, "2000-04-23"),
        (2019, "2019-04-21"),
        (2024, "2024-03-31"),
        (2025, "2025-04-20"),
        (2038, "2038-04-25"),
    ],
)
def test_easter_sunday(year, easter):
    assert str(easter_sunday([year])[0]) == easter


def test_holidays_of_2024_with_movable_days_from_easter():
    holidays = brazilian_holidays(2024, 2024)
    expected = pd.DataFrame(
        {
            "date": dates(
                "2024-01-01", "2024-02-12", "2024-02-13", "2024-03-29", "2024-04-21", "2024-05-01", "2024-05-30",
                "2024-09-07", "2024-10-12", "2024-11-02", "2024-11-15", "2024-11-20", "2024-12-25",
            ),
            "holiday_name": pd.array(
                [
                    "Confraternização Universal", "Carnaval (segunda-feira)", "Carnaval (terça-feira)",
                    "Paixão de Cristo", "Tiradentes", "Dia do Trabalho", "Corpus Christi",
                    "Independência do Brasil", "Nossa Senhora Aparecida", "Finados",
                    "Proclamação da República", "Dia Nacional de Zumbi e da Consciência Negra", "Natal",
                ],
                dtype="str",
            ),
            "is_holiday": [True, False, False, True, True, True, False, True, True, True, True, True, True],
        }
    )  # fmt: skip
    assert_frame_equal(holidays, expected)


def test_consciencia_negra_is_national_only_from_2024():
    result = dim_date("2023-01-01", "2024-12-31").set_index("date_key")
    assert not result.loc[20231120, "is_holiday"] and pd.isna(result.loc[20231120, "holiday_name"])
    assert result.loc[20241120, "is_holiday"]


def test_ponto_facultativo_days_are_business_days_flagged_apart():
    result = dim_date("2025-01-01", "2025-12-31").set_index("date_key")
    for key in (20250303, 20250304, 20250619):  # Carnaval Monday/Tuesday, Corpus Christi
        assert result.loc[key, "is_optional_holiday"] and not result.loc[key, "is_holiday"]
        assert result.loc[key, "is_business_day"]
    assert result.loc[20250418, "is_holiday"] and not result.loc[20250418, "is_business_day"]  # Good Friday
    assert result["is_holiday"].sum() == 10 and result["is_optional_holiday"].sum() == 3


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)))
def test_days_to_yyyymmdd_matches_the_calendar(day):
    days = (day - dt.date(1970, 1, 1)).days
    assert days_to_yyyymmdd(np.array([days]))[0] == day.year * 10_000 + day.month * 100 + day.day


def test_order_date_range_uses_local_dates():
    assert order_date_range(orders()) == (dt.date(2024, 3, 1), dt.date(2025, 1, 1))
    chunks = [orders().iloc[:2], orders().iloc[2:2], orders().iloc[2:]]
    assert order_date_range(chunks) == (dt.date(2024, 3, 1), dt.date(2025, 1, 1))
    assert order_date_range(orders().iloc[:0]) is None


def test_last_day_before_first_day_is_refused():
    with pytest.raises(ValueError, match="before"):
        dim_date("2025-01-01", "2024-01-01")
