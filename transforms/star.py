"""The star schema: dimensions and the sales fact, for Power BI and SQL.

Keys:

* every dimension has an integer surrogate key column ``<name>_key`` and
  keeps the natural key (``categoria_id``, ``produto_id``, ``cliente_id``);
* row ``-1`` (:data:`UNKNOWN_KEY`) of each of ``dim_category``,
  ``dim_product`` and ``dim_customer`` is the "Unknown" member: a fact row
  whose reference is missing or does not exist points to it, so every fact
  row joins to exactly one row of each dimension;
* type-1 dimensions (category, customer) reuse the natural id as surrogate
  key: it is stable across rebuilds, so facts never need re-keying;
* ``dim_product`` is type-2 (slowly changing): a change of a tracked
  attribute (price or category by default) closes the current version
  (``valid_to``, ``is_current``) and opens a new one with the next free key,
  so older facts keep the version -- and category -- they were sold under;
* ``date_key`` is the yyyymmdd integer of the order's date in
  America/Sao_Paulo, the key of :func:`transforms.dates.dim_date`.

Version intervals are half-open, ``valid_from <= t < valid_to``; the first
version of a product is valid from :data:`VALID_FROM_MIN` (so every past
order finds it) and the current one until :data:`VALID_TO_MAX`, both inside
Power BI's 1900-9999 date range.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from transforms._common import (
    BUSINESS_TZ,
    IdLookup,
    as_frames,
    date_key,
    decimal_column,
    exact_money,
    money_cents,
    require_columns,
    utc_us,
)
from transforms.exceptions import SchemaViolation, TransformError

UNKNOWN_KEY = -1
#: largest (product x change instant) grid tabulated for the version lookup
_MAX_VERSION_TABLE = 4_000_000
UNKNOWN_NAME = "Unknown"
TIMESTAMP_DTYPE = pd.DatetimeTZDtype("us", BUSINESS_TZ)
VALID_FROM_MIN = pd.Timestamp("1900-01-01", tz=BUSINESS_TZ).as_unit("us")
VALID_TO_MAX = pd.Timestamp("9999-12-31", tz=BUSINESS_TZ).as_unit("us")
_VALID_FROM_MIN_US = int(VALID_FROM_MIN.asm8.astype(np.int64))
_VALID_TO_MAX_US = int(VALID_TO_MAX.asm8.astype(np.int64))
MONEY = pa.decimal128(14, 2)
#: total - custo of two decimal128(14, 2) values always fits 15 digits
PROFIT = pa.decimal128(15, 2)
#: attributes whose change opens a new dim_product version by default
SCD2_TRACKED = ("preco", "categoria_id")

DIM_CATEGORY_COLUMNS = ["category_key", "categoria_id", "categoria"]
DIM_CUSTOMER_COLUMNS = ["customer_key", "cliente_id", "nome", "email", "cidade", "uf"]
DIM_PRODUCT_COLUMNS = [
    "product_key", "produto_id", "nome", "categoria_id", "categoria", "preco", "custo",
    "valid_from", "valid_to", "is_current",
]  # fmt: skip
FACT_SALES_COLUMNS = [
    "order_id", "date_key", "product_key", "customer_key", "category_key",
    "quantidade", "total", "custo", "lucro",
]  # fmt: skip


# -- type-1 dimensions ------------------------------------------------------
def dim_category(categories: pd.DataFrame) -> pd.DataFrame:
    """The category dimension (type 1), with the Unknown member first.

    Args:
        categories: ``sales.Categoria`` rows: ``id``, ``nome``.

    Returns:
        ``category_key`` int64 (= ``categoria_id``), ``categoria_id`` int64,
        ``categoria`` str; sorted by key, key -1 first.

    Example:
        >>> dim_category(pd.DataFrame({"id": [2], "nome": ["Livros"]})).values.tolist()
        [[-1, -1, 'Unknown'], [2, 2, 'Livros']]
    """
    require_columns(categories, "categories", ["id", "nome"])
    ids = np.concatenate([[UNKNOWN_KEY], categories["id"].to_numpy(np.int64)])
    names = np.concatenate([[UNKNOWN_NAME], categories["nome"].to_numpy(object)])
    frame = pd.DataFrame({"category_key": ids, "categoria_id": ids, "categoria": pd.array(names, dtype="str")})
    return frame.sort_values("category_key", kind="stable", ignore_index=True)


def dim_customer(customers: pd.DataFrame) -> pd.DataFrame:
    """The customer dimension (type 1), with the Unknown member first.

    The Unknown member's ``nome`` and ``cidade`` read "Unknown"; its
    ``email`` and ``uf`` are null (``uf`` is a 2-letter code, ``email`` unique).

    Args:
        customers: ``sales.Cliente`` rows: ``id``, ``nome``, ``email``, ``cidade``, ``uf``.

    Returns:
        ``customer_key`` int64 (= ``cliente_id``), ``cliente_id`` int64,
        ``nome``, ``email``, ``cidade``, ``uf`` str; sorted by key.

    Example:
        >>> c = pd.DataFrame({"id": [5], "nome": ["Ana"], "email": ["a@x.br"], "cidade": ["Recife"], "uf": ["PE"]})
        >>> dim_customer(c)["customer_key"].tolist()
        [-1, 5]
    """
    columns = ["nome", "email", "cidade", "uf"]
    require_columns(customers, "customers", ["id", *columns])
    ids = np.concatenate([[UNKNOWN_KEY], customers["id"].to_numpy(np.int64)])
    unknown = {"nome": UNKNOWN_NAME, "email": None, "cidade": UNKNOWN_NAME, "uf": None}
    frame = pd.DataFrame(
        {"customer_key": ids, "cliente_id": ids}
        | {c: pd.array(np.concatenate([[unknown[c]], customers[c].to_numpy(object)]), dtype="str") for c in columns}
    )
    return frame.sort_values("customer_key", kind="stable", ignore_index=True)


# -- type-2 product dimension -------------------------------------------------
def dim_product(
    products: pd.DataFrame,
    categories: pd.DataFrame,
    previous: pd.DataFrame | None = None,
    *,
    as_of: pd.Timestamp | str | None = None,
    tracked: Sequence[str] = SCD2_TRACKED,
) -> pd.DataFrame:
    """The product dimension, type-2 over ``tracked`` attributes, category denormalized.

    Without ``previous`` every product gets one version, keys 1..n in
    ``produto_id`` order, valid from :data:`VALID_FROM_MIN`. With the
    ``previous`` dim_product (the last build):

    * versions of the previous build keep their keys and intervals;
    * a product whose ``tracked`` attributes changed gets its current version
      closed at the change time and a new version (next free key) valid from
      then; the change time is the product's ``atualizado_em`` (when the row
      was last saved), or ``as_of`` when the input has no such column;
    * a new product gets a first version valid from :data:`VALID_FROM_MIN`;
    * a product gone from ``products`` keeps its versions unchanged;
    * untracked attributes (``nome``, ``custo``) and the category name are
      type 1: every version shows the latest value.

    Args:
        products: ``sales.Produto`` rows: ``id``, ``nome``, ``categoria_id``,
            ``preco``, ``custo`` and optionally ``atualizado_em``.
        categories: ``sales.Categoria`` rows: ``id``, ``nome``; a product of an
            unknown category gets the name "Unknown".
        previous: the previous output of this function, or None.
        as_of: change time used when ``products`` has no ``atualizado_em``.
        tracked: attributes whose change opens a new version.

    Returns:
        ``product_key`` int64, ``produto_id`` int64, ``nome`` str,
        ``categoria_id`` int64, ``categoria`` str, ``preco`` and ``custo``
        decimal128(14, 2), ``valid_from`` and ``valid_to``
        datetime64[us, America/Sao_Paulo], ``is_current`` bool; sorted by
        ``product_key``, Unknown member (-1) first.

    Raises:
        SchemaViolation: ``products`` repeats an id, or a change time is not
            after the start of the version it would close.

    Example:
        >>> from decimal import Decimal
        >>> cats = pd.DataFrame({"id": [1], "nome": ["Livros"]})
        >>> money = pd.ArrowDtype(pa.decimal128(14, 2))
        >>> prods = pd.DataFrame({"id": [7], "nome": ["Atlas"], "categoria_id": [1],
        ...     "preco": pd.Series([Decimal("10.00")], dtype=money),
        ...     "custo": pd.Series([Decimal("6.00")], dtype=money)})
        >>> v1 = dim_product(prods, cats)
        >>> raised = prods.assign(preco=pd.Series([Decimal("12.00")], dtype=money))
        >>> v2 = dim_product(raised, cats, v1, as_of="2025-01-01")
        >>> v2[["product_key", "is_current"]].values.tolist()
        [[-1, True], [1, False], [2, True]]
        >>> v2["preco"].tolist()
        [<NA>, Decimal('10.00'), Decimal('12.00')]
    """
    required = ["id", "nome", "categoria_id", "preco", "custo"]
    require_columns(products, "products", required)
    require_columns(categories, "categories", ["id", "nome"])
    unknown_tracked = [c for c in tracked if c not in required]
    if unknown_tracked:
        raise TransformError(f"dim_product: cannot track {unknown_tracked}; choose among {required[1:]}")
    snapshot = _product_snapshot(products)
    if previous is None or not (previous["product_key"] != UNKNOWN_KEY).any():
        versions = snapshot.assign(
            product_key=np.arange(1, len(snapshot) + 1, dtype=np.int64),
            valid_from=_VALID_FROM_MIN_US,
            valid_to=_VALID_TO_MAX_US,
            is_current=True,
        )
    else:
        if "atualizado_em" in products.columns:
            change_time = utc_us(products["atualizado_em"])
        elif as_of is not None:
            change_time = np.full(len(products), _as_utc_us(as_of), dtype=np.int64)
        else:
            raise TransformError(
                "dim_product needs the products' 'atualizado_em' column or an as_of time to date a change",
                table="products",
                column="atualizado_em",
            )
        snapshot["change_time"] = change_time[np.argsort(products["id"].to_numpy(np.int64), kind="stable")]
        versions = _next_versions(snapshot, _previous_versions(previous), list(tracked))
    return _product_frame(versions, categories)


def _product_snapshot(products: pd.DataFrame) -> pd.DataFrame:
    """The products as plain numpy columns (prices in cents), sorted by id."""
    ids = products["id"].to_numpy(np.int64)
    duplicated = pd.Series(ids).duplicated()
    if duplicated.any():
        raise SchemaViolation.for_values("products", "id", "unique", np.unique(ids[duplicated.to_numpy()]))
    preco, preco_null = money_cents(products, "preco", "products")
    custo, custo_null = money_cents(products, "custo", "products")
    frame = pd.DataFrame(
        {
            "produto_id": ids,
            "nome": products["nome"].to_numpy(object),
            "categoria_id": products["categoria_id"].to_numpy(np.int64),
            "preco": np.where(preco_null, np.iinfo(np.int64).min, preco),
            "custo": np.where(custo_null, np.iinfo(np.int64).min, custo),
        }
    )
    return frame.sort_values("produto_id", kind="stable", ignore_index=True)


def _previous_versions(previous: pd.DataFrame) -> pd.DataFrame:
    """A previous dim_product (from this function or read back from storage) as plain columns."""
    require_columns(previous, "previous dim_product", DIM_PRODUCT_COLUMNS)
    previous = previous[previous["product_key"].to_numpy(np.int64) != UNKNOWN_KEY]
    preco, preco_null = money_cents(previous, "preco", "previous dim_product")
    custo, custo_null = money_cents(previous, "custo", "previous dim_product")
    return pd.DataFrame(
        {
            "produto_id": previous["produto_id"].to_numpy(np.int64),
            "nome": previous["nome"].to_numpy(object),
            "categoria_id": previous["categoria_id"].to_numpy(np.int64),
            "preco": np.where(preco_null, np.iinfo(np.int64).min, preco),
            "custo": np.where(custo_null, np.iinfo(np.int64).min, custo),
            "product_key": previous["product_key"].to_numpy(np.int64),
            "valid_from": utc_us(previous["valid_from"]),
            "valid_to": utc_us(previous["valid_to"]),
            "is_current": previous["is_current"].to_numpy(bool),
        }
    )


def _next_versions(snapshot: pd.DataFrame, previous: pd.DataFrame, tracked: list[str]) -> pd.DataFrame:
    """Previous versions plus the versions the snapshot opens (see :func:`dim_product`)."""
    current = previous.loc[previous["is_current"], ["produto_id", "product_key", "valid_from", *tracked]]
    merged = snapshot.merge(current, on="produto_id", how="left", suffixes=("", "_prev"), validate="1:1")
    is_new = merged["product_key"].isna().to_numpy()
    changed = np.zeros(len(merged), dtype=bool)
    for column in tracked:
        changed |= merged[column].to_numpy() != merged[f"{column}_prev"].to_numpy()
    changed &= ~is_new
    change_time = merged["change_time"].to_numpy(np.int64)
    too_early = changed & (change_time <= merged["valid_from"].fillna(0).to_numpy(np.int64))
    if too_early.any():
        raise SchemaViolation.for_values(
            "products",
            "atualizado_em",
            "a changed product's atualizado_em is after its current version's valid_from",
            merged.loc[too_early, "produto_id"].tolist(),
        )
    closing = pd.Series(change_time[changed], index=merged.loc[changed, "product_key"].to_numpy(np.int64))
    previous = previous.copy()
    closed = previous["product_key"].isin(closing.index).to_numpy()
    previous.loc[closed, "valid_to"] = closing.reindex(previous.loc[closed, "product_key"]).to_numpy()
    previous.loc[closed, "is_current"] = False
    # Type 1: untracked attributes follow the latest snapshot on every version.
    latest = snapshot.set_index("produto_id")
    for column in [c for c in ("nome", "categoria_id", "preco", "custo") if c not in tracked]:
        mapped = previous["produto_id"].map(latest[column])
        has_latest = mapped.notna().to_numpy()
        values = previous[column].to_numpy(object).copy()
        values[has_latest] = mapped.to_numpy(object)[has_latest]
        previous[column] = pd.Series(values, index=previous.index).astype(previous[column].dtype)
    opened = merged.loc[is_new | changed, list(snapshot.columns)].copy()
    next_key = int(previous["product_key"].max()) + 1 if len(previous) else 1
    opened["product_key"] = np.arange(next_key, next_key + len(opened), dtype=np.int64)
    opened["valid_from"] = np.where(is_new[is_new | changed], _VALID_FROM_MIN_US, change_time[is_new | changed])
    opened["valid_to"] = _VALID_TO_MAX_US
    opened["is_current"] = True
    return pd.concat([previous, opened.drop(columns="change_time")], ignore_index=True)


def _product_frame(versions: pd.DataFrame, categories: pd.DataFrame) -> pd.DataFrame:
    """The typed dim_product frame from plain version columns, with the Unknown member."""
    versions = versions.sort_values("product_key", kind="stable", ignore_index=True)
    category_names = pd.Series(categories["nome"].to_numpy(object), index=categories["id"].to_numpy(np.int64))
    names = versions["categoria_id"].map(category_names).fillna(UNKNOWN_NAME).to_numpy(object)
    null_cents = np.iinfo(np.int64).min

    def money(column: str) -> pd.arrays.ArrowExtensionArray:
        cents = np.concatenate([[null_cents], versions[column].to_numpy(np.int64)])
        return decimal_column(cents, 14, 2, null_mask=cents == null_cents)

    def timestamps(column: str, unknown: pd.Timestamp) -> pd.DatetimeIndex:
        values = np.concatenate([[int(unknown.asm8.astype(np.int64))], versions[column].to_numpy(np.int64)])
        return pd.DatetimeIndex(values.astype("datetime64[us]")).tz_localize("UTC").tz_convert(BUSINESS_TZ)

    return pd.DataFrame(
        {
            "product_key": np.concatenate([[UNKNOWN_KEY], versions["product_key"].to_numpy(np.int64)]),
            "produto_id": np.concatenate([[UNKNOWN_KEY], versions["produto_id"].to_numpy(np.int64)]),
            "nome": pd.array(np.concatenate([[UNKNOWN_NAME], versions["nome"].to_numpy(object)]), dtype="str"),
            "categoria_id": np.concatenate([[UNKNOWN_KEY], versions["categoria_id"].to_numpy(np.int64)]),
            "categoria": pd.array(np.concatenate([[UNKNOWN_NAME], names]), dtype="str"),
            "preco": money("preco"),
            "custo": money("custo"),
            "valid_from": timestamps("valid_from", VALID_FROM_MIN),
            "valid_to": timestamps("valid_to", VALID_TO_MAX),
            "is_current": np.concatenate([[True], versions["is_current"].to_numpy(bool)]),
        }
    )


def _as_utc_us(moment: pd.Timestamp | str) -> int:
    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize(BUSINESS_TZ)
    return int(stamp.as_unit("us").asm8.astype(np.int64))


# -- the fact -------------------------------------------------------------------
@dataclass(frozen=True)
class _FactKeys:
    """The dimension lookups fact_sales needs, built once for all chunks."""

    products: IdLookup  # produto_id -> position in product_ids
    first_version: np.ndarray  # per product position: index of its first version
    boundaries: np.ndarray  # sorted distinct valid_from instants (us)
    version_code: np.ndarray  # per version: product position * (len(boundaries) + 1) + boundary rank
    version_valid_to: np.ndarray
    version_product_key: np.ndarray
    version_category_key: np.ndarray
    customers: IdLookup
    customer_keys: np.ndarray
    _table: np.ndarray | None = None  # filled on first use by _version_of_code

    @classmethod
    def build(cls, dim_product: pd.DataFrame, dim_customer: pd.DataFrame, dim_category: pd.DataFrame) -> _FactKeys:
        require_columns(
            dim_product,
            "dim_product",
            ["product_key", "produto_id", "categoria_id", "valid_from", "valid_to"],
        )
        require_columns(dim_customer, "dim_customer", ["customer_key", "cliente_id"])
        require_columns(dim_category, "dim_category", ["category_key", "categoria_id"])
        versions = pd.DataFrame(
            {
                "produto_id": dim_product["produto_id"].to_numpy(np.int64),
                "product_key": dim_product["product_key"].to_numpy(np.int64),
                "categoria_id": dim_product["categoria_id"].to_numpy(np.int64),
                "valid_from": utc_us(dim_product["valid_from"]),
                "valid_to": utc_us(dim_product["valid_to"]),
            }
        )
        versions = versions[versions["product_key"] != UNKNOWN_KEY]
        versions = versions.sort_values(["produto_id", "valid_from"], kind="stable", ignore_index=True)
        product_ids, first_version = np.unique(versions["produto_id"].to_numpy(), return_index=True)
        position = np.repeat(np.arange(len(product_ids)), np.diff(np.append(first_version, len(versions))))
        boundaries = np.unique(versions["valid_from"].to_numpy())
        rank = np.searchsorted(boundaries, versions["valid_from"].to_numpy(), side="right")
        categories = IdLookup(dim_category["categoria_id"].to_numpy(np.int64))
        category_keys = dim_category["category_key"].to_numpy(np.int64)
        category_position = categories.positions(versions["categoria_id"].to_numpy())
        customer_ids = dim_customer["cliente_id"].to_numpy(np.int64)
        known_customer = dim_customer["customer_key"].to_numpy(np.int64) != UNKNOWN_KEY
        return cls(
            products=IdLookup(product_ids),
            first_version=first_version.astype(np.int64),
            boundaries=boundaries,
            version_code=position * (len(boundaries) + 1) + rank,
            version_valid_to=versions["valid_to"].to_numpy(),
            version_product_key=versions["product_key"].to_numpy(),
            version_category_key=np.where(
                category_position >= 0, category_keys[np.maximum(category_position, 0)], UNKNOWN_KEY
            ),
            customers=IdLookup(customer_ids[known_customer]),
            customer_keys=dim_customer["customer_key"].to_numpy(np.int64)[known_customer],
        )

    def _version_of_code(self, code: np.ndarray) -> np.ndarray:
        """Version index of (product position, boundary rank) codes, -1 when none.

        With few change instants the (position, rank) grid is small: tabulate
        it once and gather, instead of a binary search per order.
        """
        width = len(self.boundaries) + 1
        n_codes = (len(self.first_version)) * width
        if n_codes <= _MAX_VERSION_TABLE:
            if self._table is None:
                grid = np.arange(n_codes, dtype=np.int64)
                object.__setattr__(self, "_table", self._search_versions(grid, width))
            return self._table[code]
        return self._search_versions(code, width)

    def _search_versions(self, code: np.ndarray, width: int) -> np.ndarray:
        version = np.searchsorted(self.version_code, code, side="right") - 1
        same_product = self.version_code[np.maximum(version, 0)] // width == code // width
        return np.where((version >= 0) & same_product, version, -1)

    def product_version(self, produto_id: np.ndarray, sold_at_us: np.ndarray) -> np.ndarray:
        """Index of the version of each product valid at each instant, -1 when none."""
        if len(self.version_code) == 0:
            return np.full(len(produto_id), -1, dtype=np.int64)
        position = self.products.positions(produto_id)
        found = position >= 0
        if len(self.boundaries) == 1:
            # Every version starts at the same instant: one version per product.
            version = np.where(found, self.first_version[np.maximum(position, 0)], -1)
            found &= sold_at_us >= self.boundaries[0]
        else:
            code = position * (len(self.boundaries) + 1) + np.searchsorted(self.boundaries, sold_at_us, side="right")
            found &= code >= 0
            version = self._version_of_code(np.where(found, code, 0))
            found &= version >= 0
        version = np.where(found, version, 0)
        found &= sold_at_us < self.version_valid_to[version]
        return np.where(found, version, -1)


def fact_sales_chunks(
    orders: pd.DataFrame | Iterable[pd.DataFrame],
    dim_product: pd.DataFrame,
    dim_customer: pd.DataFrame,
    dim_category: pd.DataFrame,
) -> Iterator[pd.DataFrame]:
    """Stream the sales fact, one fact chunk per order chunk (see :func:`fact_sales`).

    Each order is keyed independently of the others, so the chunks
    concatenated equal the fact built from all orders at once.

    Example:
        >>> chunks = fact_sales_chunks(iter([orders_a, orders_b]), dp, dc, dk)  # doctest: +SKIP
        >>> pd.concat(chunks, ignore_index=True)  # doctest: +SKIP
    """
    keys = _FactKeys.build(dim_product, dim_customer, dim_category)
    for chunk in as_frames(orders):
        yield _fact_chunk(chunk, keys)


def fact_sales(
    orders: pd.DataFrame | Iterable[pd.DataFrame],
    dim_product: pd.DataFrame,
    dim_customer: pd.DataFrame,
    dim_category: pd.DataFrame,
) -> pd.DataFrame:
    """The sales fact: one row per order, surrogate keys to every dimension.

    ``product_key`` is the ``dim_product`` version valid when the order was
    placed (``valid_from <= criado_em < valid_to``) and ``category_key`` the
    category of that version. A reference that has no dimension row
    (unknown product, customer or category) gets -1, the Unknown member.

    Args:
        orders: ``sales.Pedido`` rows, one frame or an iterable of chunks:
            ``id``, ``cliente_id``, ``produto_id``, ``quantidade``, ``total``,
            ``custo`` (decimal128), ``criado_em`` (tz-aware; naive is taken
            as America/Sao_Paulo).
        dim_product: output of :func:`dim_product`.
        dim_customer: output of :func:`dim_customer`.
        dim_category: output of :func:`dim_category`.

    Returns:
        ``order_id``, ``date_key``, ``product_key``, ``customer_key``,
        ``category_key``, ``quantidade`` int64; ``total``, ``custo``
        decimal128(14, 2); ``lucro`` (= total - custo) decimal128(15, 2).
        Rows in input order, RangeIndex.

    Example:
        >>> fact = fact_sales(orders, dim_product(products, categories),
        ...                   dim_customer(customers), dim_category(categories))  # doctest: +SKIP
        >>> fact.columns.tolist()  # doctest: +SKIP
        ['order_id', 'date_key', 'product_key', 'customer_key', 'category_key', 'quantidade', 'total', 'custo', 'lucro']
    """
    chunks = list(fact_sales_chunks(orders, dim_product, dim_customer, dim_category))
    if len(chunks) == 1:
        return chunks[0]
    if not chunks:
        return _fact_chunk(_EMPTY_ORDERS, _FactKeys.build(dim_product, dim_customer, dim_category))
    return pd.concat(chunks, ignore_index=True)


ORDER_COLUMNS = ["id", "cliente_id", "produto_id", "quantidade", "total", "custo", "criado_em"]
_EMPTY_ORDERS = pd.DataFrame(
    {
        "id": np.array([], np.int64),
        "cliente_id": np.array([], np.int64),
        "produto_id": np.array([], np.int64),
        "quantidade": np.array([], np.int64),
        "total": pd.array([], dtype=pd.ArrowDtype(MONEY)),
        "custo": pd.array([], dtype=pd.ArrowDtype(MONEY)),
        "criado_em": pd.DatetimeIndex([], dtype=TIMESTAMP_DTYPE),
    }
)


def _fact_chunk(orders: pd.DataFrame, keys: _FactKeys) -> pd.DataFrame:
    require_columns(orders, "orders", ORDER_COLUMNS)
    sold_at = orders["criado_em"]
    null_time = sold_at.isna().to_numpy()
    sold_at_us = utc_us(sold_at.fillna(VALID_FROM_MIN) if null_time.any() else sold_at)
    version = keys.product_version(_int_ids(orders, "produto_id"), sold_at_us)
    version = np.where(null_time, -1, version)
    customer = keys.customers.positions(_int_ids(orders, "cliente_id"))
    total = exact_money(orders, "total")
    custo = exact_money(orders, "custo")
    return pd.DataFrame(
        {
            "order_id": orders["id"].to_numpy(np.int64),
            "date_key": date_key(sold_at),
            "product_key": _take(keys.version_product_key, version),
            "customer_key": _take(keys.customer_keys, customer),
            "category_key": _take(keys.version_category_key, version),
            "quantidade": orders["quantidade"].to_numpy(np.int64),
            "total": pd.arrays.ArrowExtensionArray(total),
            "custo": pd.arrays.ArrowExtensionArray(custo),
            "lucro": pd.arrays.ArrowExtensionArray(pc.subtract(total, custo).cast(PROFIT)),
        }
    )


def _take(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``values[positions]``, with :data:`UNKNOWN_KEY` where a position is -1."""
    if len(values) == 0:
        return np.full(len(positions), UNKNOWN_KEY, dtype=np.int64)
    return np.where(positions >= 0, values[np.maximum(positions, 0)], UNKNOWN_KEY)


def _int_ids(orders: pd.DataFrame, column: str) -> np.ndarray:
    """Reference ids as int64; a null reference becomes -1, which no dimension row has."""
    ids = orders[column]
    if ids.isna().any():
        ids = ids.fillna(UNKNOWN_KEY)
    return ids.to_numpy(np.int64)
