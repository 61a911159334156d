"""The package layout is the architecture: these tests keep it so.

* imports point down the layers (``cli -> experiments -> plot -> analyses ->
  dynamics/paths -> kernels -> semiring/model``), module-level imports form no cycle,
  and no module reaches into another subpackage's private names;
* no module is much over 400 lines;
* every name in ``dir(qs)`` resolves, ``__all__`` lists the public API;
* every module the README's Layout section names exists.

Each rule is a function over parsed source, and each has a test that plants a
violation and shows the rule catches it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import networkx as nx
import pytest

import quasispecies as qs

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "quasispecies"

#: Lower layers may be imported by higher ones, never the other way round. Packages on
#: one layer may import each other as long as no cycle forms.
LAYERS = {
    "semiring": 0,
    "model": 0,
    "kernels": 1,
    "dynamics": 2,
    "paths": 2,
    "rl": 3,
    "sequence": 3,
    "selection": 3,
    "bridge": 3,
    "plot": 4,
    "experiments": 5,
    "cli": 6,
}
#: "~400 lines": a module may run a little over while it reads as one concept.
MAX_LINES = 420


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def subpackage(mod: str) -> str | None:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else None


class Import:
    def __init__(self, target: str, names: list[str], line: int, top: bool):
        self.target, self.names, self.line, self.top = target, names, line, top


def imports(source: str, mod: str, is_package: bool = False) -> list[Import]:
    """Every import of a ``quasispecies`` module in ``source`` (relative ones resolved)."""
    tree = ast.parse(source)
    out = []
    top_level = set(map(id, tree.body))
    base = mod.split(".") if is_package else mod.split(".")[:-1]
    for node in ast.walk(tree):
        top = id(node) in top_level
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "quasispecies":
                    out.append(Import(a.name, [], node.lineno, top))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                prefix = base[: len(base) - node.level + 1]
                target = ".".join(prefix + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "quasispecies":
                continue
            names = [a.name for a in node.names]
            subs = [n for n in names if f"{target}.{n}" in ALL_MODULES]
            for n in subs:  # `from quasispecies.x import submodule` imports that module
                out.append(Import(f"{target}.{n}", [], node.lineno, top))
            rest = [n for n in names if n not in subs]
            if rest or not subs:
                out.append(Import(target, rest, node.lineno, top))
    return out


def layer_violations(mod: str, imps: list[Import]) -> list[str]:
    src = subpackage(mod)
    if src is None or src not in LAYERS:
        return []
    bad = []
    for imp in imps:
        dst = subpackage(imp.target)
        if imp.target == "quasispecies":
            bad.append(f"{mod}:{imp.line} imports the top-level package (import what you need)")
        elif dst in LAYERS and LAYERS[dst] > LAYERS[src]:
            bad.append(f"{mod}:{imp.line} imports {imp.target} (layer {dst} above {src})")
    return bad


def private_violations(mod: str, source: str, imps: list[Import]) -> list[str]:
    """``from quasispecies.other import _x`` and ``other_module._x`` across subpackages."""
    src = subpackage(mod)
    bad = []
    foreign_modules = set()
    for imp in imps:
        if subpackage(imp.target) == src:
            continue
        for name in imp.names:
            if name.startswith("_") and not name.startswith("__"):
                bad.append(f"{mod}:{imp.line} imports private {imp.target}.{name}")
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if subpackage(node.module) != src and node.module.startswith("quasispecies"):
                for a in node.names:
                    if f"{node.module}.{a.name}" in ALL_MODULES:
                        foreign_modules.add(a.asname or a.name)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("quasispecies") and subpackage(a.name) != src and a.asname:
                    foreign_modules.add(a.asname)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in foreign_modules
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            bad.append(f"{mod}:{node.lineno} uses private {node.value.id}.{node.attr}")
    return bad


ALL_MODULES = set(modules())


def import_graph() -> nx.DiGraph:
    g = nx.DiGraph()
    for mod, path in modules().items():
        g.add_node(mod)
        for imp in imports(path.read_text(), mod, path.name == "__init__.py"):
            if not imp.top:
                continue
            targets = [imp.target] + [f"{imp.target}.{n}" for n in imp.names]
            for t in targets:
                if t in ALL_MODULES and t != mod:
                    g.add_edge(mod, t)
    return g


def cycles(g: nx.DiGraph) -> list[list[str]]:
    # A package __init__ re-exporting its own submodules is not a cycle of concepts.
    h = g.copy()
    for a, b in list(h.edges):
        if PKG.joinpath(*a.split(".")[1:], "__init__.py").exists() and b.startswith(a + "."):
            h.remove_edge(a, b)
        elif b.count(".") <= 1 and a.startswith(b + ".") and b != "quasispecies":
            # a submodule importing from its own package __init__: count it as the
            # package's modules themselves (resolved by the edge set above).
            h.remove_edge(a, b)
    return [sorted(c) for c in nx.simple_cycles(h)]


# ----------------------------------------------------------------------------- tests
def test_imports_point_down():
    bad = []
    for mod, path in modules().items():
        bad += layer_violations(mod, imports(path.read_text(), mod, path.name == "__init__.py"))
    assert bad == []


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_no_private_names_across_subpackages():
    bad = []
    for mod, path in modules().items():
        source = path.read_text()
        bad += private_violations(mod, source, imports(source, mod, path.name == "__init__.py"))
    assert bad == []


def test_modules_are_small():
    big = {
        mod: n
        for mod, path in modules().items()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert big == {}


def test_rules_catch_planted_violations():
    up = "from quasispecies.cli import main\n"
    assert layer_violations("quasispecies.kernels.pull", imports(up, "quasispecies.kernels.pull"))
    top = "import quasispecies as qs\n"
    assert layer_violations("quasispecies.rl.x", imports(top, "quasispecies.rl.x"))
    priv = "from quasispecies.kernels.pull import _log_step\n"
    mod = "quasispecies.dynamics.x"
    assert private_violations(mod, priv, imports(priv, mod))
    attr = "from quasispecies.kernels import pull\npull._lse_rows(1)\n"
    assert private_violations(mod, attr, imports(attr, mod))
    same = "from quasispecies.dynamics.horizon import _run\n"
    assert not private_violations(mod, same, imports(same, mod))
    down = "from quasispecies.semiring import reduce\n"
    assert not layer_violations(mod, imports(down, mod))
    g = nx.DiGraph(
        [("quasispecies.a.x", "quasispecies.b.y"), ("quasispecies.b.y", "quasispecies.a.x")]
    )
    assert cycles(g)


def test_public_api_resolves():
    assert sorted(qs.__all__) == qs.__all__
    assert set(qs.__all__) <= set(dir(qs))
    for name in dir(qs):
        assert getattr(qs, name) is not None, name
    for name in qs.__all__:
        getattr(qs, name)
    with pytest.raises(AttributeError, match="checkpoint"):
        qs.checkpoint  # noqa: B018  (listed once but never existed)


def test_subpackage_all_resolves():
    import importlib

    for sub in LAYERS:
        m = importlib.import_module(f"quasispecies.{sub}")
        for name in getattr(m, "__all__", []):
            assert hasattr(m, name), f"quasispecies.{sub}.{name}"


def readme_layout_modules() -> list[str]:
    """Module paths named in the README's Layout block, relative to ``quasispecies/``.

    A line starting with ``pkg/`` opens that package; ``name.py`` tokens after it (on
    that line or the indented lines below) are its modules; ``pkg/name.py`` is explicit.
    """
    text = (ROOT / "README.md").read_text()
    section = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
    block = re.findall(r"```text\n(.*?)```", section, re.S)
    assert block, "README Layout section has no ```text block"
    names, current = [], ""
    for line in block[0].splitlines():
        head = re.match(r"^([a-z_]+)/", line)
        if head:
            current = head.group(1)
            names.append(current + "/")
        for tok in re.findall(r"\b([a-z_]+(?:/[a-z_]+)*\.py)\b", line):
            names.append(tok if "/" in tok else f"{current}/{tok}")
    return names


def test_readme_layout_matches_code():
    names = readme_layout_modules()
    assert len(names) > 20
    missing = [n for n in names if not (PKG / n).exists()]
    assert missing == []
    listed = {n.rstrip("/") for n in names}
    unlisted = [
        str(p.relative_to(PKG))
        for p in PKG.rglob("*.py")
        if p.name != "__init__.py"
        and str(p.relative_to(PKG)) not in listed
        and p.parent.name != "cli"
    ]
    assert unlisted == []
