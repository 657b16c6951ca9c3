"""The architecture holds (ARCHITECTURE.md): layers import downward only, and no cycles.

``make lint`` runs the same layer contract through import-linter; these tests keep it in
``make test`` too, and add what a contract cannot say: no import cycle at all (imports inside
functions included), no module directly in analysis/ beyond the package's own, and a public
API whose every name resolves.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ["cli", "pipelines", "report", "evaluate", "families", "claims", "models",
          "sampling", "select", "stats", "io", "errors"]


def _modules() -> dict[str, Path]:
    mods = {}
    for top, dotted in (("analysis", "trialmeta.analysis"), ("cli", "trialmeta.cli")):
        for p in (ROOT / top).rglob("*.py"):
            parts = [x for x in p.relative_to(ROOT / top).with_suffix("").parts
                     if x != "__init__"]
            mods[".".join([dotted, *parts])] = p
    return mods


def _edges(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> modules it imports (module level, inside functions and TYPE_CHECKING)."""
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = m.split(".")
                if node.level:
                    keep = len(base) - node.level + (1 if p.name == "__init__.py" else 0)
                    base = base[:keep]
                else:
                    base = []
                stem = ".".join([*base, *([node.module] if node.module else [])])
                targets = [stem, *(f"{stem}.{a.name}" for a in node.names)]
            else:
                continue
            for t in targets:
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != m and not m.startswith(t + "."):
                    edges[m].add(t)
    return edges


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[1] == "cli":
        return "cli"
    return parts[2] if len(parts) > 2 else None


def test_no_import_cycle() -> None:
    mods = _modules()
    edges = _edges(mods)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(10_000)

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in mods:
        if v not in index:
            strong(v)
    assert cycles == []


def test_every_import_goes_down_the_layers() -> None:
    """The same rule as the import-linter contract, checked on the source's own imports."""
    rank = {name: i for i, name in enumerate(LAYERS)}
    climbs = []
    for m, targets in _edges(_modules()).items():
        src = _layer(m)
        for t in targets:
            dst = _layer(t)
            if src in rank and dst in rank and rank[dst] < rank[src]:
                climbs.append(f"{m} -> {t}")
    assert climbs == []


def test_the_layer_contract_of_make_lint_holds() -> None:
    exe = Path(sys.executable).parent / "lint-imports"
    if not exe.exists():
        pytest.skip("import-linter is not installed")
    r = subprocess.run([str(exe)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:]
    assert "1 kept, 0 broken" in r.stdout


def test_analysis_holds_packages_not_loose_modules() -> None:
    loose = sorted(p.name for p in (ROOT / "analysis").glob("*.py"))
    assert loose == ["__init__.py", "errors.py"]
    packages = sorted(p.name for p in (ROOT / "analysis").iterdir()
                      if p.is_dir() and (p / "__init__.py").exists())
    assert packages == sorted(set(LAYERS) - {"cli", "errors"})


def test_the_public_api_resolves_and_stays_light() -> None:
    code = ("import sys, trialmeta.analysis as a\n"
            "assert 'pymc' not in sys.modules and 'numpy' not in sys.modules\n"
            "missing = [n for n in a.__all__ if getattr(a, n, None) is None]\n"
            "assert not missing, missing\n"
            "print(a.__version__)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert r.stdout.strip() == version
