"""Where file outputs live, and how they are published atomically.

Every file a loader writes (Parquet, Excel, snapshot folders) lives under one
output root:

* ``settings.DW_OUTPUT_DIR`` when Django settings are configured (the project
  default is ``data/out/``);
* otherwise the ``DW_OUTPUT_DIR`` environment variable;
* otherwise ``./data/out`` relative to the current directory.

so the module imports and works without Django (scripts, Dask workers).

A relative name resolves under the root. A name that escapes the root (``..``,
an absolute path elsewhere, a symlink whose target is outside) raises
:class:`~dw_analytics.load.exceptions.OutputPathError` before anything is written.

Publishing is atomic: :func:`atomic_output` hands out a temporary sibling of the
target (same directory, so same filesystem), and only when the block succeeds
fsyncs it and renames it into place with ``os.replace``. A reader therefore
sees the old file or the new one, never half of one; on failure the temporary
is removed and the old target is untouched. Temporary names start with ``.``
and end with ``.tmp`` so a Power BI Folder query that keeps ``.parquet`` files
never picks them up.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

from dw_analytics.load.exceptions import OutputPathError

DEFAULT_OUTPUT_DIR = Path("data") / "out"
TEMP_SUFFIX = ".tmp"

# Linux renameat2(2) flag: swap two existing paths atomically.
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def output_root() -> Path:
    """The configured output root, as an absolute path (it need not exist yet).

    Returns:
        ``settings.DW_OUTPUT_DIR`` when Django is configured, else the
        ``DW_OUTPUT_DIR`` environment variable, else ``./data/out``.

    Example:
        >>> output_root().is_absolute()
        True
    """
    root = _django_output_dir()
    if root is None:
        root = os.environ.get("DW_OUTPUT_DIR") or DEFAULT_OUTPUT_DIR
    return Path(root).expanduser().absolute()


def _django_output_dir() -> str | os.PathLike[str] | None:
    try:
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured
    except ImportError:  # pragma: no cover - Django is a dependency, but stay importable
        return None
    # ``settings.configured`` is False until first access even when the
    # settings module is named in the environment; both mean "configured".
    if not (settings.configured or os.environ.get("DJANGO_SETTINGS_MODULE")):
        return None
    try:
        return getattr(settings, "DW_OUTPUT_DIR", None)
    except (ImproperlyConfigured, ImportError):
        return None


def resolve_output_path(name: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None) -> Path:
    """Resolve ``name`` under the output root and refuse anything that escapes it.

    Symlinks in the existing part of the path are resolved before the check,
    so a link pointing outside the root is refused too.

    Args:
        name: a relative name (``"sales/fact.parquet"``) or an absolute path
            inside the root.
        root: overrides :func:`output_root` (tests, tools).

    Returns:
        The absolute, symlink-free path.

    Raises:
        OutputPathError: the path is the root itself or lies outside it.

    Example:
        >>> resolve_output_path("sales.parquet", root="/srv/out")
        PosixPath('/srv/out/sales.parquet')
    """
    base = Path(root).expanduser().absolute() if root is not None else output_root()
    real_root = Path(os.path.realpath(base))
    raw = Path(name).expanduser()
    candidate = raw if raw.is_absolute() else base / raw
    real = Path(os.path.realpath(candidate))
    if real == real_root or not real.is_relative_to(real_root):
        raise OutputPathError(
            f"Output path {str(name)!r} resolves to {real}, which is not inside the output "
            f"root {real_root}. Use a relative name such as 'sales/fact.parquet', or change "
            "DW_OUTPUT_DIR.",
            target=str(name),
            root=str(real_root),
        )
    return real


def temporary_sibling(target: Path) -> Path:
    """A unique hidden name next to ``target`` (same filesystem, so rename is atomic).

    Example:
        >>> temporary_sibling(Path("/out/a.parquet")).name.startswith(".a.parquet.")
        True
    """
    # Keep the name under the usual 255-byte limit whatever the target is called.
    return target.with_name(f".{target.name[:180]}.{uuid.uuid4().hex[:12]}{TEMP_SUFFIX}")


@contextlib.contextmanager
def atomic_output(target: str | os.PathLike[str], *, directory: bool = False) -> Iterator[Path]:
    """Write into a temporary sibling, then publish it at ``target`` in one rename.

    On success the temporary (a file, or a whole folder when ``directory`` is
    True) is fsynced, renamed over ``target`` and the parent folder fsynced.
    Replacing an existing folder uses Linux ``renameat2(RENAME_EXCHANGE)``, an
    atomic swap; where that is unavailable the old folder is moved aside first,
    leaving a window of microseconds in which ``target`` does not exist
    (use :func:`dw_analytics.load.parquet.publish_snapshot` when even that
    matters). On any exception the temporary is removed and ``target`` is
    untouched.

    The caller is responsible for resolving ``target`` (see
    :func:`resolve_output_path`).

    Args:
        target: the final path.
        directory: create and yield a temporary folder instead of a file name.

    Yields:
        The temporary path to write into.

    Example:
        >>> with atomic_output(resolve_output_path("report.txt")) as tmp:  # doctest: +SKIP
        ...     tmp.write_text("done")
    """
    final = Path(target)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(final)
    if directory:
        tmp.mkdir()
    try:
        yield tmp
        if not tmp.exists() and not tmp.is_symlink():
            raise FileNotFoundError(errno.ENOENT, "nothing was written to the temporary path", str(tmp))
        fsync_tree(tmp)
        _replace(tmp, final)
        fsync_directory(final.parent)
    except BaseException:
        remove_path(tmp)
        raise


def write_text_atomic(target: str | os.PathLike[str], text: str) -> Path:
    """Replace a small text file atomically (pointer files, manifests).

    Example:
        >>> write_text_atomic(resolve_output_path("CURRENT"), "v=1\\n")  # doctest: +SKIP
    """
    final = Path(target)
    with atomic_output(final) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return final


def replace_symlink(link: str | os.PathLike[str], points_to: str) -> bool:
    """Point ``link`` at ``points_to`` atomically (a temporary link renamed over it).

    Returns:
        False where the platform cannot create symlinks (Windows without the
        privilege); True otherwise.

    Example:
        >>> replace_symlink(resolve_output_path("snap/current"), "v=20260101T000000Z")  # doctest: +SKIP
        True
    """
    final = Path(link)
    tmp = temporary_sibling(final)
    try:
        os.symlink(points_to, tmp, target_is_directory=True)
    except (OSError, NotImplementedError):
        if sys.platform.startswith("win"):
            return False
        raise
    try:
        os.replace(tmp, final)
    except BaseException:
        remove_path(tmp)
        raise
    fsync_directory(final.parent)
    return True


def _replace(tmp: Path, final: Path) -> None:
    if not tmp.is_dir() or tmp.is_symlink() or not (final.exists() or final.is_symlink()):
        os.replace(tmp, final)
        return
    # os.replace cannot put a folder over an existing non-empty folder.
    if _exchange(tmp, final):
        remove_path(tmp)  # now holds the old content
        return
    old = temporary_sibling(final)
    os.replace(final, old)
    try:
        os.replace(tmp, final)
    except BaseException:
        os.replace(old, final)
        raise
    remove_path(old)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with renameat2; False when unsupported here."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    rc = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def fsync_tree(path: Path) -> None:
    """fsync a file, or every file and folder below ``path``."""
    if path.is_symlink():
        return
    if not path.is_dir():
        _fsync_file(path)
        return
    for folder, _subdirs, files in os.walk(path):
        for name in files:
            _fsync_file(Path(folder, name))
        fsync_directory(Path(folder))


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_directory(path: Path) -> None:
    """Persist a folder's entries (a rename is durable only after this)."""
    if not hasattr(os, "O_DIRECTORY"):  # Windows cannot open folders; nothing to do
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_path(path: Path) -> None:
    """Remove a file, link or folder; silently ignore one that is already gone."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        pass
