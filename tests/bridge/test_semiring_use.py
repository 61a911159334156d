"""The LM bridge reduces through the semiring engine (issue 12): no module of
``quasispecies.bridge`` calls its own log-sum-exp / softmax, and none switches on the
temperature with ``where(T > 0, ...)``; normalisations go through
``quasispecies.semiring`` (JAX) or ``quasispecies.semiring.host`` (NumPy)."""

from __future__ import annotations

import ast
from pathlib import Path

BRIDGE = Path(__file__).resolve().parents[2] / "quasispecies" / "bridge"
FORBIDDEN = {"logsumexp", "logaddexp", "log_softmax", "softmax"}
TEMPERATURE_NAMES = {"T", "t", "temperature", "temperatures", "Ts", "sT"}


def _call_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Attribute):
        # np.logaddexp.reduce(...) is a call of logaddexp's method
        if func.attr in {"reduce", "accumulate", "reduceat", "outer"}:
            return _call_name(func.value)
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


def _mentions_temperature(node: ast.expr) -> bool:
    return any(isinstance(n, ast.Name) and n.id in TEMPERATURE_NAMES for n in ast.walk(node))


def violations(source: str, where: str) -> list[str]:
    bad = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN:
            bad.append(f"{where}:{node.lineno} uses {node.attr}")
        elif isinstance(node, ast.Call):
            name = _call_name(node.func)
            if name in FORBIDDEN and not isinstance(node.func, ast.Attribute):
                bad.append(f"{where}:{node.lineno} calls {name}")
            if name == "where" and node.args:
                cond = node.args[0]
                if (
                    isinstance(cond, ast.Compare)
                    and any(isinstance(op, ast.Gt | ast.GtE) for op in cond.ops)
                    and _mentions_temperature(cond.left)
                ):
                    bad.append(f"{where}:{node.lineno} switches on the temperature with where")
    return bad


def test_bridge_reduces_through_the_semiring():
    bad = []
    for path in sorted(BRIDGE.rglob("*.py")):
        bad += violations(path.read_text(), str(path.relative_to(BRIDGE)))
    assert bad == []


def test_rule_catches_planted_violations():
    assert violations("np.logaddexp.reduce(z, axis=1)\n", "x")
    assert violations("jax.nn.softmax(s, axis=-1)\n", "x")
    assert violations("torch.log_softmax(x, dim=-1)\n", "x")
    assert violations("from scipy.special import logsumexp\nlogsumexp(z)\n", "x")
    assert violations("jnp.where(T > 0, a, b)\n", "x")
    assert not violations("host.log_normalise(z, axis=1)\njnp.where(p > 0, a, b)\n", "x")
    assert not violations("if not T > 0:\n    raise ValueError('T')\n", "x")
