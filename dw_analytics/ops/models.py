"""Records of the on-demand jobs, and the target of consolidated branch files.

* :class:`ExportJob`: an export asked for from the admin, run by Celery, downloaded when done.
* :class:`CorrectionRun`: one applied batch correction (who, when, which file, counts, where
  the previous values are kept), so it can be audited and reverted.
* :class:`SyncWatermark`: how far an incremental ``sync`` has read, for a non-timestamp column
  (timestamp watermarks live in ``warehouse.Watermark``).
* :class:`ConsolidatedFile`: a file loaded by ``consolidate``, by checksum, so it loads once.
* :class:`VendaFilial`: sales lines exported monthly by the branches, consolidated.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

MONEY = {"max_digits": 14, "decimal_places": 2}


class ExportJob(models.Model):
    """An export running in the background; the file is offered for download when done."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"

    source = models.CharField(max_length=200, help_text="Model label, warehouse table or registered query.")
    format = models.CharField(max_length=10, help_text="parquet, csv or xlsx.")
    path = models.CharField(max_length=500, help_text="Output file, relative to DW_OUTPUT_DIR.")
    fields = models.JSONField(default=list, blank=True, help_text="Columns exported; empty = all.")
    filters = models.JSONField(default=dict, blank=True, help_text="Field lookups applied to the source.")
    options = models.JSONField(default=dict, blank=True, help_text="Format options (sep, bom...).")
    # The admin's selection (any filter the changelist applied), as Django's pickled query.
    # Only this app writes it, from a staff user's admin action.
    query_pickle = models.BinaryField(null=True, blank=True, editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    n_rows = models.BigIntegerField(null=True, blank=True, help_text="Rows written.")
    error = models.TextField(blank=True, default="", help_text="Why the export failed.")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    run = models.ForeignKey("warehouse.PipelineRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"export #{self.pk} {self.source} -> {self.path} ({self.status})"


class CorrectionRun(models.Model):
    """One applied batch correction; the previous values are kept under ``audit_path``."""

    class Status(models.TextChoices):
        APPLIED = "applied", "applied"
        REVERTED = "reverted", "reverted"

    model_label = models.CharField(max_length=200, help_text="Corrected model, e.g. 'sales.Pedido'.")
    key_fields = models.JSONField(help_text="Fields identifying a row.")
    columns = models.JSONField(default=list, help_text="Corrected columns (besides the keys).")
    file_name = models.CharField(max_length=500, help_text="The corrections file, as given.")
    file_sha256 = models.CharField(max_length=64, db_index=True, help_text="SHA-256 of the file.")
    applied_by = models.CharField(max_length=150, blank=True, default="", help_text="User who applied it.")
    applied_at = models.DateTimeField(help_text="When it was applied.")
    n_inserted = models.BigIntegerField(default=0)
    n_updated = models.BigIntegerField(default=0)
    n_unchanged = models.BigIntegerField(default=0)
    n_rejected = models.BigIntegerField(default=0)
    audit_path = models.CharField(
        max_length=500, help_text="Folder under DW_OUTPUT_DIR with updated.parquet and inserted.parquet."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.APPLIED)
    reverted_at = models.DateTimeField(null=True, blank=True)
    reverted_by = models.CharField(max_length=150, blank=True, default="")
    run = models.ForeignKey("warehouse.PipelineRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-applied_at", "-id"]

    def __str__(self) -> str:
        return f"correction #{self.pk} {self.model_label} ({self.status})"


class SyncWatermark(models.Model):
    """Greatest value of a non-timestamp incremental column read by ``sync`` (ids, versions)."""

    name = models.CharField(max_length=200, unique=True, help_text="Sync name (source and target).")
    column = models.CharField(max_length=200, help_text="The incremental column.")
    kind = models.CharField(max_length=20, help_text="int, decimal, date or string.")
    value = models.TextField(help_text="The greatest value loaded, as text.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name}: {self.column} = {self.value}"


class ConsolidatedFile(models.Model):
    """A file ``consolidate`` has loaded; the same content (SHA-256) is never loaded twice."""

    target = models.CharField(max_length=200, help_text="Model label the rows went to.")
    sha256 = models.CharField(max_length=64, help_text="SHA-256 of the file's bytes.")
    path = models.CharField(max_length=1000, help_text="Path of the file when it was loaded.")
    size_bytes = models.BigIntegerField(help_text="File size.")
    encoding = models.CharField(max_length=40, help_text="Encoding used to read it.")
    separator = models.CharField(max_length=4, help_text="Field separator used to read it.")
    n_rows = models.BigIntegerField(default=0, help_text="Rows loaded.")
    n_errors = models.BigIntegerField(default=0, help_text="Rows quarantined.")
    loaded_at = models.DateTimeField(auto_now_add=True)
    run = models.ForeignKey("warehouse.PipelineRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-loaded_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["target", "sha256"], name="consolidated_file_uniq")]

    def __str__(self) -> str:
        return f"{self.path} ({self.sha256[:12]})"


class VendaFilial(models.Model):
    """A sales line from a branch's monthly export, with the file it came from."""

    filial = models.CharField(max_length=20, help_text="Branch code, e.g. 'SP01'.")
    numero_nota = models.CharField(max_length=30, help_text="Invoice number at the branch.")
    item = models.PositiveIntegerField(default=1, help_text="Line number within the invoice.")
    data_venda = models.DateField(db_index=True, help_text="Sale date (local).")
    produto_codigo = models.CharField(max_length=50, help_text="Product code (SKU).")
    descricao = models.CharField(max_length=200, blank=True, default="", help_text="Product description.")
    quantidade = models.DecimalField(max_digits=12, decimal_places=3, help_text="Quantity sold.")
    valor_unitario = models.DecimalField(**MONEY, help_text="Unit price, BRL.")
    valor_total = models.DecimalField(**MONEY, help_text="Line total, BRL.")
    arquivo_origem = models.CharField(max_length=500, db_index=True, help_text="File the row was loaded from.")
    carregado_em = models.DateTimeField(auto_now=True, help_text="When the row was (re)loaded.")

    class Meta:
        verbose_name_plural = "vendas filiais"
        constraints = [
            models.UniqueConstraint(fields=["filial", "numero_nota", "item"], name="venda_filial_nota_item_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.filial} {self.numero_nota}/{self.item}"
