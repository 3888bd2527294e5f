"""``torch.backends``: the flags PyTorch programs set (``cudnn.benchmark = True``) and the availability
checks they make (``mps.is_available()``). ember has no cuDNN, MPS or TF32 paths: the flags are accepted
and kept, and the checks say what is here."""

from __future__ import annotations

from types import SimpleNamespace

cudnn = SimpleNamespace(enabled=True, benchmark=False, deterministic=False, allow_tf32=True,
                        is_available=lambda: False, version=lambda: None)
mps = SimpleNamespace(is_available=lambda: False, is_built=lambda: False)
mkldnn = SimpleNamespace(enabled=True, is_available=lambda: False)
openmp = SimpleNamespace(is_available=lambda: False)
cuda = SimpleNamespace(matmul=SimpleNamespace(allow_tf32=False, allow_fp16_reduced_precision_reduction=True,
                                              allow_bf16_reduced_precision_reduction=True),
                       is_built=lambda: False)

__all__ = ["cudnn", "cuda", "mkldnn", "mps", "openmp"]
