"""ONNX Resize / Upsample as ember primitives.

Resize is separable: along each resized axis, output position ``i`` is a weighted sum
of ``n`` input positions. The positions and weights depend only on sizes and
attributes, so they are computed here in numpy (following ONNX's reference
``_interpolate_1d_along_axis``: coordinate transformation, nearest rounding, cubic
and antialias kernels, exclude_outside, edge clamping) and the graph does, per axis,
``take`` the neighbours, multiply by the constant weights and ``sum`` them (nearest
neighbour: one ``take``). tf_crop_and_resize positions outside the input get the
extrapolation value with a ``where``.
"""

from __future__ import annotations

import math

import numpy as np

from ember.ir import ops as P
from ember.ir import types as T
from ember.ir.graph import Value

from .import_ops import _axis, _opt
from .importer import OnnxImportError, converter


# ------------------------------------------------------------------ 1-D kernels (ONNX's definitions)
def _nearest_coeffs(ratio: float, mode: str) -> np.ndarray:
    if float(ratio).is_integer():
        return np.array([0.0, 1.0])
    if mode == "round_prefer_floor":
        return np.array([ratio <= 0.5, ratio > 0.5], dtype=np.float64)
    if mode == "round_prefer_ceil":
        return np.array([ratio < 0.5, ratio >= 0.5], dtype=np.float64)
    if mode == "floor":
        return np.array([1.0, 0.0])
    if mode == "ceil":
        return np.array([0.0, 1.0])
    raise ValueError(f"nearest_mode {mode!r} is not one of round_prefer_floor/round_prefer_ceil/floor/ceil")


def _cubic_coeffs(ratio: float, a: float) -> np.ndarray:
    r1, q = ratio + 1, 1 - ratio
    return np.array([((a * r1 - 5 * a) * r1 + 8 * a) * r1 - 4 * a,
                     ((a + 2) * ratio - (a + 3)) * ratio * ratio + 1,
                     ((a + 2) * q - (a + 3)) * q * q + 1,
                     ((a * (q + 1) - 5 * a) * (q + 1) + 8 * a) * (q + 1) - 4 * a])


def _cubic_coeffs_antialias(ratio: float, scale: float, a: float) -> np.ndarray:
    scale = min(scale, 1.0)

    def k(x: float) -> float:
        x = abs(x)
        if x <= 1:
            return (a + 2) * x ** 3 - (a + 3) * x * x + 1
        if x < 2:
            return a * x ** 3 - 5 * a * x * x + 8 * a * x - 4 * a
        return 0.0
    start = int(np.floor(-2 / scale) + 1)
    c = np.array([k(scale * (i - ratio)) for i in range(start, 2 - start)])
    return c / c.sum()


def _linear_coeffs_antialias(ratio: float, scale: float) -> np.ndarray:
    scale = min(scale, 1.0)
    start = int(np.floor(-1 / scale) + 1)
    args = (np.arange(start, start + 2 - 2 * start) - ratio) * scale
    c = np.clip(1 - np.abs(args), 0, 1)
    return c / c.sum()


def _source_coords(ctm: str, y: np.ndarray, scale: float, in_w: int, out_w_int: int, roi):
    """Input coordinate of each output position, and which ones extrapolate (tf_crop_and_resize)."""
    out_w = scale * in_w
    extrap = None
    if ctm == "align_corners":
        x = np.zeros(out_w_int) if out_w == 1 else y * (in_w - 1) / (out_w - 1)
    elif ctm == "asymmetric":
        x = y / scale
    elif ctm == "tf_crop_and_resize":
        if roi is None:
            raise ValueError("tf_crop_and_resize needs roi")
        if out_w == 1:
            x = np.full(out_w_int, (roi[1] - roi[0]) * (in_w - 1) / 2)
        else:
            x = y * (roi[1] - roi[0]) * (in_w - 1) / (out_w - 1)
        x = x + roi[0] * (in_w - 1)
        extrap = (x < 0) | (x > in_w - 1)
    elif ctm == "pytorch_half_pixel":
        x = np.full(out_w_int, -0.5) if out_w == 1 else (y + 0.5) / scale - 0.5
    elif ctm == "half_pixel":
        x = (y + 0.5) / scale - 0.5
    elif ctm == "half_pixel_symmetric":
        offset = in_w / 2 * (1 - out_w_int / out_w)
        x = offset + (y + 0.5) / scale - 0.5
    else:
        raise ValueError(f"coordinate_transformation_mode {ctm!r} is not supported")
    return x, extrap


