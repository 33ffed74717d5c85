"""Warehouse-side models: the run history and the analytics tables."""

from __future__ import annotations

from django.db import models


class PipelineRun(models.Model):
    """One execution of a registered pipeline, recorded even when it fails."""

    class Status(models.TextChoices):
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"

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
