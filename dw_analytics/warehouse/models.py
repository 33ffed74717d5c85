"""Warehouse-side models: the run history and the analytics tables."""

from __future__ import annotations

from django.db import models


class PipelineRun(models.Model):
    """One execution of a registered pipeline, recorded even when it fails."""

    class Status(models.TextChoices):
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"
        CANCELLED = "cancelled", "cancelled"

    pipeline = models.CharField(max_length=100, db_index=True, help_text="Registered pipeline name.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING, db_index=True)
    started_at = models.DateTimeField(db_index=True, help_text="When the run started.")
    finished_at = models.DateTimeField(null=True, blank=True, help_text="When the run ended.")
    duration_s = models.FloatField(null=True, blank=True, help_text="Wall-clock seconds.")
    n_processed = models.BigIntegerField(default=0, help_text="Rows processed.")
    n_errors = models.BigIntegerField(default=0, help_text="Rows rejected or quarantined.")
    n_inserted = models.BigIntegerField(default=0, help_text="Rows inserted by the loads.")
    n_updated = models.BigIntegerField(default=0, help_text="Rows updated by the loads.")
    n_deleted = models.BigIntegerField(default=0, help_text="Rows deleted by the loads.")
    peak_rss_mb = models.FloatField(null=True, blank=True, help_text="Peak resident memory of the run, MB.")
    steps = models.JSONField(default=list, blank=True, help_text="Per-step timings: name, duration, rows, memory.")
    parameters = models.JSONField(default=dict, blank=True, help_text="Parameters the run was called with.")
    error = models.TextField(blank=True, default="", help_text="Error type and message of a failed run.")
    traceback = models.TextField(blank=True, default="", help_text="Traceback of a failed run.")
    triggered_by = models.CharField(max_length=150, blank=True, default="", help_text="User or scheduler that asked.")
    # Live status, written from a separate connection while the run goes (PostgreSQL);
    # on SQLite, whose single writer is busy with the run, it lives in a side file.
    current_step = models.CharField(max_length=200, blank=True, default="", help_text="Step running now.")
    rows_done = models.BigIntegerField(default=0, help_text="Rows processed so far.")
    rss_mb = models.FloatField(null=True, blank=True, help_text="Resident memory at the last heartbeat, MB.")
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last live-status update.")
    cancel_requested = models.BooleanField(default=False, help_text="Stop at the next chunk boundary and roll back.")

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["pipeline", "-started_at"], name="run_pipeline_started_idx")]

    def __str__(self) -> str:
        return f"{self.pipeline} #{self.pk} ({self.status})"


class SalesByCategory(models.Model):
    """Orders aggregated by product category, rebuilt by the ``analytics`` pipeline."""

    categoria_id = models.BigIntegerField(unique=True, help_text="Natural key of the category (sales.Categoria.id).")
    categoria = models.CharField(max_length=100, help_text="Category name.")
    total_vendas = models.BigIntegerField(help_text="Number of orders.")
    receita = models.DecimalField(max_digits=18, decimal_places=2, help_text="Sum of order totals, BRL.")
    valor_medio = models.DecimalField(
        max_digits=18, decimal_places=4, help_text="Average order total, BRL, rounded half-even to 4 places."
    )
    lucro = models.DecimalField(max_digits=18, decimal_places=2, help_text="Sum of (total - custo), BRL.")
    margem = models.DecimalField(
        max_digits=9, decimal_places=6, null=True, help_text="lucro / receita, a fraction; null when receita is 0."
    )
    atualizado_em = models.DateTimeField(help_text="When the row was computed.")

    class Meta:
        ordering = ["categoria"]
        verbose_name_plural = "sales by category"


