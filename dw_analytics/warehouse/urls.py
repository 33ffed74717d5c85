"""URLs of the run-history pages and the health check (included at the site root)."""

from django.urls import path

from dw_analytics.warehouse import views

app_name = "warehouse"

urlpatterns = [
    path("health/", views.health, name="health"),
    path("runs/", views.run_list, name="run-list"),
    # The numeric routes come first: /runs/42/ is a run, /runs/nightly/ a pipeline.
    path("runs/<int:run_id>/", views.run_detail, name="run-detail"),
    path("runs/<int:run_id>/quarantine.csv", views.run_quarantine_csv, name="run-quarantine-csv"),
    path("runs/<str:pipeline>/", views.pipeline_runs, name="pipeline-runs"),
]
