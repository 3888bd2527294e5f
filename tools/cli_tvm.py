"""TVM parts of the ``ember`` command line (a plugin: ``ember.tools.cli`` loads ``cli_*`` modules).

::

    ember ir model.py:Net --input 'f32[B,784]' --backend tvm --show relax   # the Relax module ember builds
    ember ir model.py:Net --input 'f32[B,784]' --backend tvm --show tir     # after TVM's fusion + ember's schedules
    ember cache info                                                       # what the compile cache holds
    ember cache clear                                                      # empty it
"""

from __future__ import annotations

import argparse

from .cli import CLIError, register_command, register_ir_extension


def _configure_ir(p: argparse.ArgumentParser) -> None:
    if "--backend" not in p._option_string_actions:  # another plugin may already offer --backend
        p.add_argument("--backend", default=None, help="show what this backend makes of the graph (tvm)")
    p.add_argument("--show", choices=("relax", "tir"), default=None,
                   help="with --backend tvm: print the Relax module ember lowers the graph to (after ember's "
                        "passes), or 'tir': the kernels after TVM's fusion and ember's CPU schedules")
    p.add_argument("--tvm-target", default="llvm", metavar="TARGET",
                   help="TVM target for --backend tvm (default llvm: the host CPU; or cuda)")


def _handle_ir(graph, args: argparse.Namespace):
    backend = getattr(args, "backend", None)
    if args.show is None:
        return None
    if backend != "tvm":
        raise CLIError(f"--show {args.show} needs --backend tvm")
    try:
        from ember.runtime.tvm import relax_module
    except ImportError as err:  # pragma: no cover - TVM not installed
        raise CLIError(f"the tvm backend is unavailable: {err}") from None
    options = {"target": args.tvm_target}
    try:
        mod = relax_module(graph, options)
        if args.show == "tir":
            from ember.runtime.tvm.build import resolve_target, scheduled_module
            mod = scheduled_module(mod, resolve_target(args.tvm_target), options)
    except Exception as err:  # noqa: BLE001 - lowering errors are user-facing here
        raise CLIError(f"tvm lowering failed: {str(err).strip().splitlines()[-1]}") from None
    return mod.script(show_meta=False)


def _configure_cache(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("info", "clear"), help="info: list the compiled modules; clear: delete them")
    p.add_argument("--json", action="store_true", help="with info: print JSON")


def _run_cache(args: argparse.Namespace) -> int:
    import json

    from ember.runtime.tvm import cache
    if args.action == "clear":
        where = cache.cache_dir()
        n = cache.clear()
        print(f"removed {n} compiled module(s) from {where}")
        return 0
    data = cache.info()
    print(json.dumps(data, indent=1, default=str) if args.json else cache.format_info(data))
    return 0


register_ir_extension(_configure_ir, _handle_ir)
register_command("cache", "show or clear ember's compile cache (TVM modules)", _configure_cache, _run_cache,
                 description="ember's persistent compile cache: compiled TVM modules keyed by graph hash, "
                             "target, build options and the ember/TVM versions, in $EMBER_CACHE_DIR "
                             "(default ~/.cache/ember)")
