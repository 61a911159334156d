"""The semiring is the only place that reduces: a guard over the package's source.

Every log-sum-exp, every softmax and every ``T -> 0`` rule of the toolkit lives in
:mod:`quasispecies.semiring`; other modules call it. This test parses every ``.py`` file
of the package outside ``quasispecies/semiring/`` and flags

(a) a call of a function or attribute named ``logsumexp``, ``logaddexp`` (including
    ``np.logaddexp.reduce`` / ``.reduceat`` / ``.accumulate``), ``log_softmax`` or
    ``softmax`` (and importing one of those names);
(b) a ``where(...)`` call (``jnp.where``, ``np.where``, ``where``) whose condition compares
    a temperature-like name (``T``, ``Ts``, ``temperature``, ``tau``, ...) with ``0``
    (``T > 0``, ``T == 0``, ``0 < T``, ``_pos(T)``, or a name bound to such a comparison
    in the same function);
(c) a hand-written ``log(sum(exp(...)))`` (also ``log(exp(a) + exp(b))``,
    ``log(exp(x).sum())`` and ``log1p(exp(x))``).

A plain Python ``if T > 0:`` (validation, labels, host-side branching) or
``a if T > 0 else b`` is not a reduction rule and is not flagged. Each rule has a test
that plants it and shows the scanner catches it, so the guard can fail.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import NamedTuple

import quasispecies

PKG = Path(quasispecies.__file__).resolve().parent

#: Files (relative to the package) allowed to break the rules, each with the reason.
#: Keep it empty: a reduction outside the semiring belongs in the semiring.
ALLOWLIST: list[str] = []

REDUCERS = {"logsumexp", "logaddexp", "log_softmax", "softmax"}
TEMPERATURE = re.compile(r"^(T|Ts|Te|T_\w+|temp|temps|temperature|temperatures|tau|taus)$")
POSITIVITY_HELPERS = re.compile(r"^_?(pos|is_pos|positive|is_positive)$")


class Finding(NamedTuple):
    path: str
    line: int
    rule: str
    code: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}: {self.code}"


def _name(node: ast.AST) -> str | None:
    """The final name of a call target: ``f`` for ``f``, ``a.b.f``, ``g(x).f``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _chain(node: ast.AST) -> list[str]:
    """Every name along an attribute chain: ``np.logaddexp.reduce`` -> [reduce, logaddexp, np]."""
    out = []
    while isinstance(node, ast.Attribute):
        out.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        out.append(node.id)
    return out


def _is_temperature(node: ast.AST) -> bool:
    name = _name(node)
    return name is not None and bool(TEMPERATURE.match(name))


def _is_zero(node: ast.AST) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        node = node.operand
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, (int, float))
        and not isinstance(node.value, bool)
        and node.value == 0
    )


