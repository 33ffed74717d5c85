"""Output paths stay under DW_OUTPUT_DIR and are published atomically."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dw_analytics.load import paths
from dw_analytics.load.exceptions import OutputPathError
from dw_analytics.load.paths import (
    atomic_output,
    output_root,
    replace_symlink,
    resolve_output_path,
    write_text_atomic,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def root(output_dir):
    """The output root with symlinks resolved (as resolve_output_path returns paths)."""
    return output_dir.resolve()


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_output_root_follows_django_settings(output_dir):
    assert output_root() == output_dir


def test_a_relative_name_resolves_under_the_root(root):
    assert resolve_output_path("sales/fact.parquet") == root / "sales" / "fact.parquet"


def test_an_absolute_path_inside_the_root_is_accepted(root):
    assert resolve_output_path(root / "a.parquet") == root / "a.parquet"


def test_dotdot_inside_the_root_is_fine_but_escaping_is_refused(root):
    assert resolve_output_path("a/../b.xlsx") == root / "b.xlsx"
    with pytest.raises(OutputPathError, match="not inside the output root") as info:
        resolve_output_path("../escaped.parquet")
    assert info.value.target == "../escaped.parquet"


def test_an_absolute_path_outside_the_root_is_refused(output_dir, tmp_path):
    with pytest.raises(OutputPathError):
        resolve_output_path(tmp_path / "elsewhere.parquet")


def test_the_root_itself_is_refused(output_dir):
    with pytest.raises(OutputPathError):
        resolve_output_path(".")


def test_a_symlink_pointing_out_of_the_root_is_refused(output_dir, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (output_dir / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(OutputPathError):
        resolve_output_path("link/fact.parquet")
    (output_dir / "file_link.parquet").symlink_to(outside / "x.parquet")
    with pytest.raises(OutputPathError):
        resolve_output_path("file_link.parquet")


def _root_in_subprocess(env_extra: dict[str, str], cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DW_OUTPUT_DIR")}
    env.update(env_extra)
    env["PYTHONPATH"] = str(REPO)
    code = "from dw_analytics.load.paths import output_root; print(output_root())"
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_without_django_the_env_var_or_data_out_is_the_root(tmp_path):
    assert _root_in_subprocess({"DW_OUTPUT_DIR": str(tmp_path / "env_out")}, tmp_path) == str(tmp_path / "env_out")
    assert _root_in_subprocess({}, tmp_path) == str(tmp_path / "data" / "out")


def test_atomic_output_replaces_a_file_and_leaves_no_temporary(output_dir):
    target = output_dir / "report.txt"
    target.write_text("old")
    with atomic_output(target) as tmp:
        assert tmp.parent == output_dir and tmp.name.startswith(".report.txt.")
        assert tmp.name.endswith(".tmp")
        tmp.write_text("new")
        assert target.read_text() == "old"  # invisible until the block ends
    assert target.read_text() == "new"
    assert _entries(output_dir) == ["report.txt"]


def test_atomic_output_keeps_the_old_file_when_the_block_fails(output_dir):
    target = output_dir / "report.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"), atomic_output(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert _entries(output_dir) == ["report.txt"]


@pytest.mark.parametrize("exchange_supported", [True, False])
def test_atomic_output_replaces_a_whole_folder(output_dir, monkeypatch, exchange_supported):
    if not exchange_supported:
        monkeypatch.setattr(paths, "_exchange", lambda a, b: False)
    target = output_dir / "dataset"
    (target / "year=2025").mkdir(parents=True)
    (target / "year=2025" / "part-0.parquet").write_text("old")
    with atomic_output(target, directory=True) as tmp:
        (tmp / "year=2026").mkdir()
        (tmp / "year=2026" / "part-0.parquet").write_text("new")
    assert _entries(target) == ["year=2026"]
    assert (target / "year=2026" / "part-0.parquet").read_text() == "new"
    assert _entries(output_dir) == ["dataset"]


def test_a_failed_folder_publish_removes_the_temporary_folder(output_dir):
    target = output_dir / "dataset"
    target.mkdir()
    (target / "old.parquet").write_text("old")
    with pytest.raises(ValueError), atomic_output(target, directory=True) as tmp:
        (tmp / "new.parquet").write_text("new")
        raise ValueError("disk full")
    assert _entries(target) == ["old.parquet"]
    assert _entries(output_dir) == ["dataset"]


def test_write_text_atomic_and_replace_symlink(output_dir):
    (output_dir / "v1").mkdir()
    (output_dir / "v2").mkdir()
    write_text_atomic(output_dir / "CURRENT", "v1\n")
    assert replace_symlink(output_dir / "current", "v1")
    assert os.readlink(output_dir / "current") == "v1"
    write_text_atomic(output_dir / "CURRENT", "v2\n")
    assert replace_symlink(output_dir / "current", "v2")
    assert (output_dir / "CURRENT").read_text() == "v2\n"
    assert os.readlink(output_dir / "current") == "v2"
    assert _entries(output_dir) == ["CURRENT", "current", "v1", "v2"]
