"""The date dimension and Brazilian national holidays.

Holidays follow the federal calendar (Lei 662/1949, Lei 6.802/1980,
Lei 14.759/2023 and the yearly federal portaria):

* ``is_holiday``: national holidays -- 1 Jan, Paixão de Cristo (Good Friday,
  Easter - 2), 21 Apr, 1 May, 7 Sep, 12 Oct, 2 Nov, 15 Nov, 20 Nov (only from
  2024, Lei 14.759/2023) and 25 Dec.
* ``is_optional_holiday``: *ponto facultativo* days that most businesses
  close but the law does not impose -- Carnaval Monday and Tuesday
  (Easter - 48 and - 47) and Corpus Christi (Easter + 60). They are flagged
  separately so a report can choose; half days (Ash Wednesday until 14h,
  24 and 31 Dec afternoon) are not flagged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from transforms._common import US_PER_DAY, as_frames, days_to_yyyymmdd, local_wall_us

MONTH_NAMES_PT = [
    "janeiro", "fevereiro", "março", "abril", "maio", "junho",
    "julho", "agosto", "setembro", "outubro", "novembro", "dezembro",
]  # fmt: skip
MONTH_NAMES_EN = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]  # fmt: skip
#: ISO weekday 1 (Monday) .. 7 (Sunday)
WEEKDAY_NAMES_PT = [
    "segunda-feira",
    "terça-feira",
    "quarta-feira",
    "quinta-feira",
    "sexta-feira",
    "sábado",
    "domingo",
]
WEEKDAY_NAMES_EN = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

#: (month, day, name, first year it applies)
FIXED_HOLIDAYS = [
    (1, 1, "Confraternização Universal", 1),
    (4, 21, "Tiradentes", 1),
    (5, 1, "Dia do Trabalho", 1),
    (9, 7, "Independência do Brasil", 1),
    (10, 12, "Nossa Senhora Aparecida", 1),
    (11, 2, "Finados", 1),
    (11, 15, "Proclamação da República", 1),
    (11, 20, "Dia Nacional de Zumbi e da Consciência Negra", 2024),
    (12, 25, "Natal", 1),
]
#: (days from Easter Sunday, name, is a national holiday rather than ponto facultativo)
EASTER_HOLIDAYS = [
    (-48, "Carnaval (segunda-feira)", False),
    (-47, "Carnaval (terça-feira)", False),
    (-2, "Paixão de Cristo", True),
    (60, "Corpus Christi", False),
]

DIM_DATE_COLUMNS = [
    "date_key", "date", "year", "quarter", "month", "month_name_pt", "month_name_en", "day",
    "day_of_year", "weekday", "weekday_name_pt", "weekday_name_en", "iso_year", "iso_week",
    "is_weekend", "is_holiday", "is_optional_holiday", "holiday_name", "is_business_day",
]  # fmt: skip


def easter_sunday(years: np.ndarray | list[int]) -> np.ndarray:
    """Gregorian Easter Sunday of each year as ``datetime64[D]`` (Meeus/Jones/Butcher, vectorized).

    Example:
        >>> easter_sunday([2024, 2025]).astype(str).tolist()
        ['2024-03-31', '2025-04-20']
    """
    y = np.asarray(years, dtype=np.int64)
    a = y % 19
    b, c = np.divmod(y, 100)
    d, e = np.divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = np.divmod(c, 4)
    l = (32 + 2 * e + 2 * i - h - k) % 7  # noqa: E741 -- the algorithm's own name
    m = (a + 11 * h + 22 * l) // 451
    month = (h + l - 7 * m + 114) // 31
    day = (h + l - 7 * m + 114) % 31 + 1
    first_of_month = (y - 1970).astype("datetime64[Y]").astype("datetime64[M]") + (month - 1)
    return first_of_month.astype("datetime64[D]") + (day - 1)


def brazilian_holidays(first_year: int, last_year: int) -> pd.DataFrame:
    """National holidays and *ponto facultativo* days of the years ``first_year..last_year``.

    Returns:
        Columns ``date`` (date32), ``holiday_name`` (str) and ``is_holiday``
        (bool: False for ponto facultativo), sorted by date.

    Example:
        >>> h = brazilian_holidays(2024, 2024)
        >>> h.loc[h["holiday_name"] == "Paixão de Cristo", "date"].astype(str).tolist()
        ['2024-03-29']
    """
    years = np.arange(first_year, last_year + 1, dtype=np.int64)
    year_start = (years - 1970).astype("datetime64[Y]").astype("datetime64[D]")
    parts = []
    for month, day, name, since in FIXED_HOLIDAYS:
        applies = years >= since
        dates = year_start[applies].astype("datetime64[M]") + (month - 1)
        parts.append((dates.astype("datetime64[D]") + (day - 1), name, True))
    easter = easter_sunday(years)
    for offset, name, national in EASTER_HOLIDAYS:
        parts.append((easter + np.timedelta64(offset, "D"), name, national))
    frame = pd.DataFrame(
        {
            "date": np.concatenate([d for d, _, _ in parts]),
            "holiday_name": np.concatenate([[n] * len(d) for d, n, _ in parts]),
            "is_holiday": np.concatenate([[h] * len(d) for d, _, h in parts]).astype(bool),
        }
    )
    frame = frame.sort_values(["date", "is_holiday"], ascending=[True, False], kind="stable")
    # Two observances could share a day in theory; keep the national holiday.
    frame = frame.drop_duplicates("date").reset_index(drop=True)
    frame["date"] = pd.arrays.ArrowExtensionArray(pa.array(frame["date"].to_numpy("datetime64[D]")))
    frame["holiday_name"] = frame["holiday_name"].astype("str")
    return frame


def dim_date(first_day: dt.date | str | pd.Timestamp, last_day: dt.date | str | pd.Timestamp) -> pd.DataFrame:
    """The date dimension: one row per day over whole years covering ``first_day..last_day``.

    Whole years (1 Jan of ``first_day``'s year to 31 Dec of ``last_day``'s)
    make it a valid Power BI date table: unique, contiguous, no blanks. It
    therefore has no "unknown" member; ``fact_sales`` never needs one because
    every order has a date (a null ``criado_em`` gets ``date_key`` -1, which the
    referential check then reports).

    Args:
        first_day: the earliest date of the data (e.g. the first order's local date).
        last_day: the latest date of the data.

    Returns:
        Columns (see :data:`DIM_DATE_COLUMNS`): ``date_key`` int64 yyyymmdd,
        ``date`` date32, ``year``, ``quarter``, ``month`` int64, month names
        (pt, en), ``day``, ``day_of_year``, ``weekday`` int64 ISO (1 = Monday),
        weekday names (pt, en), ``iso_year``, ``iso_week`` int64,
        ``is_weekend``, ``is_holiday``, ``is_optional_holiday`` bool,
        ``holiday_name`` str (null on ordinary days), ``is_business_day``
        bool (not a weekend, not a holiday; ponto facultativo counts as a
        business day).

    Example:
        >>> d = dim_date("2024-03-10", "2024-05-02")
        >>> len(d), d["date_key"].iloc[0], d["date_key"].iloc[-1]
        (366, np.int64(20240101), np.int64(20241231))
        >>> d.loc[d["date_key"] == 20241120, ["holiday_name", "is_holiday"]].values.tolist()
        [['Dia Nacional de Zumbi e da Consciência Negra', True]]
    """
    first_year = pd.Timestamp(first_day).year
    last_year = pd.Timestamp(last_day).year
    if last_year < first_year:
        raise ValueError(f"dim_date: last_day {last_day} is before first_day {first_day}")
    start = np.datetime64(f"{first_year:04d}-01-01", "D")
    stop = np.datetime64(f"{last_year + 1:04d}-01-01", "D")
    days = np.arange(start, stop, dtype="datetime64[D]")
    epoch_days = days.astype(np.int64)
    key = days_to_yyyymmdd(epoch_days)
    year, month, day = key // 10_000, key // 100 % 100, key % 100
    weekday = (epoch_days + 3) % 7 + 1  # 1970-01-01 was a Thursday (ISO 4)
    iso = pd.DatetimeIndex(days).isocalendar()
    holidays = brazilian_holidays(first_year, last_year)
    position = np.searchsorted(days, holidays["date"].to_numpy("datetime64[D]"))
    holiday_name = np.full(len(days), None, dtype=object)
    holiday_name[position] = holidays["holiday_name"].to_numpy()
    is_holiday = np.zeros(len(days), dtype=bool)
    is_holiday[position] = holidays["is_holiday"].to_numpy()
    is_optional = np.zeros(len(days), dtype=bool)
    is_optional[position] = ~holidays["is_holiday"].to_numpy()
    is_weekend = weekday >= 6
    return pd.DataFrame(
        {
            "date_key": key,
            "date": pd.arrays.ArrowExtensionArray(pa.array(days)),
            "year": year,
            "quarter": (month - 1) // 3 + 1,
            "month": month,
            "month_name_pt": pd.array(np.array(MONTH_NAMES_PT)[month - 1], dtype="str"),
            "month_name_en": pd.array(np.array(MONTH_NAMES_EN)[month - 1], dtype="str"),
            "day": day,
            "day_of_year": (days - days.astype("datetime64[Y]")).astype(np.int64) + 1,
            "weekday": weekday,
            "weekday_name_pt": pd.array(np.array(WEEKDAY_NAMES_PT)[weekday - 1], dtype="str"),
            "weekday_name_en": pd.array(np.array(WEEKDAY_NAMES_EN)[weekday - 1], dtype="str"),
            "iso_year": iso["year"].to_numpy(np.int64),
            "iso_week": iso["week"].to_numpy(np.int64),
            "is_weekend": is_weekend,
            "is_holiday": is_holiday,
            "is_optional_holiday": is_optional,
            "holiday_name": pd.array(holiday_name, dtype="str"),
            "is_business_day": ~is_weekend & ~is_holiday,
        }
    )


def order_date_range(
    orders: pd.DataFrame | Iterable[pd.DataFrame], column: str = "criado_em"
) -> tuple[dt.date, dt.date] | None:
    """First and last local (America/Sao_Paulo) date of the orders: the span :func:`dim_date` covers.

    Args:
        orders: one frame or an iterable of chunks with a timestamp ``column``.
        column: the timestamp column.

    Returns:
        ``(first, last)`` dates, or None when there is no timestamp at all.

    Example:
        >>> stamps = pd.to_datetime(["2024-12-31 23:30-03:00", "2025-01-01 02:00Z"], utc=True)
        >>> orders = pd.DataFrame({"criado_em": stamps})
        >>> order_date_range(orders)
        (datetime.date(2024, 12, 31), datetime.date(2024, 12, 31))
    """
    first = last = None
    for chunk in as_frames(orders):
        stamps = chunk[column].dropna()
        if len(stamps) == 0:
            continue
        days = np.floor_divide(local_wall_us(stamps), US_PER_DAY)
        low, high = int(days.min()), int(days.max())
        first = low if first is None else min(first, low)
        last = high if last is None else max(last, high)
    if first is None:
        return None
    epoch = dt.date(1970, 1, 1)
    return epoch + dt.timedelta(days=first), epoch + dt.timedelta(days=last)


def outside_python_years(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """True where a date or timestamp falls outside the years 1-9999 (Python's ``datetime`` range).

    Arrow holds such values (a CSV may say ``0000-01-01``), but Python, Django
    and the database drivers cannot. A time-zone-aware timestamp is judged by
    its UTC instant, the value a database stores: a naive ``9999-12-31 23:30``
    in São Paulo is already year 10000 in UTC.

    Example:
        >>> dates = pa.array([dt.date(2026, 1, 1), None], pa.date32())
        >>> outside_python_years(dates).to_pylist()
        [False, None]
    """
    if pa.types.is_timestamp(values.type) and values.type.tz is not None:
        values = values.cast(pa.timestamp(values.type.unit))  # same instants, read as UTC wall time
    years = pc.year(values)
    return pc.or_(pc.less(years, 1), pc.greater(years, 9999))
