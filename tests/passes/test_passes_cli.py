"""``ember ir --passes ... --print-after-all --dump-dir``: the pass manager from the command line."""

import os
import subprocess
import sys
import textwrap

import pytest

MODEL = textwrap.dedent("""
    import ember.nn as nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(6, 8)
            self.fc2 = nn.Linear(8, 3)

        def forward(self, x):
            return self.fc2(self.fc1(x).relu()).log_softmax(-1).sum()
""")


def _ember(*args, cwd):
    code = "import sys; from ember.tools.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "net.py"
    path.write_text(MODEL)
    return path


def test_passes_print_after_all_and_dump_dir(model_file, tmp_path):
    dump = tmp_path / "dumps"
    res = _ember("ir", f"{model_file}:Net", "--input", "f32[4,6]", "--passes", "autodiff,simplify,dce,fuse",
                 "--print-after-all", "--dump-dir", str(dump), "--timing", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    for name in ("autodiff", "simplify", "dce", "fuse"):
        assert f"IR after {name}" in out
    assert "fused(" in out and "pattern=" in out
    assert sorted(os.listdir(dump)) == ["000-input.eir", "001-autodiff.eir", "002-simplify.eir", "003-dce.eir",
                                         "004-fuse.eir"]
    assert (dump / "001-autodiff.eir").read_text().startswith("# ember pass dump 001: pass=autodiff")


def test_unknown_pass_is_one_clear_line(model_file, tmp_path):
    res = _ember("ir", f"{model_file}:Net", "--input", "f32[4,6]", "--passes", "dce,nope", cwd=tmp_path)
    assert res.returncode != 0
    assert "unknown pass 'nope'" in res.stderr and "Traceback" not in res.stderr
