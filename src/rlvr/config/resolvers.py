"""OmegaConf resolvers registered once by the package.

- ``${eval:'2 * 8'}``: arithmetic only (numbers, + - * / // % **, parentheses, min/max/round/abs/int/float);
  anything else (names, attributes, calls to other functions) is refused, so a config cannot run code.
"""

from __future__ import annotations

import ast
import operator
from typing import Any

from omegaconf import OmegaConf

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCS = {"min": min, "max": max, "round": round, "abs": abs, "int": int, "float": float}


def safe_eval(expr: str) -> Any:
    """Evaluate an arithmetic expression.

    >>> safe_eval("2 * (3 + 4) // 3")
    4
    >>> safe_eval("__import__('os')")
    Traceback (most recent call last):
    ...
    ValueError: ${eval:...} allows arithmetic only; got a Call to __import__
    """

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            left, right = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > 64:
                raise ValueError("${eval:...}: exponent too large")
            return _BINOPS[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](ev(node.operand))
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS
                and not node.keywords):
            return _FUNCS[node.func.id](*[ev(a) for a in node.args])
        name = getattr(getattr(node, "func", None), "id", None) or getattr(node, "id", None) or ""
        raise ValueError(f"${{eval:...}} allows arithmetic only; got a {type(node).__name__} {('to ' + name) if name else ''}".strip())

    return ev(ast.parse(str(expr), mode="eval"))


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("eval"):
        OmegaConf.register_new_resolver("eval", safe_eval)
