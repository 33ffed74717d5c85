"""The pipeline engine: atomic runs, run logs, run records, chunk streaming, parameters."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

from dw_analytics.core.exceptions import ConfigurationError
from dw_analytics.core.pipeline import BasePipeline
from dw_analytics.core.registry import UnknownPipeline, get_pipeline, register, unregister
from dw_analytics.load.base import LoadResult
from dw_analytics.sales.models import Categoria
from dw_analytics.warehouse.models import PipelineRun


class CategoriesPipeline(BasePipeline):
    name = "test_categories"
    parameters = {"fail_after": int}

    def extract(self) -> pd.DataFrame:
        return pd.DataFrame({"nome": ["a", "b", "c", "d"]})

    def transform(self, df: pd.DataFrame) -> pd.DataFrame:
        return df.assign(nome=df["nome"].str.upper())

    def load(self, df: pd.DataFrame) -> LoadResult:
        fail_after = self.params.get("fail_after")
        for i, nome in enumerate(df["nome"]):
            if fail_after is not None and i == fail_after:
                raise RuntimeError(f"disk on fire after {i} rows")
            Categoria.objects.create(nome=nome)
        return LoadResult(target="sales.Categoria", n_inserted=len(df))


class ChunkedPipeline(BasePipeline):
    name = "test_chunked"
    chunked = True

    def extract(self):
        return (pd.DataFrame({"v": [Decimal(i)] * 3}) for i in range(4))

    def transform(self, chunk: pd.DataFrame) -> pd.DataFrame:
        return chunk.head(2)

    def load(self, chunk: pd.DataFrame) -> LoadResult:
        return LoadResult(n_inserted=len(chunk), n_updated=1)


@pytest.mark.django_db
def test_a_successful_run_returns_the_seed_log_keys_and_is_recorded():
    log = CategoriesPipeline().run()

    assert log.succeeded and log.error is None
    assert (log.n_processed, log.n_errors, log.n_inserted) == (4, 0, 4)
    assert log.started_at <= log.finished_at
    assert [s.name for s in log.steps] == ["extract", "transform", "load"]
    assert [s.n_rows for s in log.steps] == [4, 4, 4]
    assert all(s.duration_s >= 0 and s.peak_rss_mb > 0 for s in log.steps)
    assert log.peak_rss_mb == max(s.peak_rss_mb for s in log.steps)
    assert list(log.result["nome"]) == ["A", "B", "C", "D"]
    assert sorted(Categoria.objects.values_list("nome", flat=True)) == ["A", "B", "C", "D"]

    record = PipelineRun.objects.get(pk=log.run_id)
    assert record.status == "succeeded"
    assert (record.n_processed, record.n_inserted) == (4, 4)
    assert [s["name"] for s in record.steps] == ["extract", "transform", "load"]
    assert set(log.as_dict()) >= {"started_at", "finished_at", "n_processed", "n_errors", "error"}


@pytest.mark.django_db(transaction=True)
def test_a_load_failing_halfway_leaves_the_database_unchanged_and_records_the_failure():
    Categoria.objects.create(nome="existing")

    with pytest.raises(RuntimeError, match="disk on fire"):
        CategoriesPipeline(fail_after=2).run()

    assert list(Categoria.objects.values_list("nome", flat=True)) == ["existing"]
    record = PipelineRun.objects.get(pipeline="test_categories")
    assert record.status == "failed"
    assert record.error == "RuntimeError: disk on fire after 2 rows"
    assert "Traceback" in record.traceback and "disk on fire" in record.traceback
    assert record.finished_at is not None


@pytest.mark.django_db
def test_a_failed_run_can_be_returned_instead_of_raised():
    log = CategoriesPipeline(fail_after=0).run(raise_errors=False)

    assert log.status == "failed"
    assert log.error.startswith("RuntimeError")
    assert Categoria.objects.count() == 0


@pytest.mark.django_db
def test_chunked_pipelines_stream_each_chunk_and_add_up_the_step_figures():
    log = ChunkedPipeline().run()

    assert log.n_processed == 12
    assert (log.n_inserted, log.n_updated) == (8, 4)
    assert [(s.name, s.n_rows) for s in log.steps] == [("extract", 12), ("transform", 8), ("load", 12)]
    assert log.result is None


def test_parameters_are_converted_and_unknown_ones_are_refused():
    assert CategoriesPipeline(fail_after="3").params == {"fail_after": 3}
    with pytest.raises(ConfigurationError, match="does not accept parameter.*colour.*valid: fail_after"):
        CategoriesPipeline(colour="red")
    with pytest.raises(ConfigurationError, match="invalid parameter value"):
        CategoriesPipeline(fail_after="many")


def test_an_unknown_pipeline_name_lists_the_registered_ones():
    register(CategoriesPipeline)
    try:
        with pytest.raises(UnknownPipeline) as excinfo:
            get_pipeline("nope")
        assert "unknown pipeline 'nope'" in str(excinfo.value)
        assert "test_categories" in str(excinfo.value)
    finally:
        unregister("test_categories")


@pytest.mark.django_db
def test_a_failed_run_emails_the_admins_with_the_error_and_run_id(settings, mailoutbox):
    settings.ADMINS = [("Ops", "ops@example.com")]

    log = CategoriesPipeline(fail_after=1).run(raise_errors=False)

    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["ops@example.com"]
    assert f"pipeline test_categories failed (run {log.run_id})" in message.subject
    assert "RuntimeError: disk on fire after 1 rows" in message.body


@pytest.mark.django_db
def test_json_step_logs_carry_run_pipeline_step_rows_duration_and_memory():
    import io
    import json
    import logging

    from dw_analytics.core.observe import configure_run_logging, logger

    stream = io.StringIO()
    handler = configure_run_logging("json", stream)
    try:
        log = CategoriesPipeline().run()
    finally:
        logger.removeHandler(handler)

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["step"] for line in lines] == ["extract", "transform", "load"]
    assert all(line["run_id"] == log.run_id and line["pipeline"] == "test_categories" for line in lines)
    assert [line["n_rows"] for line in lines] == [4, 4, 4]
    assert all(line["duration_s"] >= 0 and line["peak_rss_mb"] > 0 for line in lines)
    assert logging.getLevelName(lines[0]["level"]) == logging.INFO
