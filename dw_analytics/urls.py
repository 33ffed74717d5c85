"""URL configuration."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("ops/", include("dw_analytics.ops.urls")),
    path("", include("dw_analytics.warehouse.urls")),
]
