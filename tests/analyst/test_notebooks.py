"""The analyst notebooks run top to bottom against a freshly refreshed test database.

Each notebook is executed with nbclient in a real Jupyter kernel (the ``python3``
kernel spec that ipykernel ships in the virtualenv; jupyter_client starts it
with this test's own interpreter) on the test database (``DATABASE_URL``), with
``DW_OUTPUT_DIR`` set to the test's output folder and matplotlib's Agg backend.
Any cell error fails the test; the notebooks assert their own checks.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from django.utils import timezone
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from dw_analytics.core.api import run
from dw_analytics.extract.queryset import read_queryset
from dw_analytics.sales.models import Categoria, Pedido
from dw_analytics.sales.services import demo_data_create
from dw_analytics.warehouse.models import FactSales, PipelineRun
from tests.dbutil import ROOT, child_env

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
KERNEL = "python3"
CELL_TIMEOUT_S = 120


def test_the_three_notebooks_are_there():
    assert [p.name for p in NOTEBOOKS] == [
        "01_explore_sales.ipynb",
        "02_new_metric.ipynb",
        "03_powerbi_outputs.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_are_stored_without_outputs_and_start_with_setup(path: Path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert code[0].source.startswith("import dw_analytics as dw\n\ndw.setup()")
    assert notebook.cells[0].cell_type == "markdown"  # prose first
    assert notebook.metadata["kernelspec"]["name"] == KERNEL


def test_the_python3_kernel_spec_is_available_in_this_environment():
    spec = KernelSpecManager().get_kernel_spec(KERNEL)
    assert spec.language == "python"
    # jupyter_client runs a spec whose argv starts with "python" with sys.executable.
    assert spec.argv[0] in ("python", "python3", sys.executable)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_every_notebook_runs_top_to_bottom_on_the_demo_database(output_dir, monkeypatch):
    # A month back: every demo order's last change is then older than the nightly lag.
    demo_data_create(orders=5_000, seed=3, end=timezone.localdate() - dt.timedelta(days=30), years=1)
    assert run("nightly").status == "succeeded"
    assert FactSales.objects.count() == Pedido.objects.count() == 5_000

    environment = child_env(
        DW_OUTPUT_DIR=str(output_dir),
        MPLBACKEND="Agg",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        # Whatever "python" means on PATH, the venv's interpreter comes first.
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    )
    failures = []
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        client = NotebookClient(
            notebook,
            kernel_name=KERNEL,
            timeout=CELL_TIMEOUT_S,
            resources={"metadata": {"path": str(ROOT / "notebooks")}},
        )
        try:
            client.execute(env=environment)
        except CellExecutionError as exc:
            failures.append(f"{path.name}:\n{exc}")
    assert not failures, "\n\n".join(failures)
    # The kernels worked on this test database and output folder: their runs are recorded here.
    ran = set(PipelineRun.objects.filter(status="succeeded").values_list("pipeline", flat=True))
    assert ran == {"nightly", "analytics", "basket_by_state"}
    assert (output_dir / "metrics" / "basket_by_state.parquet").is_file()


@pytest.mark.django_db(transaction=True)
def test_a_commit_after_a_whole_table_read_is_seen_by_another_process():
    # A second SQLite library in the process (ADBC's) would drop our file locks: commits
    # would go unseen by other processes and the file could be corrupted.
    Categoria.objects.create(nome="Livros")
    read_queryset(Categoria.objects.all())  # outside a transaction: the fastest read route
    PipelineRun.objects.create(pipeline="after_adbc_read", started_at=timezone.now())
    count = "from dw_analytics.warehouse.models import PipelineRun; print(PipelineRun.objects.count())"
    child = subprocess.run(
        [sys.executable, "-c", f"import dw_analytics as dw; dw.setup(); {count}"],
        env=child_env(), cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert child.stdout.strip() == "1"
