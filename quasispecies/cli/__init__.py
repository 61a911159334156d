"""The ``quasispecies`` command.

Each subcommand lives in its own module under ``quasispecies.cli`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (called with the
parsed arguments, returning an exit code). Modules import their heavy dependencies
inside ``func``, so ``quasispecies --help`` stays fast.

Every subcommand takes ``--json``: print one JSON object on stdout and nothing else.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Order here is the order in `quasispecies --help`.
SUBCOMMANDS = ["demo", "sweep", "paths", "limit", "threshold", "lm", "collapse", "chain"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quasispecies",
        description=(
            "Selection on replicators with fitness exp(r/T) is a sum over paths weighted by "
            "exp(reward/T); as T -> 0 it becomes reinforcement learning."
        ),
    )
    parser.add_argument("--version", action="version", version="quasispecies 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in SUBCOMMANDS:
        importlib.import_module(f".{name}", __name__).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ValueError as err:
        print(f"quasispecies {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
