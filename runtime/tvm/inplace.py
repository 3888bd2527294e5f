"""Write a training step's updated parameters and state straight into their input buffers (CPU).

A compiled training step returns each updated parameter, optimizer state and gradient as a new
output, which ember then copies back into the tensor it came from (``Capture.finish``): for the
784-512-256-10 MLP about 6 MB of copies, ~0.8 ms of a ~4 ms step. ONNX Runtime writes such
outputs in place (``runtime/onnx/session.py``); this pass does the same for TVM.

After fusion, an update is one ``call_tir`` of a fused elementwise kernel that reads the old value
(a ``main`` parameter) and writes the new one. When

- the output is the write-back of exactly that parameter (``graph.meta["writeback"]``), with the
  parameter's shape and dtype,
- no later binding of ``main`` reads the parameter (it is its last use, so nothing needs the old
  value after the kernel ran),
- and the kernel reads the parameter only at the very index it stores the output to (checked on
  the TIR: every load of the parameter's buffer and every store to the output buffer use the same
  index expressions, so each element is read before it is overwritten),

the call becomes ``call_tir_inplace`` on that argument (TVM's own rewrite of the PrimFunc to store
into the input buffer). The backend then hands the caller its own array back for that output (no
copy at all) when the input was shared with TVM without a copy; a staged input's buffer is copied
out as before.
"""

from __future__ import annotations

import re

import tvm
from tvm import relax
from tvm import tirx as tir

_CALL_TIR = tvm.ir.Op.get("relax.call_tir")


def inplace_pairs(graph) -> list[tuple[int, int]]:
    """(output index, input index) of every written-back value whose input has the output's type."""
    index = {v.name: i for i, v in enumerate(graph.inputs)}
    pairs = []
    for idx, kind, name in graph.meta.get("writeback", []):
        target = name if kind == "value" else f"{name}.grad" if kind == "grad" else None
        i = index.get(target)
        if i is not None and idx >= 0 and graph.inputs[i].type == graph.outputs[int(idx)].type:
            pairs.append((int(idx), i))
    return pairs


def make_inplace(mod: tvm.IRModule, pairs: list[tuple[int, int]], func_name: str = "main") -> tvm.IRModule:
    """``mod`` with the write-back updates of ``pairs`` done in place where provably safe (see above)."""
    if not pairs:
        return mod
    main = mod[func_name]
    body = main.body
    if not isinstance(body, relax.SeqExpr) or not isinstance(body.body, relax.Var):
        return mod
    bindings = [b for block in body.blocks for b in block.bindings]
    bound = {b.var: n for n, b in enumerate(bindings) if isinstance(b, relax.VarBinding)}
    ret = bound.get(body.body)
    if ret is None or not isinstance(bindings[ret].value, relax.Tuple):
        return mod
    fields = list(bindings[ret].value.fields)
    last_use: dict = {}
    for n, b in enumerate(bindings):
        if isinstance(b, relax.VarBinding):
            for v in relax.analysis.free_vars(b.value):
                last_use[v] = n
    params = list(main.params)
    builder = relax.BlockBuilder(mod)
    replaced: dict[int, relax.Expr] = {}
    for o, i in pairs:
        if o >= len(fields) or i >= len(params) or not isinstance(fields[o], relax.Var):
            continue
        n = bound.get(fields[o])
        p = params[i]
        if n is None or n in replaced or last_use.get(p) != n or any(f.same_as(p) for f in fields):
            continue
        call = bindings[n].value
        if not isinstance(call, relax.Call) or not call.op.same_as(_CALL_TIR) or len(call.args) < 2:
            continue
        args = list(call.args[1].fields) if isinstance(call.args[1], relax.Tuple) else []
        ks = [k for k, a in enumerate(args) if a.same_as(p)]
        gvar = call.args[0]
        if len(ks) != 1 or not isinstance(gvar, relax.GlobalVar):
            continue
        func = mod[gvar]
        if not isinstance(func, tir.PrimFunc) or len(func.params) != len(args) + 1 or not _pointwise(func, ks[0]):
            continue
        inplace_func = _inplace_prim_func(func, ks[0])
        if inplace_func is None:
            continue
        out_ty = _call_out_type(call)
        if out_ty is None:
            continue
        new_gvar = builder.add_func(inplace_func, f"{gvar.name_hint}_inplace{ks[0]}")  # a typed GlobalVar
        replaced[n] = relax.op.call_tir_inplace(new_gvar, relax.Tuple(args), [ks[0]], out_ty)
    if not replaced:
        return mod
    blocks, n = [], 0  # n: the running binding number, as in ``bindings``
    for block in body.blocks:
        new = []
        for b in block.bindings:
            new.append(relax.VarBinding(b.var, replaced[n]) if n in replaced else b)
            n += 1
        blocks.append(relax.DataflowBlock(new) if isinstance(block, relax.DataflowBlock) else relax.BindingBlock(new))
    fn = relax.Function(params, relax.SeqExpr(blocks, body.body), main.ret_ty, main.is_pure, main.attrs)
    mod = builder.get()
    mod.update_func(mod.get_global_var(func_name), fn)
    return mod


def _pointwise(func, k: int) -> bool:
    """Whether the kernel reads buffer ``k`` only at the index it stores its output to.

    Checked on the kernel's TVMScript (this TVM exposes no TIR visitor to Python): every access of
    the two buffers, ``T.reads``/``T.writes`` regions included, must carry one and the same index text.
    """
    src, dst = func.params[k], func.params[-1]  # this TVM's PrimFunc parameters are the buffers
    if src.dtype != dst.dtype or len(src.shape) != len(dst.shape) or src.name == dst.name:
        return False
    if [str(d) for d in src.shape] != [str(d) for d in dst.shape]:
        return False
    text = func.script()
    indices = set()
    for name in (src.name, dst.name):
        uses = re.findall(r"(?<![\w.])" + re.escape(name) + r"\[([^\[\]]*)\]", text)
        if len(uses) != text.count(name + "["):  # an access the pattern could not read: give up
            return False
        indices.update(uses)
    return len(indices) == 1


def _call_out_type(call):
    for attr in ("sinfo_args", "ty_args", "type_args"):
        got = getattr(call, attr, None)
        if got is not None and len(got) == 1:
            return got[0]
    return None


def _inplace_prim_func(func, k: int):
    """The kernel storing into its parameter ``k`` instead of a separate output buffer: the output
    parameter dropped from the signature and its accesses renamed (a TVMScript round trip; this
    TVM exposes no TIR rewriting to Python). None when the text is not the expected shape."""
    src, dst = func.params[k].name, func.params[-1].name
    text = func.script()
    m = re.search(r",\s*" + re.escape(dst) + r": T\.Buffer\(", text)
    if m is None:
        return None
    i, depth = m.end(), 1
    while depth and i < len(text):
        depth += (text[i] == "(") - (text[i] == ")")
        i += 1
    if depth or not text[i:].lstrip().startswith(")"):  # the output must be the last parameter
        return None
    body = re.sub(r"(?<![\w.])" + re.escape(dst) + r"(?=\[)", src, text[:m.start()] + text[i:])
    if re.search(r"(?<![\w.])" + re.escape(dst) + r"(?![\w])", body):  # a use the rename missed
        return None
    try:
        return tvm.script.parser.parse(body)
    except Exception:  # noqa: BLE001 - keep the out-of-place call
        return None
