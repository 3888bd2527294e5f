"""The ``ember`` command line, run through subprocess like a user would."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

MODEL = textwrap.dedent("""
    import ember
    import ember.nn as nn


    class SimpleNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(784, 128)
            self.fc2 = nn.Linear(128, 10)
            self.relu = nn.ReLU()

        def forward(self, x):
            x = self.relu(self.fc1(x))
            x = self.fc2(x)
            return x


    net = SimpleNet()


    def scaled_sum(x, y):
        return (x * 2 + y).sum(dim=1)


    def branchy(x):
        if x.sum() > 0:
            return x
        return -x


    class NeedsArgs(nn.Module):
        def __init__(self, n):
            super().__init__()
""")


def ember_cli(*args, cwd):
    cmd = [sys.executable, "-c", "import sys; from ember.tools.cli import main; sys.exit(main())", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    (d / "model.py").write_text(MODEL)
    return d


def test_ir_traces_a_module_class_and_prints_the_graph(work):
    r = ember_cli("ir", "model.py:SimpleNet", "--input", "f32[64,784]", cwd=work)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith("graph SimpleNet(")
    assert "%x: f32[64,784]" in out and "param %fc1.weight: f32[128,784]" in out
    assert "-> (%8: f32[64,10])" in out
    line = MODEL.splitlines().index("        x = self.relu(self.fc1(x))") + 1
    assert f"= matmul(%x, %0)  # fc1 (Linear) @ model.py:{line}" in out
    from ember.ir import parse
    assert str(parse(out.strip())) == out.strip()


def test_ir_symbolic_dims_instance_and_function(work):
    r = ember_cli("ir", "model.py:net", "-i", "f32[B,784]", cwd=work)
    assert r.returncode == 0, r.stderr
    assert "%x: f32[B,784]" in r.stdout and "f32[B,10]" in r.stdout
    r = ember_cli("ir", "model.py:scaled_sum", "-i", "f32[N,3]", "-i", "f32[N,3]", cwd=work)
    assert r.returncode == 0, r.stderr
    assert "graph scaled_sum(%x: f32[N,3], %y: f32[N,3]) -> (" in r.stdout


def test_ir_json_format_and_output_file(work):
    r = ember_cli("ir", "model.py:SimpleNet", "-i", "f32[2,784]", "--format", "json", cwd=work)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["name"] == "SimpleNet"
    assert data["inputs"][1] == {"name": "fc1.weight", "type": "f32[128,784]", "dtype": "float32",
                                 "shape": [128, 784], "role": "param"}
    assert [n["op"] for n in data["nodes"]][:2] == ["permute", "matmul"]
    assert data["nodes"][1]["provenance"]["module"] == "fc1 (Linear)"
    r = ember_cli("ir", "model.py:SimpleNet", "-i", "f32[2,784]", "-o", "net.txt", cwd=work)
    assert r.returncode == 0 and r.stdout == ""
    assert (work / "net.txt").read_text().startswith("graph SimpleNet(")


def test_save_print_and_run_a_graph_with_npy_inputs(work):
    r = ember_cli("ir", "model.py:SimpleNet", "-i", "f32[B,784]", "-o", "net.eir", cwd=work)
    assert r.returncode == 0, r.stderr
    assert "saved graph SimpleNet (9 nodes, 4 weights) to net.eir" in r.stdout
    shown = ember_cli("ir", "net.eir", cwd=work)
    assert shown.returncode == 0 and shown.stdout.startswith("graph SimpleNet(")
    x = np.random.default_rng(0).standard_normal((5, 784)).astype(np.float32)
    np.save(work / "x.npy", x)
    r = ember_cli("run", "net.eir", "--input", "x.npy", cwd=work)
    assert r.returncode == 0, r.stderr
    # the oracle: the saved weights applied with numpy
    from ember.ir.serialize import load
    _, w = load(os.path.join(work, "net.eir"))
    h = np.maximum(x @ w["fc1.weight"].T + w["fc1.bias"], 0)
    y = h @ w["fc2.weight"].T + w["fc2.bias"]
    assert "graph SimpleNet: 5 inputs, 9 nodes, 1 outputs" in r.stdout
    line = [ln for ln in r.stdout.splitlines() if ln.strip().startswith("%8:")][0]
    assert "f32[5, 10]" in line
    stats = dict(kv.split("=") for kv in line.split()[3:])
    np.testing.assert_allclose(float(stats["mean"]), y.mean(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(float(stats["max"]), y.max(), rtol=1e-4)
    r = ember_cli("run", "net.eir", "--dim", "B=3", "--seed", "1", cwd=work)
    assert r.returncode == 0 and "f32[3, 10]" in r.stdout


BAD_INPUTS = [
    (("ir", "missing.py:Net", "-i", "f32[2]"), "no such file: missing.py"),
    (("ir", "model.py:Nope", "-i", "f32[2]"), "model.py has no attribute 'Nope'"),
    (("ir", "model.py:SimpleNet", "-i", "f32[64,784"), "malformed input spec 'f32[64,784'"),
    (("ir", "model.py:SimpleNet", "-i", "q32[64,784]"), "unknown dtype 'q32'"),
    (("ir", "model.py:SimpleNet", "-i", "f32[-1,784]"), "malformed dimension '-1'"),
    (("ir", "model.py:SimpleNet"), "needs at least one --input"),
    (("ir", "model.py:SimpleNet", "-i", "f32[3,5]"), "matmul"),
    (("ir", "model.py:branchy", "-i", "f32[3]"), "TraceError: bool() on a traced tensor"),
    (("ir", "model.py:NeedsArgs", "-i", "f32[3]"), "cannot construct NeedsArgs()"),
    (("ir", "model.py", "-i", "f32[3]"), "expected FILE.py:NAME"),
    (("ir", "nothere.eir"), "no such file: nothere.eir"),
    (("run", "model.py"), "cannot read model.py"),
    (("run", "net.eir", "--dim", "B"), "malformed --dim 'B'"),
    (("run", "net.eir", "--input", "nope.npy"), "no such file: nope.npy"),
]


@pytest.mark.parametrize("args,needle", BAD_INPUTS[:2] + BAD_INPUTS[7:8])
def test_bad_input_gives_one_clear_line_subprocess(work, args, needle):
    r = ember_cli(*args, cwd=work)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ember: error: ") and needle in lines[0], r.stderr


@pytest.mark.parametrize("args,needle", BAD_INPUTS)
def test_bad_input_gives_one_clear_line(work, args, needle, capsys, monkeypatch):
    from ember.tools.cli import main
    monkeypatch.chdir(work)
    if "net.eir" in args and not (work / "net.eir").exists():
        assert main(["ir", "model.py:SimpleNet", "-i", "f32[B,784]", "-o", "net.eir"]) == 0
    capsys.readouterr()
    assert main(list(args)) == 1
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ember: error: ") and needle in lines[0], err


def test_debug_shows_the_traceback(work):
    r = ember_cli("ir", "model.py:Nope", "-i", "f32[2]", "--debug", cwd=work)
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_help_everywhere(capsys):
    from ember.tools.cli import main
    for args in (["--help"], ["ir", "--help"], ["run", "--help"]):
        with pytest.raises(SystemExit) as info:
            main(args)
        assert info.value.code == 0
        assert "usage: ember" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["ir", "--help"])
    assert "FILE.py:NAME" in capsys.readouterr().out
    assert main([]) == 2
    out = capsys.readouterr().out
    assert "ir" in out and "run" in out


def test_console_script_is_installed(work):
    import shutil
    exe = shutil.which("ember")
    if exe is None:
        pytest.skip("ember console script not on PATH")
    r = subprocess.run([exe, "ir", "--help"], cwd=work, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "usage: ember ir" in r.stdout


def test_plugins_can_register_commands():
    from ember.tools import cli
    calls = []
    cli.register_command("hello", "say hello", lambda p: p.add_argument("name"),
                         lambda a: calls.append(a.name) or 0)
    try:
        assert cli.main(["hello", "world"]) == 0 and calls == ["world"]
    finally:
        del cli.COMMANDS["hello"]


def test_python_dash_m_sees_plugin_commands():
    """``python -m ember.tools.cli`` and ``python -m ember.tools`` list the plug-in commands too."""
    import subprocess
    import sys
    for mod in ("ember.tools.cli", "ember.tools"):
        res = subprocess.run([sys.executable, "-m", mod, "--help"], capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        for command in ("ir", "run", "export", "cache"):
            assert command in res.stdout
