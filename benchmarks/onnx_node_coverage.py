"""Coverage of ONNX's backend node tests by ember's importer + numpy interpreter, per operator.

Generates every node test case in memory (the onnx wheel ships no data files), imports each
model, runs it on ember's kernels and compares with the expected outputs at the case's
tolerances. Writes a markdown table (default ``benchmarks/onnx_node_coverage.md``).
Run: ``python benchmarks/onnx_node_coverage.py [--failures]`` (about a minute).
"""

import os
import sys

from ember.runtime.onnx.conformance import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if "--out" not in args:
        args += ["--out", os.path.join(os.path.dirname(os.path.abspath(__file__)), "onnx_node_coverage.md")]
    sys.exit(main(args))
