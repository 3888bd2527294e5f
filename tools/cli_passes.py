"""``ember ir ... --passes a,b,c [--print-after-all] [--print-after P] [--dump-dir DIR] [--timing]``.

A plugin of the ``ember`` command line (modules named ``cli_*`` are loaded by
``ember.tools.cli``): it runs ``ember.passes`` pipelines on the traced or loaded
graph, printing IR between passes and saving numbered dumps on request.
"""

from __future__ import annotations

import argparse
import sys

from .cli import CLIError, register_ir_extension


def _configure(p: argparse.ArgumentParser) -> None:
    from ember.passes import describe_passes
    names = ", ".join(name for name, _ in describe_passes())
    p.add_argument("--passes", metavar="P1,P2,...", default="",
                   help=f"run these passes on the graph before printing it (available: {names})")
    p.add_argument("--print-after-all", action="store_true", help="print the IR after every pass")
    p.add_argument("--print-after", action="append", default=[], metavar="PASS",
                   help="print the IR after this pass (repeatable)")
    p.add_argument("--dump-dir", metavar="DIR",
                   help="write the IR before the first pass and after each pass to DIR/NNN-PASS.eir")
    p.add_argument("--timing", action="store_true", help="print a table of pass times and node counts")


def _handle(graph, args: argparse.Namespace):
    if not args.passes:
        if args.print_after_all or args.print_after or args.dump_dir or args.timing:
            raise CLIError("--print-after-all/--print-after/--dump-dir/--timing need --passes")
        return None
    from ember.passes import cli_run_passes
    try:
        return cli_run_passes(graph, args.passes, print_after_all=args.print_after_all,
                              print_after=args.print_after, dump_dir=args.dump_dir, timing=args.timing,
                              stream=sys.stdout)
    except ValueError as err:
        raise CLIError(str(err).splitlines()[0]) from None


register_ir_extension(_configure, _handle)
