"""A non-editable install of ember contains every subpackage and module of the source tree.

The source folders map onto one import package through setuptools ``package-dir``
(``frontend`` -> ``ember``, ``ir`` -> ``ember.ir``, ...). Editable installs hide mistakes in
that mapping, so this test builds a real wheel from a copy of the tree (no network: the
installed setuptools builds it), installs it with ``pip install --target`` and compares the
installed files and imports with the source folders.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROOTS = {"ember": "frontend", "ember.ir": "ir", "ember.passes": "passes", "ember.runtime": "runtime",
         "ember.tools": "tools"}
SKIP_DIRS = {"__pycache__"}


def source_modules(suffix: str | None = ".py") -> dict[str, Path]:
    """Files below the package folders (``.py`` ones, or all with ``suffix=None``), keyed by installed path."""
    out = {}
    for package, folder in ROOTS.items():
        base = ROOT / folder
        for dirpath, dirs, files in os.walk(base):
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith(".")]
            if "__init__.py" not in files:
                dirs[:] = []  # not a package: setuptools does not descend either
                continue
            rel = Path(dirpath).relative_to(base)
            pkg_path = Path(*package.split(".")) / rel
            for f in files:
                if suffix is None or f.endswith(suffix):
                    out[str(pkg_path / f)] = Path(dirpath) / f
    return out


def source_packages() -> list[str]:
    pkgs = set()
    for rel in source_modules():
        if rel.endswith("__init__.py"):
            pkgs.add(".".join(Path(rel).parent.parts))
    return sorted(pkgs)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("pkg")
    src = tmp / "src"
    # build from a copy, so build/ and *.egg-info never land in the shared checkout
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist", ".*")
    for folder in list(ROOTS.values()):
        shutil.copytree(ROOT / folder, src / folder, ignore=ignore)
    for f in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / f, src / f)
    target = tmp / "target"
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
           "--no-cache-dir", "--disable-pip-version-check", "--quiet", "--target", str(target), str(src)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"pip install failed:\n{res.stdout}\n{res.stderr}"
    return target


def test_every_subpackage_and_module_is_installed(installed):
    missing = [rel for rel in source_modules() if not (installed / rel).is_file()]
    assert not missing, f"modules missing from the installed package: {missing}"
    assert {"ember", "ember.ir", "ember.ir.ops", "ember.passes", "ember.runtime", "ember.tools"} <= \
        set(source_packages())
    # data files beside the code (schemas, templates) must ship too: declare them as package data
    data = [rel for rel in source_modules(None) if not rel.endswith((".py", ".pyc"))]
    assert not [rel for rel in data if not (installed / rel).is_file()], "package data missing from the install"
    # nothing installs stray top-level modules named after the source folders
    for folder in ROOTS.values():
        assert not (installed / folder).exists(), f"top-level '{folder}' installed"


def test_installed_copy_imports_every_subpackage(installed):
    pkgs = source_packages()
    code = ("import importlib, sys\n"
            "import ember\n"
            f"assert ember.__file__.startswith({str(installed)!r}), ember.__file__\n"
            f"for name in {pkgs!r}:\n"
            "    importlib.import_module(name)\n"
            "x = ember.tensor([1.0, 2.0], requires_grad=True)\n"
            "(x * x).sum().backward()\n"
            "assert x.grad.tolist() == [2.0, 4.0]\n"
            "print('ok')\n")
    env = dict(os.environ, PYTHONPATH=str(installed))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=str(installed.parent), env=env)
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stderr[-3000:]