def _temperature_test(node: ast.AST, tainted: set[str]) -> bool:
    """Whether ``node`` contains a comparison of a temperature with 0 (or a name bound to one)."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Compare):
            operands = [sub.left, *sub.comparators]
            if any(_is_temperature(o) for o in operands) and any(_is_zero(o) for o in operands):
                return True
        if isinstance(sub, ast.Call):
            fname = _name(sub.func)
            if fname and POSITIVITY_HELPERS.match(fname) and any(map(_is_temperature, sub.args)):
                return True
        if isinstance(sub, ast.Name) and sub.id in tainted:
            return True
    return False


def _calls(node: ast.AST, names: set[str]) -> bool:
    return any(isinstance(sub, ast.Call) and _name(sub.func) in names for sub in ast.walk(node))


def _is_call(node: ast.AST, names: set[str]) -> bool:
    return isinstance(node, ast.Call) and _name(node.func) in names


def _log_sum_exp(call: ast.Call) -> bool:
    """``log(sum(exp ...))``, ``log(exp(.).sum())``, ``log(exp a + exp b)``, ``log1p(exp x)``."""
    if not call.args:
        return False
    arg = call.args[0]
    fname = _name(call.func)
    if fname == "log1p":
        return _is_call(arg, {"exp"})
    if fname != "log":
        return False
    if _is_call(arg, {"sum", "nansum"}):
        assert isinstance(arg, ast.Call)
        inner = [*arg.args, arg.func.value] if isinstance(arg.func, ast.Attribute) else arg.args
        return any(_calls(a, {"exp"}) for a in inner)
    if isinstance(arg, ast.BinOp) and isinstance(arg.op, ast.Add):
        return _calls(arg.left, {"exp"}) and _calls(arg.right, {"exp"})
    return False


def _tainted_names(tree: ast.AST) -> dict[ast.AST, set[str]]:
    """Per function (and the module), the names assigned a temperature-vs-0 comparison."""
    scopes: dict[ast.AST, set[str]] = {}
    for scope in ast.walk(tree):
        if not isinstance(scope, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        names: set[str] = set()
        for sub in ast.walk(scope):
            if isinstance(sub, ast.Assign) and _temperature_test(sub.value, set()):
                names |= {t.id for t in sub.targets if isinstance(t, ast.Name)}
        scopes[scope] = names
    return scopes


def scan_source(text: str, path: str = "<string>") -> list[Finding]:
    """Every violation of rules (a)-(c) (module docstring) in Python source ``text``."""
    tree = ast.parse(text, filename=path)
    lines = text.splitlines()
    scopes = _tainted_names(tree)
    parent_scope: dict[ast.AST, ast.AST] = {}
    for scope in scopes:
        for sub in ast.walk(scope):
            # innermost scope wins: ast.walk visits outer scopes first
            parent_scope[sub] = scope
    found: list[Finding] = []

    def flag(node: ast.AST, rule: str) -> None:
        line = getattr(node, "lineno", 0)
        code = lines[line - 1].strip() if 0 < line <= len(lines) else ""
        found.append(Finding(path, line, rule, code))

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name in REDUCERS:
                    flag(node, f"(a) imports {alias.name}")
        if not isinstance(node, ast.Call):
            continue
        hit = REDUCERS.intersection(_chain(node.func))
        if hit:
            flag(node, f"(a) calls {'/'.join(sorted(hit))}")
        if _name(node.func) == "where" and node.args:
            tainted = scopes.get(parent_scope.get(node, tree), set())
            if _temperature_test(node.args[0], tainted):
                flag(node, "(b) where() on a temperature-vs-0 test")
        if _log_sum_exp(node):
            flag(node, "(c) hand-written log-sum-exp")
    return sorted(found, key=lambda f: f.line)


def scan_package(root: Path = PKG) -> list[Finding]:
    """:func:`scan_source` over every ``.py`` file of the package outside ``semiring/``."""
    out = []
    for p in sorted(root.rglob("*.py")):
        rel = p.relative_to(root).as_posix()
        if rel.startswith("semiring/") or rel in ALLOWLIST:
            continue
        out += scan_source(p.read_text(encoding="utf-8"), f"quasispecies/{rel}")
    return out


# --------------------------------------------------------------------------- tests
def test_the_semiring_is_the_only_place_that_reduces():
    findings = scan_package()
    assert not findings, "reductions outside quasispecies/semiring/:\n" + "\n".join(
        map(str, findings)
    )


LSE, ADD, LOGSM, SM = (
    f"(a) calls {n}" for n in ("logsumexp", "logaddexp", "log_softmax", "softmax")
)
WHERE_T = "(b) where() on a temperature-vs-0 test"
HAND = "(c) hand-written log-sum-exp"
PLANTED = [
    (LSE, "import jax\ndef f(x):\n    return jax.nn.logsumexp(x)\n"),
    (LSE, "from scipy import special\ny = special.logsumexp([1.0, 2.0])\n"),
    (ADD, "import jax.numpy as jnp\ndef f(a, b):\n    return jnp.logaddexp(a, b)\n"),
    (ADD, "import numpy as np\ny = np.logaddexp.reduce(np.ones(3))\n"),
    (ADD, "import numpy as np\ny = np.logaddexp.reduceat(np.ones(3), [0])\n"),
    (LOGSM, "import jax\ndef f(x):\n    return jax.nn.log_softmax(x)\n"),
    (SM, "import jax\ndef f(x):\n    return jax.nn.softmax(x, axis=0)\n"),
    ("(a) imports logsumexp", "from scipy.special import logsumexp\n"),
    (WHERE_T, "import jax.numpy as jnp\ndef f(u, T):\n    return jnp.where(T > 0, u / T, u)\n"),
    (WHERE_T, "import numpy as np\ndef f(u, Ts):\n    return np.where(0 < Ts, u, -np.inf)\n"),
    (
        WHERE_T,
        "from jax.numpy import where\ndef f(u, c, temperature):\n"
        "    return where(temperature == 0.0, c, u)\n",
    ),
    (WHERE_T, "import jax.numpy as jnp\ndef f(u, T):\n    return jnp.where(_pos(T), u, 0.0)\n"),
    (
        WHERE_T,
        "import jax.numpy as jnp\ndef f(u, lx, T):\n    pos = T > 0\n"
        "    return jnp.where(pos, 0.0, lx)\n",
    ),
    (
        WHERE_T,
        "import jax.numpy as jnp\ndef f(u, self):\n"
        "    return jnp.where((self.tau > 0) & (u > 1), u, 0.0)\n",
    ),
    (
        HAND,
        "import jax.numpy as jnp\ndef f(z):\n    m = z.max()\n"
        "    return m + jnp.log(jnp.sum(jnp.exp(z - m)))\n",
    ),
    (HAND, "import numpy as np\ny = np.log(np.exp([1.0, 2.0]).sum())\n"),
    (HAND, "import numpy as np\ndef f(a, b):\n    return np.log(np.exp(a) + np.exp(b))\n"),
    (HAND, "import numpy as np\ny = np.log1p(np.exp(3.0))\n"),
]


def test_each_planted_pattern_is_flagged():
    for rule, src in PLANTED:
        findings = scan_source(src, "planted.py")
        assert any(f.rule == rule for f in findings), (rule, src, findings)
        assert all(f.path == "planted.py" and f.line >= 1 for f in findings)


def test_findings_name_file_and_line():
    src = "import jax\n\n\ndef f(x):\n    return jax.nn.softmax(x)\n"
    (finding,) = scan_source(src, "quasispecies/x/y.py")
    assert str(finding) == "quasispecies/x/y.py:5: (a) calls softmax: return jax.nn.softmax(x)"


CLEAN = """
import jax.numpy as jnp
import numpy as np

from quasispecies import semiring


def f(u, c, x, T, t, steps):
    if T > 0:  # host-side branching: not a reduction rule
        label = "log"
    elif T == 0:
        label = "max-plus"
    if not T >= 0:
        raise ValueError("T: must be >= 0")
    scale = 1.0 / T if T > 0 else 1.0
    y = jnp.where(x > 0, jnp.log(jnp.where(x > 0, x, 1.0)), -jnp.inf)
    z = np.where(t == 0, 1.0, 2.0)  # t is a time, not a temperature
    v = semiring.reduce(u, T, axis=0)
    p = semiring.softmax_pair(u, c, T, axis=0)
    n = np.log(np.sum(x)) + np.exp(np.log(x)).sum()
    w = np.log1p(-np.exp(-x))
    return label, scale, y, z, v, p, n, w, semiring.lse(u), semiring.plus(u, u)
"""


def test_clean_code_passes():
    assert scan_source(CLEAN, "clean.py") == []
