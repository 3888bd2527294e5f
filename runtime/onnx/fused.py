"""Lowering of fused groups (nodes holding a ``subgraph``).

Two forms: ``inline`` emits the body's nodes into the enclosing graph;
``function`` emits a model-local ONNX function (domain ``ember.fused``) and one
call node, which keeps the group visible in the exported model. ONNX Runtime
inlines local functions when it loads a model, so both run alike
(benchmarks/bench_onnx.py measures it); ``inline`` is the default.
"""

from __future__ import annotations

from onnx import helper

from .lowering import LoweringContext, lower_nodes

FUNCTION_DOMAIN = "ember.fused"


def lower_fused(ctx: LoweringContext, node, xs: list[str]) -> str:
    body = node.subgraph
    if len(body.inputs) != len(xs):
        raise ValueError(f"fused node %{node.output.name}: body has {len(body.inputs)} inputs, node has {len(xs)}")
    if ctx.fuse_mode == "function":
        return _as_function(ctx, node, xs)
    sub = LoweringContext(body, ctx.opset, fuse_mode=ctx.fuse_mode)
    sub._used = ctx._used  # one namespace: the body's values land in the enclosing graph
    sub._const_cache = ctx._const_cache
    sub.shared = ctx.shared
    for v, x, outer_v in zip(body.inputs, xs, node.inputs):
        sub.names[v.name] = x
        sub.outer[v.name] = (ctx, outer_v)
    # symbols of the body resolve through the enclosing graph's inputs when it has them
    sub._sym_source = {**sub._sym_source, **ctx._sym_source}
    sub._dim_cache = ctx._dim_cache
    for v, x in zip(body.inputs, xs):
        for axis, d in enumerate(v.shape):
            if isinstance(d, str) and d not in ctx._sym_source:
                sub._sym_source[d] = (v.name, axis)
    lower_nodes(sub)
    for n in sub.nodes:
        if node.provenance.module and not any(p.key == "module" for p in n.metadata_props):
            entry = n.metadata_props.add()
            entry.key, entry.value = "module", node.provenance.module
        entry = n.metadata_props.add()
        entry.key, entry.value = "fused_group", node.output.name
    ctx.nodes.extend(sub.nodes)
    ctx.initializers.extend(sub.initializers)
    ctx.functions.update(sub.functions)
    ctx.required.update(sub.required)
    return sub.names[body.outputs[0].name]


def _as_function(ctx: LoweringContext, node, xs: list[str]) -> str:
    body = node.subgraph
    fname = f"fused_{node.output.name}".replace(".", "_")
    sub = LoweringContext(body, ctx.opset, fuse_mode="function")
    for v in body.inputs:
        sub.names[v.name] = v.name
    lower_nodes(sub)
    if sub.initializers:  # functions cannot hold initializers: turn them into Constant nodes
        consts = [helper.make_node("Constant", [], [t.name], value=t) for t in sub.initializers]
        sub.nodes[:0] = consts
    out = sub.names[body.outputs[0].name]
    fn = helper.make_function(FUNCTION_DOMAIN, fname, [v.name for v in body.inputs], [out], sub.nodes,
                              opset_imports=[helper.make_opsetid("", ctx.opset)])
    ctx.functions[fname] = fn
    ctx.functions.update(sub.functions)
    ctx.required.update(sub.required)
    return ctx.op(fname, *xs, domain=FUNCTION_DOMAIN)
