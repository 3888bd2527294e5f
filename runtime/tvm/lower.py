"""ember Graph -> Relax IRModule, built with ``relax.BlockBuilder``.

Each primitive has one Relax lowering, registered against its name in
``LOWERINGS`` (the per-backend table the design asks for; the op's meaning lives in
``ember.ir.ops``). A lowering receives the Relax expressions of the node's inputs
and returns a Relax expression for its output.

Symbolic dimensions (``"B"``, ``"B+2"``) become ``tir.Var``s, so one build serves
every batch size. A fused group (a node holding ``Node.subgraph``) becomes one
private Relax function marked ``Primitive``, which ``FuseTIR`` turns into a single
TIR kernel. Ops that call out of TVM (BLAS matmul, ember's random generator) are
*opaque*: they stay in ``main``, and a fused group containing one is split around it.
"""

from __future__ import annotations

import ast
import re
from typing import Any, Callable, Iterable, Optional

import tvm
from tvm import relax
from tvm import tirx as tir

from ember.ir.graph import Graph, Node, Value
from ember.ir.types import DType, TensorType

Lowering = Callable[["LowerCtx", list, dict, Node], Any]
OPAQUE_PATTERN = 8  # TVM's OpPatternKind.kOpaque: AnnotateTIROpPattern keeps it and FuseOps fuses nothing into it
LOWERINGS: dict[str, Lowering] = {}
# name -> predicate(node, ctx) saying whether this node must be emitted outside primitive functions
OPAQUE: dict[str, Callable[[Node, "LowerCtx"], bool]] = {}


def lowering(*names: str, opaque: Optional[Callable[[Node, "LowerCtx"], bool]] = None):
    """Register ``fn`` as the Relax lowering of each primitive in ``names``."""
    def deco(fn: Lowering) -> Lowering:
        for name in names:
            LOWERINGS[name] = fn
            if opaque is not None:
                OPAQUE[name] = opaque
        return fn
    return deco


class LoweringError(NotImplementedError):
    """A node has no Relax lowering (or its attributes are outside what the lowering supports)."""


def tvm_dtype(dtype: DType) -> str:
    return dtype.name  # ember's names are TVM's ("float32", "bool", "bfloat16", ...)


def sanitize(name: str) -> str:
    name = re.sub(r"\W", "_", name)
    return name if name and not name[0].isdigit() else f"v{name}"


# ------------------------------------------------------------------ symbolic dims
_BINOPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
           ast.FloorDiv: lambda a, b: tir.floordiv(a, b), ast.Mod: lambda a, b: tir.floormod(a, b)}


def parse_dim(text: str, symbol: Callable[[str], tir.Var]) -> tir.PrimExpr:
    """A symbolic dimension such as ``"B"``, ``"B+2"`` or ``"B*16"`` as a TIR expression."""
    def conv(e: ast.AST):
        if isinstance(e, ast.BinOp) and type(e.op) in _BINOPS:
            return _BINOPS[type(e.op)](conv(e.left), conv(e.right))
        if isinstance(e, ast.Constant) and isinstance(e.value, int):
            return tir.IntImm("int64", e.value)
        if isinstance(e, ast.Name):
            return symbol(e.id)
        raise LoweringError(f"cannot lower the symbolic dimension {text!r}")
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError:
        return symbol(text)  # a symbol whose name is not a Python identifier
    return conv(tree)


def dim_symbols(d) -> set[str]:
    if isinstance(d, int):
        return set()
    try:
        return {n.id for n in ast.walk(ast.parse(d, mode="eval")) if isinstance(n, ast.Name)}
    except SyntaxError:
        return {d}


