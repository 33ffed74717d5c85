"""A deliberately slow chunked pipeline, run in a child process by the live-status tests."""

from __future__ import annotations

import time

import pandas as pd

from dw_analytics.core.pipeline import BasePipeline
from dw_analytics.core.registry import register
from dw_analytics.load.models import write_model
from dw_analytics.sales.models import Categoria


@register
class SlowPipeline(BasePipeline):
    name = "test_slow"
    chunked = True

    def extract(self):
        for i in range(600):  # about a minute unless cancelled
            time.sleep(0.1)
            yield pd.DataFrame({"nome": [f"slow-{i}-{j}" for j in range(10)]})

    def load(self, chunk: pd.DataFrame):
        return write_model(chunk, Categoria, mode="append", using=self.using)
