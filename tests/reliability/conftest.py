"""Shared fixtures of the reliability suite: isolated outputs and data folders."""

from __future__ import annotations

import pytest


@pytest.fixture
def isolated(output_dir, settings, tmp_path):
    """A fresh ``DW_OUTPUT_DIR`` and ``DATA_DIR`` (run-status files), no watermark lag."""
    settings.DW_WATERMARK_LAG_S = 0
    settings.DATA_DIR = tmp_path
    return output_dir
