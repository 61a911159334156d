"""Result files: atomic writes and the one JSON encoding of results.

Every write goes to a temporary file in the target directory first and is renamed
into place, so an interrupted or failed write never leaves a partial file.

JSON cannot hold non-finite floats; :func:`jsonable` writes ``inf``/``-inf`` as the
strings ``"inf"``/``"-inf"`` and NaN as ``null``, the convention of every ``--json``
output and result file of the toolkit.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["atomic_write", "dump_json", "jsonable", "write_json"]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path, mode: str = "w", **kwargs):
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left untouched. The
    file gets the permissions a plain ``open`` would give it (``mkstemp`` makes it 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def jsonable(x: Any) -> Any:
    """``x`` with arrays as nested lists, NumPy scalars as Python scalars, dataclass-like
    objects untouched, ``inf``/``-inf`` as ``"inf"``/``"-inf"`` and NaN as ``None``."""
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, bool | np.bool_):
        return bool(x)
    if isinstance(x, int | np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        f = float(x)
        if np.isnan(f):
            return None
        if np.isinf(f):
            return "inf" if f > 0 else "-inf"
        return f
    return x


def dump_json(x: Any, **kwargs) -> str:
    """``json.dumps(jsonable(x))``; strict JSON (no ``NaN``/``Infinity`` tokens)."""
    return json.dumps(jsonable(x), allow_nan=False, **kwargs)


def write_json(path, x: Any, **kwargs) -> Path:
    """Write ``jsonable(x)`` to ``path`` atomically; returns the path."""
    path = Path(path)
    with atomic_write(path) as fh:
        fh.write(dump_json(x, **kwargs))
    return path
