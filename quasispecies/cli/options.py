"""The flags the subcommands share, and one way of parsing and checking them.

Every check here raises ``ValueError`` whose message starts with the flag as the user
typed it (``--temperatures: temperature must be >= 0, got -1.0``); ``quasispecies.cli.main``
prints it as ``quasispecies COMMAND: error: ...`` and exits with status 2. Checks run
before any work starts, so a bad flag never leaves a partial output file.

Grids of values (temperatures, tilt strengths) are written ``1,0.1,0`` (a list),
``geom:LO:HI:N`` (``N`` log-spaced values) or ``lin:LO:HI:N``; a range of error rates
is ``LO:HI:N`` (``N`` evenly spaced values, ``N = 1`` gives ``LO``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from quasispecies.model.files import dump_json
from quasispecies.model.validate import check_temperature

__all__ = [
    "MDP_SUFFIXES",
    "add_gguf",
    "add_horizon",
    "add_json",
    "add_lm",
    "add_mdp_file",
    "add_out",
    "add_path",
    "add_start",
    "add_temperature",
    "add_temperatures",
    "check_at_least",
    "check_start",
    "check_suffix",
    "flag_errors",
    "load_lm_flag",
    "parse_grid",
    "parse_range",
    "parse_temperatures",
    "print_json",
]

MDP_SUFFIXES = (".npz", ".json", ".csv", ".jsonl", ".parquet")

# ------------------------------------------------------------------ adding flags


def add_json(parser, help: str = "print one JSON object on stdout instead of the table") -> None:
    """``--json``: every subcommand prints exactly one JSON object on stdout with it."""
    parser.add_argument("--json", action="store_true", help=help)


def add_path(
    parser,
    flag: str,
    help: str,
    *,
    default: str | None = None,
    metavar: str = "FILE",
    required: bool = False,
) -> None:
    """An optional (or ``required``) file or directory flag, e.g. ``--checkpoint FILE``."""
    parser.add_argument(flag, default=default, metavar=metavar, required=required, help=help)


def add_out(parser, help: str, **kwargs) -> None:
    """``--out FILE`` (or ``DIR``): where the command writes; ``help`` says what and how."""
    add_path(parser, "--out", help, **kwargs)


def add_mdp_file(parser) -> None:
    """The positional ``MDP_FILE`` (read by :func:`quasispecies.model.io.load_mdp`)."""
    parser.add_argument("mdp_file", metavar="MDP_FILE", help=", ".join(MDP_SUFFIXES) + " file")


def add_temperatures(parser, *, default: str | None = None, help: str | None = None) -> None:
    """``--temperatures GRID`` (required unless a ``default`` is given); parse with
    :func:`parse_temperatures`."""
    text = help or "comma list (1,0.1,0.01,0) or geom:LO:HI:N / lin:LO:HI:N; each T >= 0"
    if default is not None:
        text += f" (default {default})"
    parser.add_argument(
        "--temperatures", default=default, required=default is None, metavar="GRID", help=text
    )


def add_temperature(parser) -> None:
    """``--temperature T``: one temperature ``T >= 0`` (``0`` is the max-plus limit)."""
    parser.add_argument(
        "--temperature", required=True, type=float, metavar="T", help="T >= 0 (0: max-plus)"
    )


def add_horizon(
    parser, *, default: int | None = None, required: bool = False, help: str = "finite horizon H"
) -> None:
    """``--horizon H``, an integer; check its range with :func:`check_at_least`."""
    text = help if default is None else f"{help} (default {default})"
    parser.add_argument(
        "--horizon", type=int, default=default, required=required, metavar="H", help=text
    )


def add_start(parser, *, default: int | None = None, help: str) -> None:
    """``--start S``, a state index; check it with :func:`check_start`."""
    parser.add_argument("--start", type=int, default=default, metavar="S", help=help)


def add_gguf(parser) -> None:
    """``--gguf PATH``: deprecated alias of ``--lm gguf:PATH`` (:func:`add_lm`)."""
    parser.add_argument(
        "--gguf",
        default=None,
        metavar="PATH",
        help="deprecated: use --lm gguf:PATH",
    )


# -------------------------------------------------------------- parsing values


def _lo_hi_n(parts: Sequence[str], flag: str, text: str, usage: str) -> tuple[float, float, int]:
    try:
        lo, hi, n = float(parts[0]), float(parts[1]), int(parts[2])
    except (ValueError, IndexError):
        raise ValueError(f"{flag}: cannot parse {text!r} (use {usage})") from None
    if len(parts) != 3:
        raise ValueError(f"{flag}: cannot parse {text!r} (use {usage})")
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"{flag}: LO and HI must be finite, got {text!r}")
    if n < 1:
        raise ValueError(f"{flag}: N must be >= 1, got {n}")
    return lo, hi, n


def parse_grid(text: str, flag: str, *, example: str = "1,0.1,0") -> np.ndarray:
    """``a,b,c`` (a list), ``geom:LO:HI:N`` (log-spaced, ``LO, HI > 0``) or ``lin:LO:HI:N``.

    Returns a float64 array of finite values, in the order written.
    """
    text = text.strip()
    usage = f"{example} or geom:LO:HI:N or lin:LO:HI:N"
    if text.startswith(("geom:", "lin:")):
        kind, *parts = text.split(":")
        lo, hi, n = _lo_hi_n(parts, flag, text, usage)
        if kind == "lin":
            return np.linspace(lo, hi, n)
        if lo <= 0 or hi <= 0:
            raise ValueError(f"{flag}: geom:LO:HI:N needs LO > 0 and HI > 0, got {text!r}")
        return np.geomspace(lo, hi, n)
    try:
        vals = np.array([float(v) for v in text.split(",") if v.strip()])
    except ValueError:
        raise ValueError(f"{flag}: cannot parse {text!r} (use {usage})") from None
    if vals.size == 0:
        raise ValueError(f"{flag}: no value given")
    if not np.isfinite(vals).all():
        raise ValueError(f"{flag}: values must be finite, got {text!r}")
    return vals


def parse_temperatures(text: str, flag: str = "--temperatures") -> np.ndarray:
    """A grid (:func:`parse_grid`) of temperatures, each finite and ``>= 0``."""
    return check_temperature(parse_grid(text, flag), flag)[0]


def parse_range(
    text: str, flag: str = "--mu", *, bounds: tuple[float, float] = (0.0, 1.0)
) -> np.ndarray:
    """``LO:HI:N`` -> ``N`` evenly spaced values from ``LO`` to ``HI`` (``N = 1``: ``LO``),
    with ``bounds[0] <= LO <= HI <= bounds[1]`` (default: rates in ``[0, 1]``)."""
    lo, hi, n = _lo_hi_n(text.split(":"), flag, text, "LO:HI:N, e.g. 0.001:0.1:50")
    a, b = bounds
    if not (a <= lo <= b and a <= hi <= b):
        raise ValueError(f"{flag}: values must lie in [{a:g}, {b:g}], got {text!r}")
    if lo > hi:
        raise ValueError(f"{flag}: LO must be <= HI, got {text!r}")
    return np.linspace(lo, hi, n)


# -------------------------------------------------------------------- checks


def check_at_least(value: int, flag: str, minimum: int) -> int:
    """``value >= minimum`` (``--horizon: must be >= 0, got -1`` otherwise)."""
    if value < minimum:
        raise ValueError(f"{flag}: must be >= {minimum}, got {value}")
    return value


def check_start(start: int, num_states: int, flag: str = "--start") -> int:
    """A state index in ``[0, num_states)``."""
    if not 0 <= start < num_states:
        raise ValueError(f"{flag}: state {start} is outside [0, {num_states})")
    return int(start)


def check_suffix(path, flag: str, suffixes: Sequence[str], *, ignore_case: bool = False) -> Path:
    """``path`` ends in one of ``suffixes`` (compared as the consumer of the file compares
    them: exactly, or ignoring case); returns it as a Path."""
    path = Path(path)
    suffix = path.suffix.lower() if ignore_case else path.suffix
    if suffix not in suffixes:
        raise ValueError(f"{flag}: expected a {' or '.join(suffixes)} file, got {path.name!r}")
    return path


@contextlib.contextmanager
def flag_errors(names: Mapping[str, str]) -> Iterator[None]:
    """Re-label a library ``ValueError`` that names an argument by the flag that set it.

    ``names`` maps argument names to flags, e.g. ``{"depth": "--depth"}``: inside the
    block, ``ValueError("depth: expected an integer >= 1, got 0")`` becomes
    ``ValueError("--depth: expected an integer >= 1, got 0")``. Other errors pass as they are.
    """
    try:
        yield
    except ValueError as err:
        msg = str(err)
        for name, flag in names.items():
            if msg.startswith(f"{name}:"):
                raise ValueError(flag + msg[len(name) :]) from None
        raise


# -------------------------------------------------------------------- output


def print_json(doc, **kwargs) -> int:
    """Print ``doc`` as one strict JSON object on stdout (:func:`quasispecies.model.files.dump_json`:
    arrays as lists, ``inf`` as JSON's ``Infinity``, NaN as ``null``); returns the exit code 0."""
    print(dump_json(doc, **kwargs), flush=True)
    return 0


# ------------------------------------------------------------------ the model flag


def add_lm(parser, *, optional: bool = False, help: str | None = None) -> None:
    """``--lm SPEC``: which language model (``embedded`` | ``gguf:PATH`` | ``hf:PATH`` |
    ``http://HOST:PORT/v1[#MODEL]``; :func:`quasispecies.bridge.load_lm`).

    With ``optional=True`` the flag also switches a panel on: absent -> ``None``, a bare
    ``--lm`` -> ``embedded`` (``collapse --lm``).
    """
    forms = "embedded | gguf:PATH | hf:PATH | http://HOST:PORT/v1[#MODEL]"
    if optional:
        parser.add_argument(
            "--lm",
            nargs="?",
            const="embedded",
            default=None,
            metavar="SPEC",
            help=help or f"language model: {forms} (a bare --lm: embedded)",
        )
    else:
        parser.add_argument(
            "--lm",
            default="embedded",
            metavar="SPEC",
            help=help or f"language model: {forms} (default embedded)",
        )


def load_lm_flag(spec: str, *, gguf: str | None = None):
    """The model of ``--lm SPEC`` (errors name ``--lm``); ``gguf`` is the deprecated
    ``--gguf PATH`` alias (``--lm gguf:PATH``), refused together with another ``--lm``."""
    from quasispecies.bridge.spec import load_lm

    if gguf is not None:
        if spec not in (None, "embedded"):
            raise ValueError(
                f"--gguf: give either --gguf (deprecated) or --lm, not both ({spec!r})"
            )
        from quasispecies.bridge.gguf_model import GGUFModel

        with flag_errors({"path": "--gguf"}):
            return GGUFModel(gguf)
    with flag_errors({"path": "--lm", "model_or_path": "--lm"}):
        return load_lm(spec, name="--lm")
