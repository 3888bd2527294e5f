"""Map the top-level folders into one import package, ``ember``.

``frontend/`` is ``ember``, ``ir/`` is ``ember.ir`` and so on; every folder with an
``__init__.py`` below them becomes a subpackage, so a new subpackage needs no edit here.
"""

import os

from setuptools import setup

ROOTS = {"ember": "frontend", "ember.ir": "ir", "ember.passes": "passes",
         "ember.runtime": "runtime", "ember.tools": "tools"}


def find_packages() -> list[str]:
    here = os.path.dirname(os.path.abspath(__file__))
    packages = []
    for package, folder in ROOTS.items():
        for root, dirs, files in os.walk(os.path.join(here, folder)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            if "__init__.py" in files:
                rel = os.path.relpath(root, os.path.join(here, folder))
                packages.append(package if rel == "." else package + "." + rel.replace(os.sep, "."))
    return packages


setup(packages=find_packages(), package_dir=ROOTS)
