from django.apps import AppConfig


class SalesConfig(AppConfig):
    name = "dw_analytics.sales"
    label = "sales"
    verbose_name = "Sales (operational)"
