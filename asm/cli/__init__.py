"""The ``asm`` command: ``asm crop``, ``asm batch``, ``asm export``, ``asm train``, ``asm eval``.

A thin shell over :class:`asm.cropper.Cropper`: it parses arguments, prints and writes
files; it never resizes, searches or draws by itself. One module per command
(:mod:`asm.cli.crop`, :mod:`asm.cli.batch`, :mod:`asm.cli.export`; ``train`` and ``eval``
live in :mod:`asm.training.command` and :mod:`asm.evaluation.run`), each with an
``add_parser(sub)`` that sets ``func``. Nothing heavy is imported before a command runs,
so ``asm --help`` and ``asm crop --help`` answer at once.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from asm.errors import ECHO_LIMIT, echo

__all__ = ["main", "build_parser", "fail", "LAZY_COMMANDS"]

#: Commands whose modules import torch and more: their parsers are built only when they run.
#: The help line must match the one their own add_parser gives (a test checks it).
LAZY_COMMANDS = {
    "train": ("asm.training.command", "train a model on where people look (OSIE fixations + FastGaze teacher)"),
    "eval": ("asm.evaluation.run", "evaluate a model next to the centre crop and heuristic peers"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``asm`` parser; of the :data:`LAZY_COMMANDS` only ``command``'s is built in full."""
    from asm import __version__
    from asm.cli import batch, crop, export  # light: their heavy imports wait inside their run()

    parser = argparse.ArgumentParser(
        prog="asm",
        description="Composition-aware automatic image cropping (ASM-Net).",
        epilog="Run 'asm COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"asm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    crop.add_parser(sub)
    batch.add_parser(sub)  # after crop: it shares crop's options
    export.add_parser(sub)
    for name, (module, help_line) in LAZY_COMMANDS.items():  # they add their own subcommands
        if name == command:
            importlib.import_module(module).add_parser(sub)
        else:
            sub.add_parser(name, help=help_line, add_help=False)
    return parser


def fail(name: str, message: str) -> None:
    """``asm: NAME: message`` on stderr; a name longer than ~100 characters is cut (see asm.errors.echo)."""
    print(f"asm: {name if len(name) <= ECHO_LIMIT else echo(name)}: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run ``asm ARGV``; returns the exit status (0 done, 1 some input failed, 2 the command could not run)."""
    # idle OpenMP threads sleep instead of spinning (set before torch loads): on a busy
    # machine spinning threads make each small op of the box search wait for a core
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command)
    args, extra = parser.parse_known_args(argv)
    if extra:  # an unknown option: the command's own usage, not the top level's
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        sub.choices[args.command].error(f"unrecognized arguments: {echo(' '.join(extra))}")
    try:
        return args.func(args)
    except BrokenPipeError:  # `asm crop ... | head`: the reader left; stop quietly, as head's writers do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141  # 128 + SIGPIPE, what a shell reports for a writer killed by the pipe
