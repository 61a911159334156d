"""Result files: atomic writes and the one JSON encoding of results.

Every write goes to a temporary file in the target directory first and is renamed
into place, so an interrupted or failed write never leaves a partial file.

Non-finite floats, the convention of every ``--json`` output and result file of the
toolkit: ``inf``/``-inf`` are written as JSON's common ``Infinity``/``-Infinity``
extension tokens (what Python's :func:`json.loads` and JSON5 readers parse as floats; a
strict RFC 8259 parser rejects them rather than reading them as text), and NaN as
``null``. Files written before this convention hold the strings ``"inf"``/``"-inf"``;
:func:`read_json` (and :func:`from_jsonable`) read both forms back as floats.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "atomic_write",
    "dump_json",
    "from_jsonable",
    "jsonable",
    "read_json",
    "read_npz",
    "write_json",
]

#: Strings that older result files used for infinities (read back as floats).
_INF_STRINGS = {"inf": np.inf, "-inf": -np.inf, "Infinity": np.inf, "-Infinity": -np.inf}


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
    objects untouched, NaN as ``None`` and ``inf``/``-inf`` kept as floats (written as
    ``Infinity``/``-Infinity`` by :func:`dump_json`)."""
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
        return f
    return x


def dump_json(x: Any, **kwargs) -> str:
    """``json.dumps(jsonable(x))``: NaN as ``null``, ``inf``/``-inf`` as the
    ``Infinity``/``-Infinity`` extension tokens (never a ``NaN`` token)."""
    return json.dumps(jsonable(x), allow_nan=True, **kwargs)


def from_jsonable(x: Any) -> Any:
    """``x`` (parsed JSON) with the old infinity strings (``"inf"``, ``"-inf"``, and
    ``"Infinity"``/``"-Infinity"``) turned into floats, recursively; nothing else changes."""
    if isinstance(x, dict):
        return {k: from_jsonable(v) for k, v in x.items()}
    if isinstance(x, list):
        return [from_jsonable(v) for v in x]
    if isinstance(x, str) and x in _INF_STRINGS:
        return float(_INF_STRINGS[x])
    return x


def read_json(path) -> Any:
    """Parse a JSON result file written by :func:`write_json` (either infinity convention:
    ``Infinity`` tokens or the old ``"inf"`` strings come back as floats). ``ValueError``
    naming the file if it is not UTF-8 JSON."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err})") from None
    try:
        return from_jsonable(json.loads(text))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err.msg}, line {err.lineno})") from None
    except (ValueError, RecursionError) as err:  # a >4300-digit integer, deep nesting
        raise ValueError(f"{path}: not valid JSON ({err})") from None


#: What reading a damaged ``.npz`` can raise: a broken or truncated zip archive
#: (``BadZipFile``, ``EOFError``, ``zlib.error`` from a corrupt deflate stream), a mutated
#: zip header (``NotImplementedError``: unknown compression method or version;
#: ``RuntimeError``: the encrypted flag), a bad ``.npy`` header, short data or a pickled
#: array (``ValueError``), a missing member (``KeyError``), an I/O failure (``OSError``)
#: or a header field out of range (``OverflowError``, ``struct.error``).
NPZ_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    NotImplementedError,
    RuntimeError,
    KeyError,
    ValueError,
    OSError,
    OverflowError,
    struct.error,
)


def read_npz(path, what: str = ".npz file") -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` archive at ``path`` (pickled arrays refused).

    ``ValueError`` ``"{path}: not a readable {what} (...)"`` when the file is damaged,
    truncated, not a zip archive, a single ``.npy`` array or holds pickled data.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            z = np.load(fh, allow_pickle=False)
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise ValueError("a single .npy array, not an .npz archive")
            with z:
                return {k: np.asarray(z[k]) for k in z.files}
    except NPZ_ERRORS as err:
        raise ValueError(f"{path}: not a readable {what} ({err})") from None


def write_json(path, x: Any, **kwargs) -> Path:
    """Write ``jsonable(x)`` to ``path`` atomically; returns the path."""
    path = Path(path)
    with atomic_write(path) as fh:
        fh.write(dump_json(x, **kwargs))
    return path
