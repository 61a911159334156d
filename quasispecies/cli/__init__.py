"""The ``quasispecies`` command.

Each subcommand lives in its own module under ``quasispecies.cli``. The module's
docstring is the subcommand's ``--help`` text (first line: the summary shown in
``quasispecies --help``; the rest: the description), ``arguments(parser)`` adds its
flags (the shared ones from :mod:`quasispecies.cli.options`) and ``run(args)`` does
the work and returns an exit code (``lm`` sets a ``func`` per sub-subcommand instead).
Modules import their heavy dependencies inside ``run``, so ``quasispecies --help``
stays fast.

Every subcommand takes ``--json``: print one JSON object on stdout and nothing else.
A bad flag raises ``ValueError`` naming the flag; :func:`main` prints it on stderr
and returns 2.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys

# Order here is the order in `quasispecies --help`.
SUBCOMMANDS = ["demo", "sweep", "paths", "fit", "limit", "threshold", "lm", "collapse", "chain"]


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
        mod = importlib.import_module(f".{name}", __name__)
        summary, _, details = inspect.cleandoc(mod.__doc__ or name).partition("\n\n")
        summary = " ".join(summary.split())
        p = sub.add_parser(
            name,
            help=summary.partition(": ")[2].rstrip(".") or summary,
            description=details or summary,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        mod.arguments(p)
        if hasattr(mod, "run"):
            p.set_defaults(func=mod.run)
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