def axis_plan(in_w: int, scale: float, out_w: int, coeffs_of, roi, ctm: str, exclude_outside: bool):
    """(neighbour indices [out, n], weights [out, n], extrapolated [out] or None) for one axis."""
    y = np.arange(out_w, dtype=np.float64)
    x, extrap = _source_coords(ctm, y, scale, in_w, out_w, roi)
    x_int = np.floor(x)
    ratios = np.where(x == x_int, 1.0, x - x_int)
    coeffs = np.stack([np.asarray(coeffs_of(float(r), scale), dtype=np.float64) for r in ratios])
    n = coeffs.shape[1]
    pad = int(np.ceil(n / 2))
    xp = x + pad
    p = np.floor(xp).astype(np.int64)
    frac = xp - p
    if n % 2 == 0:
        off = np.where(frac == 0, -(n // 2), -(n // 2) + 1)
    else:
        base = -((n - 1) // 2)
        off = np.where(frac <= 0.5, base, base + 1)
    nb = (p + off)[:, None] + np.arange(n)[None, :] - pad
    if exclude_outside:
        coeffs = np.where((nb < 0) | (nb >= in_w), 0.0, coeffs)
        s = coeffs.sum(axis=-1, keepdims=True)
        coeffs = coeffs / np.where(s == 0, 1.0, s)
    return np.clip(nb, 0, in_w - 1), coeffs, extrap


# ------------------------------------------------------------------ the graph
def _resize_axis(x: Value, axis: int, idx: np.ndarray, coeffs: np.ndarray, extrap, fill: float) -> Value:
    out, n = idx.shape
    r = x.type.ndim
    one_hot = np.all((coeffs == 0) | (coeffs == 1)) and np.all(coeffs.sum(axis=1) == 1)
    if one_hot:  # nearest neighbour (or exact positions): a single take
        pick = idx[np.arange(out), np.argmax(coeffs, axis=1)]
        y = P.take(x, P.constant(value=pick.astype(np.int64)), dim=axis)
    else:
        g = P.take(x, P.constant(value=idx.reshape(-1).astype(np.int64)), dim=axis)
        shape = tuple(x.shape[:axis]) + (out, n) + tuple(x.shape[axis + 1:])
        g = P.reshape(g, shape=shape)
        w = coeffs.astype(x.dtype.np).reshape((1,) * axis + (out, n) + (1,) * (r - axis - 1))
        w = P.broadcast_to(P.constant(value=w), shape=shape)
        y = P.sum_(P.mul(g, w), dims=(axis + 1,), keepdim=False)
    if extrap is not None and extrap.any():
        m = P.broadcast_to(P.constant(value=extrap.reshape((1,) * axis + (out,) + (1,) * (r - axis - 1))),
                           shape=tuple(y.shape))
        y = P.where(m, P.full(shape=tuple(y.shape), value=fill, dtype=y.dtype), y)
    return y


def _const_floats(ctx, i: int, what: str):
    if not _opt(ctx, i):
        return None
    arr = np.asarray(ctx.const(ctx.node.input[i], what), dtype=np.float64).ravel()
    return arr if arr.size else None


def _resize(ctx, x: Value, *, mode: str, scales, sizes, roi, axes, ctm: str, nearest_mode: str, cubic_a: float,
            exclude_outside: bool, extrapolation: float, antialias: bool, policy: str) -> Value:
    r = x.type.ndim
    shape = tuple(x.shape)
    if any(not isinstance(shape[a], int) for a in axes):
        raise OnnxImportError(ctx.where(f"Resize of symbolic dimensions {list(shape)} is not supported"))
    k = len(axes)
    if roi is not None:
        if roi.size != 2 * k and roi.size == 2 * r:
            roi = np.concatenate([roi[list(axes)], roi[[r + a for a in axes]]])
        elif roi.size != 2 * k:
            roi = None if ctm != "tf_crop_and_resize" else roi
    if sizes is not None:
        sizes = [int(s) for s in sizes]
        if len(sizes) != k:
            raise OnnxImportError(ctx.where(f"sizes {sizes} do not match {k} axes"))
        scale_list = [sizes[i] / shape[a] for i, a in enumerate(axes)]
        if policy != "stretch":
            s = min(scale_list) if policy == "not_larger" else max(scale_list)
            if policy not in ("not_larger", "not_smaller"):
                raise OnnxImportError(ctx.where(f"keep_aspect_ratio_policy {policy!r} is not supported"))
            scale_list = [s] * k
            sizes = [int(s * shape[a] + 0.5) for a in axes]
    elif scales is not None:
        if len(scales) != k:
            raise OnnxImportError(ctx.where(f"scales {list(scales)} do not match {k} axes"))
        scale_list = [float(s) for s in scales]
        if any(s <= 0 for s in scale_list):
            raise OnnxImportError(ctx.where(f"scales must be positive, got {scale_list}"))
        sizes = [int(s * shape[a]) for s, a in zip(scale_list, axes)]
    else:
        raise OnnxImportError(ctx.where("Resize needs scales or sizes"))

    if mode == "nearest":
        if antialias:
            raise OnnxImportError(ctx.where("antialias is not defined for nearest mode"))

        def coeffs_of(ratio, scale):
            return _nearest_coeffs(ratio, nearest_mode)
    elif mode == "linear":
        def coeffs_of(ratio, scale):
            return _linear_coeffs_antialias(ratio, scale) if antialias else np.array([1 - ratio, ratio])
    elif mode == "cubic":
        def coeffs_of(ratio, scale):
            return _cubic_coeffs_antialias(ratio, scale, cubic_a) if antialias else _cubic_coeffs(ratio, cubic_a)
    else:
        raise OnnxImportError(ctx.where(f"mode {mode!r} is not nearest/linear/cubic"))

    exact_int = not x.dtype.is_floating_point
    work = T.float64 if exact_int or x.dtype is T.float64 else T.float32
    y = x if x.dtype is work else P.cast(x, dtype=work)
    for i, a in enumerate(axes):
        roi_a = None if roi is None else [roi[i], roi[k + i]]
        if math.isclose(scale_list[i], 1.0) and sizes[i] == shape[a] and \
                (roi_a is None or (math.isclose(roi_a[0], 0.0) and math.isclose(roi_a[1], 1.0))):
            continue  # identity along this axis, as ONNX's reference skips it
        try:
            idx, coeffs, extrap = axis_plan(shape[a], scale_list[i], sizes[i], coeffs_of, roi_a, ctm,
                                            exclude_outside)
        except ValueError as exc:
            raise OnnxImportError(ctx.where(str(exc))) from None
        y = _resize_axis(y, a, idx, coeffs, extrap, extrapolation)
    if y.dtype is not x.dtype:
        if exact_int:  # ONNX saturates: round, clip to the type's range
            info = np.iinfo(x.dtype.np) if x.dtype is not T.bool_ else None
            y = P.round_(y)
            if info is not None:
                y = P.minimum(P.maximum(y, P.full(shape=tuple(y.shape), value=float(info.min), dtype=y.dtype)),
                              P.full(shape=tuple(y.shape), value=float(info.max), dtype=y.dtype))
        y = P.cast(y, dtype=x.dtype)
    return y


@converter("Resize")
def _resize_conv(ctx, node):
    x = ctx.value(node.input[0])
    if ctx.opset < 11:
        raise OnnxImportError(ctx.where("Resize-10 (opset < 11) is not supported; re-export at opset >= 11"))
    r = x.type.ndim
    axes = ctx.attr("axes")
    axes = list(range(r)) if axes is None else [_axis(a, r, ctx) for a in axes]
    sizes = _const_floats(ctx, 3, "sizes")
    return [_resize(ctx, x, mode=ctx.attr("mode", "nearest"), scales=_const_floats(ctx, 2, "scales"),
                    sizes=None if sizes is None else sizes.astype(np.int64), roi=_const_floats(ctx, 1, "roi"),
                    axes=axes, ctm=ctx.attr("coordinate_transformation_mode", "half_pixel"),
                    nearest_mode=ctx.attr("nearest_mode", "round_prefer_floor"),
                    cubic_a=float(ctx.attr("cubic_coeff_a", -0.75)),
                    exclude_outside=bool(int(ctx.attr("exclude_outside", 0))),
                    extrapolation=float(ctx.attr("extrapolation_value", 0.0)),
                    antialias=bool(int(ctx.attr("antialias", 0))),
                    policy=ctx.attr("keep_aspect_ratio_policy", "stretch"))]


@converter("Upsample")
def _upsample(ctx, node):
    x = ctx.value(node.input[0])
    scales = ctx.attr("scales") if ctx.opset < 9 else _const_floats(ctx, 1, "scales")
    if scales is None:
        raise OnnxImportError(ctx.where("Upsample needs scales"))
    mode = ctx.attr("mode", "nearest")
    # Upsample is Resize with asymmetric coordinates; nearest takes the floor (np.repeat for integer scales)
    return [_resize(ctx, x, mode="linear" if mode in ("linear", "bilinear") else mode, scales=list(scales),
                    sizes=None, roi=None, axes=list(range(x.type.ndim)), ctm="asymmetric", nearest_mode="floor",
                    cubic_a=-0.75, exclude_outside=False, extrapolation=0.0, antialias=False, policy="stretch")]
