"""Admin of the sales models, with background exports of the selected rows (CSV, Excel, Parquet)."""

from __future__ import annotations

from django.contrib import admin

from dw_analytics.ops.admin import export_actions
from dw_analytics.sales.models import Cliente, Pedido, Produto


@admin.register(Pedido)
class PedidoAdmin(admin.ModelAdmin):
    list_display = ["id", "cliente", "produto", "quantidade", "total", "criado_em"]
    list_filter = [("criado_em", admin.DateFieldListFilter)]
    list_select_related = ["cliente", "produto"]
    raw_id_fields = ["cliente", "produto"]
    date_hierarchy = "criado_em"
    show_full_result_count = False
    actions = export_actions()


@admin.register(Cliente)
class ClienteAdmin(admin.ModelAdmin):
    list_display = ["id", "nome", "email", "cidade", "uf"]
    list_filter = ["uf"]
    search_fields = ["nome", "email", "cidade"]
    actions = export_actions()


@admin.register(Produto)
class ProdutoAdmin(admin.ModelAdmin):
    list_display = ["id", "nome", "categoria", "preco", "custo"]
    list_filter = ["categoria"]
    search_fields = ["nome"]
    list_select_related = ["categoria"]
    actions = export_actions()
