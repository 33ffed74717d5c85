"""The operational models of the seed: a small sales site.

Field and model names stay in Portuguese, as in the seed. Money is always a
``DecimalField``.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

MONEY = {"max_digits": 14, "decimal_places": 2}

UFS = [
    "AC", "AL", "AP", "AM", "BA", "CE", "DF", "ES", "GO", "MA", "MT", "MS", "MG", "PA",
    "PB", "PR", "PE", "PI", "RJ", "RN", "RS", "RO", "RR", "SC", "SP", "SE", "TO",
]  # fmt: skip


class Categoria(models.Model):
    nome = models.CharField(max_length=100, unique=True, help_text="Category name.")

    class Meta:
        ordering = ["nome"]
        verbose_name_plural = "categorias"

    def __str__(self) -> str:
        return self.nome


class Produto(models.Model):
    nome = models.CharField(max_length=200, help_text="Product name.")
    categoria = models.ForeignKey(
        Categoria, on_delete=models.PROTECT, related_name="produtos", help_text="Product category."
    )
    preco = models.DecimalField(**MONEY, help_text="List price, BRL.")
    custo = models.DecimalField(**MONEY, help_text="Unit cost, BRL.")
    atualizado_em = models.DateTimeField(auto_now=True, db_index=True, help_text="Last change.")

    def __str__(self) -> str:
        return self.nome


class Cliente(models.Model):
    nome = models.CharField(max_length=200, help_text="Customer name.")
    email = models.EmailField(unique=True, help_text="Customer e-mail, unique.")
    cidade = models.CharField(max_length=100, help_text="City.")
    uf = models.CharField(max_length=2, choices=[(uf, uf) for uf in UFS], help_text="Brazilian state.")
    atualizado_em = models.DateTimeField(auto_now=True, db_index=True, help_text="Last change.")

    def __str__(self) -> str:
        return self.nome


class Pedido(models.Model):
    cliente = models.ForeignKey(Cliente, on_delete=models.PROTECT, related_name="pedidos", help_text="Buyer.")
    produto = models.ForeignKey(Produto, on_delete=models.PROTECT, related_name="pedidos", help_text="Product sold.")
    quantidade = models.PositiveIntegerField(help_text="Units sold.")
    total = models.DecimalField(**MONEY, help_text="Order total, BRL.")
    custo = models.DecimalField(**MONEY, help_text="Order cost, BRL.")
    criado_em = models.DateTimeField(default=timezone.now, db_index=True, help_text="When the order was placed.")
    # auto_now: every ORM save bumps it, which the nightly watermark relies on.
    # Bulk loaders may still write historical values explicitly.
    atualizado_em = models.DateTimeField(auto_now=True, help_text="Last change, for incremental loads.")

    class Meta:
        indexes = [models.Index(fields=["atualizado_em", "id"], name="pedido_watermark_idx")]

    def __str__(self) -> str:
        return f"Pedido {self.pk}"


class FonteExterna(models.Model):
    """A row received from an external system, waiting to be processed into :class:`Destino`."""

    id_externo = models.CharField(max_length=64, unique=True, help_text="The source system's id.")
    valor = models.DecimalField(**MONEY, help_text="Raw value, BRL.")
    data = models.DateTimeField(help_text="When the source recorded the value.")
    processado = models.BooleanField(default=False, db_index=True, help_text="Already loaded into Destino.")

    class Meta:
        verbose_name_plural = "fontes externas"


class Destino(models.Model):
    """The processed external row; its key is the source's ``id_externo``, so reloads upsert."""

    id_externo = models.CharField(max_length=64, primary_key=True, help_text="The source system's id.")
    valor = models.DecimalField(**MONEY, help_text="valor x 1.1, rounded half-even to cents.")
    data = models.DateField(help_text="The source timestamp's date (America/Sao_Paulo).")
