"""URLs of the operations app. Include with ``path("ops/", include("dw_analytics.ops.urls"))``."""

from django.urls import path

from dw_analytics.ops import views

app_name = "ops"

urlpatterns = [
    path("exports/<int:job_id>/download/", views.export_download, name="export-download"),
]
