"""The project's URLs plus the ops URLs, as the lead is asked to include them."""

from django.urls import include, path

from dw_analytics.urls import urlpatterns as project_urlpatterns

urlpatterns = [*project_urlpatterns, path("ops/", include("dw_analytics.ops.urls"))]
