"""ember.save / ember.load: round trips, PyTorch interop both ways, safety, atomicity, corruption."""

import collections
import io
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import ember


class Holder:
    """A plain object: loadable only with weights_only=False."""

    def __init__(self, t):
        self.t = t


def _sample():
    return collections.OrderedDict(
        w=ember.arange(12.0).reshape(3, 4), b=ember.tensor([1.5, -2.0], dtype=ember.bfloat16),
        h=ember.tensor([0.5, 2.0], dtype=ember.float16), d=ember.tensor([1e-300], dtype=ember.float64),
        i=ember.tensor([1, -2, 3]), i8=ember.tensor([-3, 4], dtype=ember.int8),
        u8=ember.tensor([250], dtype=ember.uint8),
        mask=ember.tensor([True, False]), scalar=ember.tensor(3.25), empty=ember.zeros(0, 2),
        nested={"list": [1, 2.5, "s", (None, True)], "t": ember.ones(2, 2)}, n=7, s="text", dt=ember.int32)


def _check_equal(a, b):
    if isinstance(a, ember.Tensor):
        assert isinstance(b, ember.Tensor) and a.dtype == b.dtype and tuple(a.shape) == tuple(b.shape)
        assert np.array_equal(np.asarray(a.detach().numpy(), np.float64), np.asarray(b.detach().numpy(), np.float64))
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _check_equal(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            _check_equal(x, y)
    else:
        assert a == b


def test_roundtrip_file_and_buffer(tmp_path):
    obj = _sample()
    path = tmp_path / "ck.pt"
    ember.save(obj, path)
    _check_equal(obj, ember.load(path))
    buf = io.BytesIO()
    ember.save(obj, buf)
    buf.seek(0)
    _check_equal(obj, ember.load(buf))


def test_noncontiguous_and_shared_tensors(tmp_path):
    base = ember.arange(20.0).reshape(4, 5)
    view = base.t()[1:3]
    ember.save({"a": base, "b": base, "v": view}, tmp_path / "x.pt")
    out = ember.load(tmp_path / "x.pt")
    np.testing.assert_array_equal(out["v"].numpy(), view.numpy())
    np.testing.assert_array_equal(out["a"].numpy(), out["b"].numpy())


def test_optimizer_state_roundtrip(tmp_path):
    p = ember.randn(3, 2, requires_grad=True)
    opt = ember.optim.Adam([p], lr=0.01)
    (p * p).sum().backward()
    opt.step()
    ember.save(opt.state_dict(), tmp_path / "opt.pt")
    sd = ember.load(tmp_path / "opt.pt")
    assert sd["state"][0]["step"].item() == 1.0 and sd["param_groups"][0]["betas"] == (0.9, 0.999)
    opt2 = ember.optim.Adam([ember.randn(3, 2, requires_grad=True)], lr=0.01)
    opt2.load_state_dict(sd)
    np.testing.assert_array_equal(opt2.state[opt2.param_groups[0]["params"][0]]["exp_avg"].numpy(),
                                  opt.state[p]["exp_avg"].numpy())


def test_requires_grad_is_kept(tmp_path):
    t = ember.randn(2, requires_grad=True)
    ember.save([t], tmp_path / "g.pt")
    assert ember.load(tmp_path / "g.pt")[0].requires_grad


def test_weights_only_refuses_arbitrary_objects(tmp_path):
    path = tmp_path / "obj.pt"
    ember.save({"h": Holder(ember.ones(2))}, path)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        ember.load(path)
    out = ember.load(path, weights_only=False)
    assert isinstance(out["h"], Holder)
    np.testing.assert_array_equal(out["h"].t.numpy(), np.ones(2, np.float32))


def test_weights_only_refuses_code_execution(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps(Evil(), protocol=2))
    path = tmp_path / "evil.pt"
    path.write_bytes(buf.getvalue())
    with pytest.raises(pickle.UnpicklingError, match="Weights only"):
        ember.load(path)
    assert not (tmp_path / "pwned").exists()


def test_whole_module_with_weights_only_false(tmp_path):
    nn = ember.nn
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    ember.save(model, tmp_path / "m.pt")
    loaded = ember.load(tmp_path / "m.pt", weights_only=False)
    x = ember.randn(5, 4)
    np.testing.assert_allclose(loaded(x).detach().numpy(), model(x).detach().numpy())
    assert isinstance(loaded[0].weight, nn.Parameter)


def test_truncated_and_corrupt_files_raise_clearly(tmp_path):
    path = tmp_path / "ok.pt"
    ember.save({"w": ember.randn(100, 10)}, path)
    data = path.read_bytes()
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(RuntimeError, match="truncated or corrupt"):
        ember.load(trunc)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(RuntimeError, match="not a valid checkpoint"):
        ember.load(garbage)
    # flip bytes inside a storage: the zip CRC catches it
    corrupt = bytearray(data)
    idx = data.index(b"archive/data/0") + 200
    corrupt[idx:idx + 8] = b"\x00\x01\x02\x03\x04\x05\x06\x07"
    bad = tmp_path / "bad.pt"
    bad.write_bytes(bytes(corrupt))
    with pytest.raises(RuntimeError, match="corrupt"):
        ember.load(bad)


def test_atomic_save_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "ck.pt"
    ember.save({"v": ember.ones(3)}, path)

    class Boom:
        def __reduce__(self):
            raise RuntimeError("boom during pickling")

    with pytest.raises(RuntimeError, match="boom"):
        ember.save({"v": ember.zeros(3), "x": Boom()}, path)
    np.testing.assert_array_equal(ember.load(path)["v"].numpy(), np.ones(3, np.float32))
    assert sorted(os.listdir(tmp_path)) == ["ck.pt"]  # no temp file left behind


def test_torch_reads_ember_files(tmp_path):
    torch = pytest.importorskip("torch")
    obj = _sample()
    ember.save(obj, tmp_path / "e.pt")
    loaded = torch.load(tmp_path / "e.pt")  # torch's own weights_only=True default accepts it
    for k in ("w", "i", "i8", "u8", "mask", "scalar", "h", "d"):
        np.testing.assert_array_equal(loaded[k].numpy(), obj[k].numpy())
    assert loaded["b"].dtype == torch.bfloat16 and loaded["b"].float().tolist() == [1.5, -2.0]
    assert loaded["dt"] is torch.int32 and loaded["nested"]["list"] == [1, 2.5, "s", (None, True)]
    assert tuple(loaded["empty"].shape) == (0, 2)


def test_ember_reads_torch_files(tmp_path):
    torch = pytest.importorskip("torch")
    lin = torch.nn.Linear(4, 3)
    sd = lin.state_dict()
    sd["strided"] = torch.arange(24.0).reshape(4, 6).t()[1:4, ::2]
    sd["half"] = torch.tensor([1.0, 2.5], dtype=torch.float16)
    sd["bf"] = torch.tensor([3.0], dtype=torch.bfloat16)
    sd["param"] = torch.nn.Parameter(torch.ones(2))
    torch.save(sd, tmp_path / "t.pt")
    out = ember.load(tmp_path / "t.pt")
    for k in ("weight", "bias", "strided", "half"):
        np.testing.assert_array_equal(out[k].numpy(), sd[k].detach().numpy())
    assert out["bf"].dtype == ember.bfloat16 and float(out["bf"]) == 3.0
    assert out["param"].requires_grad


def test_reads_torch_files_without_torch_installed(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.arange(6.0).reshape(2, 3), "n": 4}, tmp_path / "t.pt")
    code = ("import sys; sys.modules['torch'] = None\n"
            "import ember\n"
            f"sd = ember.load({str(tmp_path / 't.pt')!r})\n"
            "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
            "print(sd['w'].tolist(), sd['n'])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]] 4"


def test_cuda_location_needs_map_location(tmp_path):
    path = tmp_path / "c.pt"
    ember.save({"w": ember.ones(2)}, path)
    with pytest.raises(RuntimeError, match="CUDA"):
        ember.load(path, map_location="cuda")
    assert ember.load(path, map_location="cpu")["w"].shape == (2,)


def test_torch_optimizer_checkpoint_resumes_in_ember(tmp_path):
    """A torch.save'd model + Adam checkpoint continues in ember on the same trajectory as in PyTorch."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 4)).astype(np.float32), rng.standard_normal((8, 2)).astype(np.float32)

    def steps(lib, model, opt, n):
        for _ in range(n):
            opt.zero_grad()
            ((model(lib.tensor(x)) - lib.tensor(y)) ** 2).mean().backward()
            opt.step()

    tmodel = torch.nn.Linear(4, 2)
    topt = torch.optim.Adam(tmodel.parameters(), lr=0.01)
    steps(torch, tmodel, topt, 3)
    torch.save({"model": tmodel.state_dict(), "opt": topt.state_dict()}, tmp_path / "ck.pt")
    steps(torch, tmodel, topt, 3)

    ck = ember.load(tmp_path / "ck.pt")
    emodel = ember.nn.Linear(4, 2)
    emodel.load_state_dict(ck["model"])
    eopt = ember.optim.Adam(emodel.parameters(), lr=0.01)
    eopt.load_state_dict(ck["opt"])
    steps(ember, emodel, eopt, 3)
    np.testing.assert_allclose(emodel.weight.detach().numpy(), tmodel.weight.detach().numpy(), atol=1e-5)