# ------------------------------------------------------------------ context
class LowerCtx:
    """What a lowering can use: the block builder, symbolic dims, options, helpers."""

    def __init__(self, bb: relax.BlockBuilder, options: dict, state: dict) -> None:
        self.bb = bb
        self.options = options
        self.state = state  # shared across functions of one module (unique ids, kernel names)
        self.symbols: dict[str, tir.Var] = {}
        # symbol -> (Relax tensor of this function whose shape carries it, axis): lets a TE kernel read a
        # dimension's runtime size from a tensor's shape (emit_te renames closure-captured symbolic vars)
        self.symbol_sources: dict[str, tuple] = {}
        # the function being built: ember value name -> its Relax expression / producing node, so a
        # lowering can look through its operands (e.g. matmul folding a transpose into the BLAS call)
        self.scope: dict[str, Any] = {}
        self.producers: dict[str, tuple[Node, dict]] = {}  # value -> (its node, the scope of the node's inputs)

    def symbol(self, name: str) -> tir.Var:
        if name not in self.symbols:
            self.symbols[name] = tir.Var(sanitize(name), "int64")
        return self.symbols[name]

    def add_sources(self, values: list[Value], exprs: list) -> None:
        for v, e in zip(values, exprs):
            for axis, d in enumerate(v.shape):
                if isinstance(d, str) and d not in self.symbol_sources:
                    self.symbol_sources[d] = (e, axis)

    def dim(self, d) -> tir.PrimExpr:
        return tir.IntImm("int64", d) if isinstance(d, int) else parse_dim(d, self.symbol)

    def shape(self, shape: Iterable) -> list:
        return [self.dim(d) for d in shape]

    def shape_expr(self, shape: Iterable) -> relax.ShapeExpr:
        return relax.ShapeExpr(self.shape(shape))

    def tensor_type(self, t: TensorType) -> relax.TensorType:
        return relax.TensorType(self.shape(t.shape), tvm_dtype(t.dtype))

    def uid(self) -> int:
        self.state["uid"] = self.state.get("uid", 0) + 1
        return self.state["uid"]

    def emit_te(self, fn, *args, name: str = "kernel", standalone: bool = False, **kwargs):
        """Emit a TE kernel; ``standalone``: TVM's FuseOps must not merge it with its neighbours (its
        pattern is marked opaque), e.g. so that a reshape after it stays a free view."""
        var = self.bb.emit_te(fn, *args, primfunc_name_hint=name, **kwargs)
        if standalone:
            gv = self.bb.lookup_binding(var).args[0]
            self.bb.update_func(gv, self.bb.get()[gv].with_attr("op_pattern", OPAQUE_PATTERN))
        return var

    def is_opaque(self, node: Node) -> bool:
        pred = OPAQUE.get(node.op)
        return bool(pred and pred(node, self))


def lower_node(ctx: LowerCtx, node: Node, args: list) -> relax.Var:
    """Lower one node and bind its result (errors name the op, its operand types and the user's line)."""
    fn = LOWERINGS.get(node.op)
    if fn is None:
        raise LoweringError(f"{node.op}: no TVM (Relax) lowering is registered"
                            + (f" (at {node.provenance})" if str(node.provenance) else ""))
    try:
        if any(d == 0 for d in node.output.shape) and not ctx.is_opaque(node):
            # an empty result needs no computation (and Relax reads a 0 in a reshape as "keep this dim")
            expr = relax.op.zeros(ctx.shape_expr(node.output.shape), tvm_dtype(node.output.dtype))
        else:
            expr = fn(ctx, args, node.attrs, node)
        if isinstance(expr, relax.Var):
            return expr
        return ctx.bb.emit(expr, name_hint=sanitize(node.output.name))
    except LoweringError:
        raise
    except Exception as err:  # TVM's own errors are long: say which node failed first
        types = ", ".join(str(v.type) for v in node.inputs)
        where = f" at {node.provenance}" if str(node.provenance) else ""
        first = str(err).strip().splitlines()
        raise LoweringError(f"{node.op}({types}) -> {node.output.type}{where}: Relax lowering failed: "
                            f"{first[-1] if first else type(err).__name__}") from err


# ------------------------------------------------------------------ fused groups
class _Segment:
    """A run of a fused group's nodes emitted as one Primitive function."""

    def __init__(self, nodes: list[Node], body: Graph) -> None:
        self.nodes = nodes
        inside = {n.output.name for n in nodes}
        self.params: list[Value] = []  # values read by the segment but produced outside it
        seen: set[str] = set()
        for n in nodes:
            for v in n.inputs:
                if v.name not in inside and v.name not in seen:
                    seen.add(v.name)
                    self.params.append(v)
        members = set(map(id, nodes))
        used_later = {v.name for n in body.nodes if id(n) not in members for v in n.inputs}
        used_later |= {v.name for v in body.outputs}
        self.outs = [n.output for n in nodes if n.output.name in used_later]
        # symbols used inside but carried by no tensor parameter arrive as a shape parameter
        defined = {s for v in self.params for d in v.shape for s in dim_symbols(d)}
        needed = {s for n in nodes for d in n.output.shape for s in dim_symbols(d)}
        needed |= {s for n in nodes if n.op == "full" and isinstance(n.attrs.get("value"), str)
                   for s in dim_symbols(n.attrs["value"])}
        self.extra = sorted(needed - defined)
        self.gvar: Optional[relax.GlobalVar] = None


def _split_group(ctx: LowerCtx, body: Graph) -> list:
    """A group's nodes as a sequence of opaque nodes and Primitive segments, in a valid order."""
    parts: list = []
    pending: list[Node] = []
    pending_names: set[str] = set()
    for n in body.nodes:
        if ctx.is_opaque(n):
            if any(v.name in pending_names for v in n.inputs):  # it needs the segment's result first
                parts.append(_Segment(pending, body))
                pending, pending_names = [], set()
            parts.append(n)
        else:
            pending.append(n)
            pending_names.add(n.output.name)
    if pending:
        parts.append(_Segment(pending, body))
    return parts


