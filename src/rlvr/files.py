"""Writing so that a kill never leaves half a file: write a staged copy beside the target, flush it to disk,
rename it over the target, flush the directory. After a crash the target is either the old version or the whole
new one. Run files (``results.json``, samples, ``config.yaml``), a stage's weights and every checkpoint directory
are written this way (:func:`publish`, one sequence for all of them).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def fsync_tree(root: Path) -> None:
    """Flush every file under ``root`` and the directories themselves to disk."""
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            fsync_file(Path(dirpath) / name)
        fsync_dir(Path(dirpath))


def fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(staged: Path, final: Path) -> None:
    """Put ``staged`` (a complete file, or a directory tree) in place as ``final``: flushed, renamed over it (a
    directory already there, the same checkpoint saved again, is removed first), the parent flushed."""
    if staged.is_dir():
        fsync_tree(staged)
    else:
        fsync_file(staged)
    if final.is_dir():
        shutil.rmtree(final)
    os.replace(staged, final)
    fsync_dir(final.parent)


@contextmanager
def staged_file(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; :func:`publish`-ed as ``path`` when the block ends, deleted
    when it raises (``path`` as it was)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        publish(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (:func:`staged_file`)."""
    with staged_file(path) as tmp, os.fdopen(os.open(tmp, os.O_WRONLY | os.O_TRUNC), "w") as f:
        f.write(text)
