"""Blocked-layout (NCHWc) convolutions for ONNX Runtime's CPU provider, with weights that change every call.

ONNX Runtime runs a float32 ``Conv`` fastest in its NCHWc form (``com.microsoft.nchwc`` ops: activations
in channel blocks of 8 (AVX2) or 16 (AVX-512), filters pre-arranged in the same blocks), but its graph
optimizer only converts convolutions whose weights are constant initializers. In a training step the
weights are graph inputs, so every conv ran the plain NCHW kernel, about 1.7x slower on the digits CNN's
3x3 convs (measured in one process, interleaved: 890 -> 520 us for 64x16x8x8 -> 32 channels).

``rewrite_convs`` does the conversion itself for the session ember opens: the filter is rearranged by a
Reshape + Transpose inside the graph (a few thousand floats a step), the input by ``ReorderInput`` and
the output by ``ReorderOutput``. A stride-1 ``ConvTranspose`` (a convolution's input gradient) becomes
the NCHWc convolution of the flipped, channel-swapped filter. The filter layouts are ONNX Runtime's own
(``OIHWBiBo``: [O/B, I/B, kh, kw, Bi, Bo]; ``OIHWBo`` for an NCHW input with fewer than B channels); the
block size and both layouts are read once per process from the graph ONNX Runtime itself produces for
a small constant-weight convolution, so a runtime that arranges them differently (or has no NCHWc
kernels) leaves every conv as it was. Exported models never contain these ops: only the CPU session
ember opens for ``ember.compile`` does.
"""

from __future__ import annotations

import functools
import os
import tempfile

import numpy as np
import onnx
from onnx import helper, numpy_helper

DOMAIN = "com.microsoft.nchwc"


def _filter_bibo(w: np.ndarray, b: int) -> np.ndarray:
    o, i, kh, kw = w.shape
    return w.reshape(o // b, b, i // b, b, kh, kw).transpose(0, 2, 4, 5, 3, 1)


def _filter_bo(w: np.ndarray, b: int) -> np.ndarray:
    o, i, kh, kw = w.shape
    return w.reshape(o // b, b, i, kh, kw).transpose(0, 2, 3, 4, 1)


@functools.lru_cache(maxsize=1)
def block_size() -> int | None:
    """ONNX Runtime's NCHWc block size on this CPU, when its filter layouts are the ones this module writes."""
    import onnxruntime as ort
    probes = {}
    for cin in (16, 1):  # a blocked input (OIHWBiBo) and a plain NCHW input with few channels (OIHWBo)
        w = np.arange(16 * cin * 9, dtype=np.float32).reshape(16, cin, 3, 3)
        graph = helper.make_graph(
            [helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])], "probe",
            [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, cin, 8, 8])],
            [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)], [numpy_helper.from_array(w, "w")])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
        with tempfile.TemporaryDirectory() as tmp:
            so = ort.SessionOptions()
            so.log_severity_level = 3
            so.optimized_model_filepath = os.path.join(tmp, "probe.onnx")
            try:
                ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
                optimized = onnx.load(so.optimized_model_filepath)
            except Exception:  # noqa: BLE001 - no NCHWc support: keep plain convolutions
                return None
        convs = [n for n in optimized.graph.node if n.op_type == "Conv" and n.domain == DOMAIN]
        if len(convs) != 1:
            return None
        inits = {t.name: numpy_helper.to_array(t) for t in optimized.graph.initializer}
        probes[cin] = inits.get(convs[0].input[1])
    for b in (16, 8, 4):
        bibo, bo = probes[16], probes[1]
        if (bibo is not None and bo is not None and 16 % b == 0
                and np.array_equal(bibo.ravel(), _filter_bibo(np.arange(16 * 16 * 9, dtype=np.float32)
                                                              .reshape(16, 16, 3, 3), b).ravel())
                and np.array_equal(bo.ravel(), _filter_bo(np.arange(16 * 9, dtype=np.float32)
                                                          .reshape(16, 1, 3, 3), b).ravel())):
            return b
    return None


