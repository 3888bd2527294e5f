"""Every loss vs PyTorch: values and input gradients over its options."""

import numpy as np
import pytest

import ember
import ember.nn as nn

torch = pytest.importorskip("torch")

rng = np.random.default_rng(0)
LOGITS = rng.standard_normal((6, 5)).astype(np.float32)
LOGITS_ND = rng.standard_normal((3, 4, 2, 3)).astype(np.float32)
LABELS = np.array([0, 4, 2, -100, 1, 4])
LABELS_ND = rng.integers(0, 4, (3, 2, 3))
PROBS = rng.dirichlet(np.ones(5), 6).astype(np.float32)
WEIGHT = rng.uniform(0.5, 2.0, 5).astype(np.float32)
X = rng.standard_normal((4, 3)).astype(np.float32)
Y = rng.standard_normal((4, 3)).astype(np.float32)
P01 = rng.uniform(0.05, 0.95, (4, 3)).astype(np.float32)
T01 = rng.uniform(0, 1, (4, 3)).astype(np.float32)
POSW = rng.uniform(0.5, 3, 3).astype(np.float32)
LOGP = np.log(rng.dirichlet(np.ones(3), 4)).astype(np.float32)


def _t(lib, a, grad=False):
    if a is None:
        return None
    if lib is torch:
        t = torch.tensor(a)
        return t.requires_grad_(True) if grad else t
    return ember.tensor(a, requires_grad=grad)


# (id, class name, constructor kwargs (arrays become tensors), input, target)
CASES = [
    ("ce", "CrossEntropyLoss", {}, LOGITS, np.where(LABELS < 0, 3, LABELS)),
    ("ce-ignore", "CrossEntropyLoss", {}, LOGITS, LABELS),
    ("ce-weight-ignore", "CrossEntropyLoss", {"weight": WEIGHT}, LOGITS, LABELS),
    ("ce-sum", "CrossEntropyLoss", {"reduction": "sum"}, LOGITS, LABELS),
    ("ce-none", "CrossEntropyLoss", {"reduction": "none"}, LOGITS, LABELS),
    ("ce-smooth", "CrossEntropyLoss", {"label_smoothing": 0.1}, LOGITS, LABELS),
    ("ce-smooth-weight", "CrossEntropyLoss", {"label_smoothing": 0.2, "weight": WEIGHT}, LOGITS, LABELS),
    ("ce-smooth-weight-sum", "CrossEntropyLoss", {"label_smoothing": 0.2, "weight": WEIGHT, "reduction": "sum"},
     LOGITS, LABELS),
    ("ce-smooth-none", "CrossEntropyLoss", {"label_smoothing": 0.3, "reduction": "none"}, LOGITS, LABELS),
    ("ce-probs", "CrossEntropyLoss", {}, LOGITS, PROBS),
    ("ce-probs-weight-smooth", "CrossEntropyLoss", {"weight": WEIGHT, "label_smoothing": 0.1}, LOGITS, PROBS),
    ("ce-probs-none", "CrossEntropyLoss", {"reduction": "none"}, LOGITS, PROBS),
    ("ce-nd", "CrossEntropyLoss", {}, LOGITS_ND, LABELS_ND),
    ("ce-nd-weight-none", "CrossEntropyLoss", {"weight": WEIGHT[:4], "reduction": "none"}, LOGITS_ND, LABELS_ND),
    ("ce-unbatched", "CrossEntropyLoss", {}, LOGITS[0], np.array(3)),
    ("nll", "NLLLoss", {}, LOGITS, LABELS),
    ("nll-weight", "NLLLoss", {"weight": WEIGHT, "ignore_index": 2}, LOGITS, np.where(LABELS < 0, 0, LABELS)),
    ("nll-none", "NLLLoss", {"reduction": "none"}, LOGITS, LABELS),
    ("mse", "MSELoss", {}, X, Y),
    ("mse-sum", "MSELoss", {"reduction": "sum"}, X, Y),
    ("l1", "L1Loss", {}, X, Y),
    ("l1-none", "L1Loss", {"reduction": "none"}, X, Y),
    ("smoothl1", "SmoothL1Loss", {}, X, Y),
    ("smoothl1-beta", "SmoothL1Loss", {"beta": 0.5, "reduction": "sum"}, X, Y),
    ("huber", "HuberLoss", {"delta": 0.7}, X, Y),
    ("huber-none", "HuberLoss", {"reduction": "none"}, X, Y),
    ("bce", "BCELoss", {}, P01, T01),
    ("bce-weight", "BCELoss", {"weight": POSW}, P01, T01),
    ("bcelogits", "BCEWithLogitsLoss", {}, X * 5, T01),
    ("bcelogits-posweight", "BCEWithLogitsLoss", {"pos_weight": POSW, "weight": POSW[::-1].copy()}, X * 5, T01),
    ("bcelogits-none", "BCEWithLogitsLoss", {"reduction": "none", "pos_weight": POSW}, X, T01),
    ("kldiv-batchmean", "KLDivLoss", {"reduction": "batchmean"}, LOGP, np.exp(LOGP[::-1]).copy()),
    ("kldiv-sum-zero-target", "KLDivLoss", {"reduction": "sum"}, LOGP, np.where(T01 < 0.3, 0, T01)[:, :3]),
    ("kldiv-logtarget", "KLDivLoss", {"reduction": "batchmean", "log_target": True}, LOGP, LOGP[::-1].copy()),
    ("kldiv-none", "KLDivLoss", {"reduction": "none"}, LOGP, np.exp(LOGP[::-1]).copy()),
]


@pytest.mark.parametrize("name,cls,kwargs,inp,target", CASES, ids=[c[0] for c in CASES])
def test_loss_matches_torch(name, cls, kwargs, inp, target):
    outs = {}
    for lib, mod in ((torch, torch.nn), (ember, nn)):
        kw = {k: _t(lib, v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
        loss_fn = getattr(mod, cls)(**kw)
        x = _t(lib, inp, grad=True)
        out = loss_fn(x, _t(lib, target))
        ct = np.random.default_rng(1).standard_normal(tuple(out.shape)).astype(np.float32)
        out.backward(_t(lib, ct))
        outs[lib.__name__] = (out.detach().numpy(), x.grad.numpy(), repr(loss_fn))
    (ev, eg, er), (tv, tg, tr) = outs["ember"], outs["torch"]
    np.testing.assert_allclose(ev, tv, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(eg, tg, rtol=1e-5, atol=1e-6)
    assert er == tr


def test_bce_clamps_log_like_torch():
    p = np.array([0.0, 1.0, 0.5], np.float32)
    t = np.array([1.0, 0.0, 1.0], np.float32)
    want = torch.nn.functional.binary_cross_entropy(torch.tensor(p), torch.tensor(t)).item()
    got = nn.functional.binary_cross_entropy(ember.tensor(p), ember.tensor(t)).item()
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_loss_errors_like_torch():
    with pytest.raises(ValueError, match="Expected input batch_size \\(6\\) to match target batch_size \\(5\\)"):
        nn.functional.cross_entropy(ember.tensor(LOGITS), ember.tensor(LABELS[:5]))
    with pytest.raises(ValueError, match="is not a valid value for reduction"):
        nn.functional.mse_loss(ember.tensor(X), ember.tensor(Y), reduction="avg")
    with pytest.raises(ValueError, match="Target size"):
        nn.functional.binary_cross_entropy_with_logits(ember.tensor(X), ember.tensor(Y[:, :2]))
