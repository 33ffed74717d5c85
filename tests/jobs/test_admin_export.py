"""Admin export actions: a background ExportJob (run inline here), then a staff-only download."""

from __future__ import annotations

import io

import pyarrow.parquet as pq
import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from dw_analytics.ops import tasks
from dw_analytics.ops.models import ExportJob
from dw_analytics.sales.models import Cliente


@pytest.fixture
def admin_site(db, settings, output_dir, client):
    settings.DW_RUN_NOW_MODE = "sync"
    staff = User.objects.create_superuser("chefe", "chefe@x.com", "pw")
    client.force_login(staff)
    for i, uf in enumerate(["SP", "RJ", "SP", "SP"]):
        Cliente.objects.create(nome=f"Cliente {i}", email=f"c{i}@x.com", cidade="Cidade", uf=uf)
    return client


def test_exporting_selected_rows_to_csv_offers_the_file_for_download(admin_site, django_capture_on_commit_callbacks):
    chosen = list(Cliente.objects.order_by("id").values_list("id", flat=True)[:2])
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_site.post(
            reverse("admin:sales_cliente_changelist"),
            {"action": "export_csv", "_selected_action": chosen},
            follow=True,
        )
    assert response.status_code == 200
    job = ExportJob.objects.get()
    assert (job.source, job.format, job.status, job.n_rows, job.requested_by.username) == (
        "sales.Cliente",
        "csv",
        "succeeded",
        2,
        "chefe",
    )
    assert f"Export #{job.pk} (csv) started now" in response.content.decode()

    download = admin_site.get(reverse("ops:export-download", args=[job.pk]))

    assert download.status_code == 200
    assert download["Content-Disposition"].startswith('attachment; filename="cliente-')
    text = b"".join(download.streaming_content).decode("utf-8-sig")
    assert text.splitlines()[0].split(";")[:2] == ['"id"', '"nome"']  # ";" for Excel in Brazil
    assert [line.split(";")[1] for line in text.splitlines()[1:]] == ['"Cliente 0"', '"Cliente 1"']


def test_select_all_exports_every_row_the_changelist_filter_matches_to_parquet(
    admin_site, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        admin_site.post(
            reverse("admin:sales_cliente_changelist") + "?uf__exact=SP",
            {
                "action": "export_parquet",
                "select_across": "1",
                "_selected_action": [Cliente.objects.filter(uf="SP").first().pk],
            },
        )
    job = ExportJob.objects.get()
    assert (job.status, job.n_rows) == ("succeeded", 3)
    download = admin_site.get(reverse("ops:export-download", args=[job.pk]))
    table = pq.read_table(io.BytesIO(b"".join(download.streaming_content)))
    assert set(table.column("uf").to_pylist()) == {"SP"} and table.num_rows == 3


def test_the_download_is_for_staff_only_and_only_when_done(admin_site, client):
    job = ExportJob.objects.create(source="sales.Cliente", format="csv", path="exports/x.csv")
    assert admin_site.get(reverse("ops:export-download", args=[job.pk])).status_code == 404  # pending
    client.logout()
    User.objects.create_user("ana", "ana@x.com", "pw")
    client.login(username="ana", password="pw")
    response = client.get(reverse("ops:export-download", args=[job.pk]))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_a_failing_export_is_recorded_on_the_job(db, output_dir, monkeypatch):
    monkeypatch.setattr(tasks, "close_old_connections", lambda: None)  # keep the test's transaction
    job = ExportJob.objects.create(source="sales.Nope", format="csv", path="exports/x.csv")
    tasks.export_job_task.run(job.pk)
    job.refresh_from_db()
    assert job.status == "failed" and "unknown" in job.error