def _attrs(node) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def rewrite_convs(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with its 2-D float32 convolutions over non-constant filters in ONNX Runtime's NCHWc form."""
    b = block_size()
    if b is None:
        return model
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {}
    for vi in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
        t = vi.type.tensor_type
        if t.elem_type == onnx.TensorProto.FLOAT and t.HasField("shape"):
            shapes[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim)
    constants = {t.name for t in model.graph.initializer}
    out = onnx.ModelProto()
    out.CopyFrom(model)
    new_nodes, changed = [], False
    for i, node in enumerate(model.graph.node):
        repl = None
        if node.domain == "" and node.op_type in ("Conv", "ConvTranspose") and node.input[1] not in constants:
            repl = _rewrite(node, shapes, b, f"nchwc{i}")
        if repl is None:
            new_nodes.append(node)
        else:
            new_nodes.extend(repl)
            changed = True
    if not changed:
        return model
    del out.graph.node[:]
    out.graph.node.extend(new_nodes)
    if not any(op.domain == DOMAIN for op in out.opset_import):
        out.opset_import.append(helper.make_opsetid(DOMAIN, 1))
    return out


def _rewrite(node, shapes: dict, b: int, tag: str) -> list | None:
    w_shape = shapes.get(node.input[1])
    if w_shape is None or len(w_shape) != 4 or None in w_shape:
        return None
    a = _attrs(node)
    if a.get("group", 1) != 1 or a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET") or "output_shape" in a:
        return None
    kh, kw = w_shape[2:]
    pre = []
    w = node.input[1]
    if node.op_type == "ConvTranspose":
        # stride 1: the convolution of x with the filter flipped and its channel axes swapped, padded by
        # dilation * (k - 1) - pad on each side
        if any(s != 1 for s in a.get("strides", [1, 1])) or any(a.get("output_padding", [0, 0])):
            return None
        dil = a.get("dilations", [1, 1])
        top, left, bottom, right = a.get("pads", [0, 0, 0, 0])
        pads = [dil[0] * (kh - 1) - top, dil[1] * (kw - 1) - left, dil[0] * (kh - 1) - bottom,
                dil[1] * (kw - 1) - right]
        if min(pads) < 0:
            return None
        cin, cout = w_shape[0], w_shape[1]
        swapped, flipped = f"{tag}_swapped", f"{tag}_flipped"
        consts = _ints(tag, {"starts": [-1, -1], "ends": [np.iinfo(np.int64).min] * 2, "axes": [2, 3],
                             "steps": [-1, -1]})
        pre += [c for c, _ in consts.values()]
        pre.append(helper.make_node("Transpose", [w], [swapped], perm=[1, 0, 2, 3]))
        pre.append(helper.make_node("Slice", [swapped] + [consts[k][1] for k in ("starts", "ends", "axes", "steps")],
                                    [flipped]))
        w, o, c = flipped, cout, cin
        conv_attrs = {"kernel_shape": [kh, kw], "pads": pads, "dilations": list(dil), "strides": [1, 1]}
    else:
        o, c = w_shape[0], w_shape[1]
        conv_attrs = {"kernel_shape": [kh, kw], "pads": list(a.get("pads", [0, 0, 0, 0])),
                      "dilations": list(a.get("dilations", [1, 1])), "strides": list(a.get("strides", [1, 1]))}
    if o % b:
        return None
    if c % b == 0:
        blocked_input, shape6, perm = True, [o // b, b, c // b, b, kh, kw], [0, 2, 4, 5, 3, 1]
    elif c < b:
        blocked_input, shape6, perm = False, [o // b, b, c, kh, kw], [0, 2, 3, 4, 1]
    else:
        return None
    consts = _ints(tag, {"shape6": shape6, "shape4": [o, c, kh, kw]})
    pre += [n for n, _ in consts.values()]
    w6, w6t, wr = f"{tag}_w6", f"{tag}_w6t", f"{tag}_filter"
    pre += [helper.make_node("Reshape", [w, consts["shape6"][1]], [w6]),
            helper.make_node("Transpose", [w6], [w6t], perm=perm),
            helper.make_node("Reshape", [w6t, consts["shape4"][1]], [wr])]
    x = node.input[0]
    if blocked_input:
        pre.append(helper.make_node("ReorderInput", [x], [f"{tag}_x"], domain=DOMAIN, channels_last=0))
        x = f"{tag}_x"
    inputs = [x, wr] + ([node.input[2]] if node.op_type == "Conv" and len(node.input) > 2 and node.input[2] else [])
    pre.append(helper.make_node("Conv", inputs, [f"{tag}_y"], domain=DOMAIN, group=1, name=node.name, **conv_attrs))
    pre.append(helper.make_node("ReorderOutput", [f"{tag}_y"], [node.output[0]], domain=DOMAIN, channels_last=0,
                                channels=o))
    return pre


def _ints(tag: str, values: dict) -> dict:
    """Constant int64 tensors as Constant nodes: name -> (node, output name)."""
    out = {}
    for k, v in values.items():
        name = f"{tag}_{k}"
        value = numpy_helper.from_array(np.asarray(v, np.int64), name)
        out[k] = (helper.make_node("Constant", [], [name], value=value), name)
    return out