class QuarantinedRow(models.Model):
    """An input row a run could not use, with where it came from and why."""

    run = models.ForeignKey(PipelineRun, on_delete=models.CASCADE, related_name="quarantined_rows")
    file = models.CharField(max_length=500, blank=True, default="", help_text="Source file or table.")
    line = models.BigIntegerField(null=True, blank=True, help_text="Line number in the source file (header = 1).")
    column = models.CharField(max_length=200, blank=True, default="", help_text="Offending column, when known.")
    value = models.TextField(blank=True, default="", help_text="The raw offending value or line.")
    reason = models.TextField(help_text="Why the row was rejected.")

    class Meta:
        ordering = ["run", "id"]


class Watermark(models.Model):
    """How far an incremental source has been read: the last (timestamp, id) loaded."""

    name = models.CharField(max_length=200, unique=True, help_text="Source name, e.g. 'sales.Pedido'.")
    last_updated_at = models.DateTimeField(null=True, blank=True, help_text="Greatest change time loaded.")
    last_id = models.BigIntegerField(null=True, blank=True, help_text="Greatest id at that change time (tie-breaker).")
    updated_at = models.DateTimeField(auto_now=True, help_text="When the watermark last moved.")
    run = models.ForeignKey(
        PipelineRun, null=True, blank=True, on_delete=models.SET_NULL, help_text="Run that moved it last."
    )

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_updated_at} / {self.last_id}"


class PipelineLock(models.Model):
    """The lock row of a running pipeline on databases without advisory locks (SQLite)."""

    pipeline = models.CharField(max_length=100, unique=True, help_text="Locked pipeline name.")
    owner = models.CharField(max_length=200, help_text="host:pid of the process holding the lock.")
    acquired_at = models.DateTimeField(help_text="When the lock was taken.")

    def __str__(self) -> str:
        return f"{self.pipeline} locked by {self.owner}"


# -- the star schema (built by the ``star_schema`` pipeline, read by Power BI) --------------
# Keys are plain integers, not database foreign keys: each table is replaced or
# upserted on its own, and the referential check runs on the frames before loading.

WAREHOUSE_MONEY = {"max_digits": 14, "decimal_places": 2}


class DimDate(models.Model):
    """One row per calendar day over whole years; mark it as the date table in Power BI."""

    date_key = models.IntegerField(primary_key=True, help_text="Surrogate key, yyyymmdd.")
    date = models.DateField(unique=True, help_text="The calendar day.")
    year = models.IntegerField(help_text="Calendar year.")
    quarter = models.IntegerField(help_text="Quarter, 1-4.")
    month = models.IntegerField(help_text="Month number, 1-12.")
    month_name_pt = models.CharField(max_length=20, help_text="Month name in Portuguese.")
    month_name_en = models.CharField(max_length=20, help_text="Month name in English.")
    day = models.IntegerField(help_text="Day of the month.")
    day_of_year = models.IntegerField(help_text="Day of the year, 1-366.")
    weekday = models.IntegerField(help_text="ISO weekday, 1 = Monday.")
    weekday_name_pt = models.CharField(max_length=20, help_text="Weekday name in Portuguese.")
    weekday_name_en = models.CharField(max_length=20, help_text="Weekday name in English.")
    iso_year = models.IntegerField(help_text="ISO 8601 week-numbering year.")
    iso_week = models.IntegerField(help_text="ISO 8601 week number.")
    is_weekend = models.BooleanField(help_text="Saturday or Sunday.")
    is_holiday = models.BooleanField(help_text="Brazilian national holiday.")
    is_optional_holiday = models.BooleanField(help_text="Ponto facultativo (Carnaval, Corpus Christi).")
    holiday_name = models.CharField(
        max_length=100, null=True, blank=True, help_text="Holiday name, null on ordinary days."
    )
    is_business_day = models.BooleanField(help_text="Neither weekend nor national holiday.")

    class Meta:
        db_table = "dw_dim_date"


class DimCategory(models.Model):
    """Product categories (type 1); key -1 is the Unknown member."""

    category_key = models.BigIntegerField(primary_key=True, help_text="Surrogate key (= categoria_id; -1 Unknown).")
    categoria_id = models.BigIntegerField(null=True, help_text="Natural key: sales.Categoria.id.")
    categoria = models.CharField(max_length=100, help_text="Category name.")

    class Meta:
        db_table = "dw_dim_category"


