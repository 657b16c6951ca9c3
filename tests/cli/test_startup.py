"""A precompiled fit pays only for what it uses: no ArviZ, xarray, matplotlib, PyMC or
PyTensor in the process (issue 18), and nutpie's core is loaded without its front ends."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("arviz", "xarray", "matplotlib", "pymc", "pytensor", "nutpie.sample",
         "nutpie.compile_pymc")
CODE = """
import io, contextlib, json, sys
sys.argv = ["trialmeta", *sys.argv[1:]]
from trialmeta.cli.app import main
out = io.StringIO()
try:
    with contextlib.redirect_stdout(out):
        main()
except SystemExit as exc:
    code = exc.code
doc = json.loads(out.getvalue())
print(json.dumps({"modules": sorted(m for m in sys.modules if m.split(".")[0] in
                  ("arviz", "xarray", "matplotlib", "pymc", "pytensor", "nutpie")),
                  "passed": doc["diagnostics"]["passed"]}))
"""


@pytest.mark.parametrize("args", [
    ["fit", "pooled-rate", "--outcome", "response"],
    ["fit", "contrast"],
    ["fit", "dose-response"],
    ["fit", "time-course"],
])
def test_a_precompiled_fit_imports_no_heavy_library(args: list[str]) -> None:
    out = subprocess.run([sys.executable, "-c", CODE, *args, "--json", "--draws", "300",
                          "--tune", "300", "--allow-unconverged"],
                         capture_output=True, text=True, check=True)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert not [m for m in found["modules"] if m.startswith(HEAVY)], found["modules"]
    assert found["modules"] == ["nutpie._lib"]  # the core alone, registered for reuse


def test_the_pytensor_sampler_still_imports_nutpie_whole() -> None:
    from trialmeta.analysis.sampling.precompiled import _load_lib

    lib = _load_lib()
    import nutpie

    assert nutpie._lib is lib and hasattr(nutpie, "compile_pymc_model")