def _define_segment(ctx: LowerCtx, seg: _Segment) -> None:
    """Add the segment's Primitive function to the module (before ``main`` is built)."""
    bb = ctx.bb
    fctx = LowerCtx(bb, ctx.options, ctx.state)
    fvars = [relax.Var(sanitize(v.name), fctx.tensor_type(v.type)) for v in seg.params]
    shape_param = []
    if seg.extra:
        shape_param = [relax.Var("dims", relax.ShapeType([fctx.symbol(s) for s in seg.extra]))]
    fname = f"fused_{ctx.state.setdefault('nfused', 0)}"
    ctx.state["nfused"] += 1
    with bb.function(fname, fvars + shape_param, attrs={"Primitive": True}, private=True):
        with bb.dataflow():
            fenv = {v.name: fv for v, fv in zip(seg.params, fvars)}
            fctx.scope = fenv
            fctx.add_sources(seg.params, fvars)
            for n in seg.nodes:
                fctx.producers[n.output.name] = (n, fenv)
                fenv[n.output.name] = lower_node(fctx, n, [fenv[v.name] for v in n.inputs])
            res = [fenv[v.name] for v in seg.outs]
            gv = bb.emit_output(res[0] if len(res) == 1 else relax.Tuple(res))
        seg.gvar = bb.emit_func_output(gv)


def _lower_group(ctx: LowerCtx, node: Node, args: list, parts: list) -> relax.Var:
    """Emit a fused group in ``main``: calls of its Primitive functions and its opaque nodes."""
    body = node.subgraph
    local: dict[str, Any] = {v.name: a for v, a in zip(body.inputs, args)}  # value -> relax var in main
    outer = ctx.scope, ctx.producers
    # a group input is the outer value it reads: lowerings may look through it (transposes into BLAS calls)
    inner_producers = {bv.name: outer[1][ov.name] for bv, ov in zip(body.inputs, node.inputs) if ov.name in outer[1]}
    ctx.scope, ctx.producers = local, inner_producers
    try:
        for part in parts:
            if isinstance(part, Node):
                ctx.producers[part.output.name] = (part, local)
                local[part.output.name] = lower_node(ctx, part, [local[v.name] for v in part.inputs])
                continue
            call_args = [local[v.name] for v in part.params]
            if part.extra:
                call_args.append(ctx.shape_expr(part.extra))
            result = ctx.bb.emit(relax.Call(part.gvar, call_args), name_hint=part.gvar.name_hint)
            if len(part.outs) == 1:
                local[part.outs[0].name] = result
            else:
                for i, v in enumerate(part.outs):
                    local[v.name] = ctx.bb.emit(relax.TupleGetItem(result, i), name_hint=sanitize(v.name))
            for n in part.nodes:
                ctx.producers[n.output.name] = (n, local)
    finally:
        ctx.scope, ctx.producers = outer
    return local[body.outputs[0].name]


# ------------------------------------------------------------------ graphs
def graph_to_relax(graph: Graph, options: Optional[dict] = None, func_name: str = "main") -> tvm.IRModule:
    """Lower ``graph`` to an IRModule whose ``main`` takes the graph inputs and returns a tuple of outputs."""
    from . import ops  # noqa: F401  registers every lowering

    options = dict(options or {})
    bb = relax.BlockBuilder()
    ctx = LowerCtx(bb, options, {})
    # fused groups first: each Primitive function is a module-level function of its own
    groups: dict[int, list] = {}
    for node in graph.nodes:
        if node.subgraph is not None:
            groups[id(node)] = parts = _split_group(ctx, node.subgraph)
            for part in parts:
                if isinstance(part, _Segment):
                    _define_segment(ctx, part)
    params = [relax.Var(sanitize(v.name), ctx.tensor_type(v.type)) for v in graph.inputs]
    with bb.function(func_name, params):
        with bb.dataflow():
            env: dict[str, Any] = {v.name: p for v, p in zip(graph.inputs, params)}
            ctx.scope = env
            ctx.add_sources(graph.inputs, params)
            for node in graph.nodes:
                args = [env[v.name] for v in node.inputs]
                ctx.producers[node.output.name] = (node, env)
                if node.subgraph is not None:
                    env[node.output.name] = _lower_group(ctx, node, args, groups[id(node)])
                else:
                    env[node.output.name] = lower_node(ctx, node, args)
            gv = bb.emit_output(relax.Tuple([env[v.name] for v in graph.outputs]))
        bb.emit_func_output(gv)
    # drop what no output needs, e.g. a transpose a BLAS call reads through
    return relax.transform.DeadCodeElimination()(bb.get())