class DimCustomer(models.Model):
    """Customers (type 1); key -1 is the Unknown member."""

    customer_key = models.BigIntegerField(primary_key=True, help_text="Surrogate key (= cliente_id; -1 Unknown).")
    cliente_id = models.BigIntegerField(null=True, help_text="Natural key: sales.Cliente.id.")
    nome = models.CharField(max_length=200, help_text="Customer name.")
    email = models.CharField(max_length=254, null=True, blank=True, help_text="Customer e-mail.")
    cidade = models.CharField(max_length=100, null=True, blank=True, help_text="City.")
    uf = models.CharField(max_length=2, null=True, blank=True, help_text="Brazilian state.")

    class Meta:
        db_table = "dw_dim_customer"


class DimProduct(models.Model):
    """Products with their category denormalized, type-2 history over price and category."""

    product_key = models.BigIntegerField(primary_key=True, help_text="Surrogate key of a product version; -1 Unknown.")
    produto_id = models.BigIntegerField(null=True, db_index=True, help_text="Natural key: sales.Produto.id.")
    nome = models.CharField(max_length=200, help_text="Product name.")
    categoria_id = models.BigIntegerField(null=True, help_text="Category natural key of this version.")
    categoria = models.CharField(max_length=100, help_text="Category name of this version.")
    preco = models.DecimalField(**WAREHOUSE_MONEY, null=True, help_text="List price of this version, BRL.")
    custo = models.DecimalField(**WAREHOUSE_MONEY, null=True, help_text="Unit cost of this version, BRL.")
    valid_from = models.DateTimeField(help_text="Version valid from (inclusive).")
    valid_to = models.DateTimeField(help_text="Version valid until (exclusive); 9999-12-31 when current.")
    is_current = models.BooleanField(help_text="The product's current version.")

    class Meta:
        db_table = "dw_dim_product"


class FactSales(models.Model):
    """One row per order (the grain); surrogate keys to every dimension; additive measures."""

    order_id = models.BigIntegerField(primary_key=True, help_text="Natural key: sales.Pedido.id.")
    date_key = models.IntegerField(db_index=True, help_text="-> dim_date.date_key (order date, America/Sao_Paulo).")
    product_key = models.BigIntegerField(db_index=True, help_text="-> dim_product.product_key (version at order time).")
    customer_key = models.BigIntegerField(db_index=True, help_text="-> dim_customer.customer_key.")
    category_key = models.BigIntegerField(db_index=True, help_text="-> dim_category.category_key (at order time).")
    quantidade = models.IntegerField(help_text="Units sold.")
    total = models.DecimalField(**WAREHOUSE_MONEY, help_text="Order total, BRL.")
    custo = models.DecimalField(**WAREHOUSE_MONEY, help_text="Order cost, BRL.")
    lucro = models.DecimalField(max_digits=15, decimal_places=2, help_text="total - custo, BRL.")

    class Meta:
        db_table = "dw_fact_sales"


class SalesByCategoryMonth(models.Model):
    """Exact partial sums per month and category (category at order time); combine by summing."""

    month_key = models.IntegerField(db_index=True, help_text="Month, yyyymm (order date, America/Sao_Paulo).")
    category_key = models.BigIntegerField(help_text="-> dim_category.category_key.")
    categoria = models.CharField(max_length=100, help_text="Category name.")
    total_vendas = models.BigIntegerField(help_text="Number of orders.")
    quantidade = models.BigIntegerField(help_text="Units sold.")
    receita = models.DecimalField(max_digits=18, decimal_places=2, help_text="Sum of order totals, BRL.")
    lucro = models.DecimalField(max_digits=18, decimal_places=2, help_text="Sum of (total - custo), BRL.")

    class Meta:
        db_table = "dw_sales_by_category_month"
        constraints = [models.UniqueConstraint(fields=["month_key", "category_key"], name="sales_month_category_uniq")]
