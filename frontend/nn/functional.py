"""``ember.nn.functional``: PyTorch's functional API over ember primitives.

Everything except convolution and pooling is a composition of primitives, so
autodiff, export and fusion cover it; conv/pool call the primitives of
``ember.ir.ops.nn``.
"""

from __future__ import annotations

from ._functional.activation import (  # noqa: F401
    celu, elu, gelu, glu, hardsigmoid, hardswish, hardtanh, leaky_relu, log_softmax, logsigmoid, mish, prelu,
    relu, relu6, relu_, selu, sigmoid, silu, softmax, softmin, softplus, softsign, tanh, tanhshrink, threshold,
)
from ._functional.basic import (  # noqa: F401
    alpha_dropout, batch_norm, bilinear, dropout, dropout1d, dropout2d, dropout3d, embedding, group_norm,
    instance_norm, layer_norm, linear, local_response_norm, normalize, one_hot, pad, rms_norm,
)
from ._functional.loss import (  # noqa: F401
    binary_cross_entropy, binary_cross_entropy_with_logits, cosine_similarity, cross_entropy, huber_loss,
    kl_div, l1_loss, margin_ranking_loss, mse_loss, nll_loss, poisson_nll_loss, smooth_l1_loss,
)
from ._functional.conv import (  # noqa: F401
    adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_max_pool1d, adaptive_max_pool2d, avg_pool1d, avg_pool2d,
    conv1d, conv2d, conv_transpose1d, conv_transpose2d, lp_pool2d, max_pool1d, max_pool2d,
)
from ._functional.sampling import interpolate, upsample  # noqa: F401
from ._functional.attention import scaled_dot_product_attention  # noqa: F401
