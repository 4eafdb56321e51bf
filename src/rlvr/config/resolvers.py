"""OmegaConf resolvers registered once by the package (:func:`register_resolvers`, called by
``rlvr.config.register_configs``).

- ``${eval:'2 * 8'}``: arithmetic only (numbers, + - * / // % **, parentheses, min/max/round/abs/int/float);
  anything else (names, attributes, calls to other functions) is refused, so a config cannot run code.
- ``${get_marker:answer_start}``: a reasoning/answer marker. With one argument it is the marker the prompt
  config it sits in asks for (its ``answer_start``, else ``<answer_tag>``...), so a system prompt that names the
  markers follows ``prompts.answer_tag=...`` overrides. With a style, ``${get_marker:answer_start,working_out}``,
  it is that style's marker (:data:`MARKER_STYLES`: ``xml`` ``<think>``/``<answer>``, ``working_out`` the
  seeds' ``<start_working_out>``/``<SOLUTION>``).
"""

from __future__ import annotations

import ast
import operator
from typing import Any

from omegaconf import OmegaConf

from rlvr.devices import gpus_per_job, parallel_jobs
from rlvr.scoring.formats import MARKER_NAMES, MARKER_STYLES

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

    if len(str(expr)) > 1000:
        raise ValueError("${eval:...}: expression longer than 1000 characters")
    return ev(ast.parse(str(expr), mode="eval"))


def get_marker(name: str, style: str | None = None, *, _parent_: Any = None) -> str:
    """A reasoning/answer marker: of a named style, or the one the enclosing prompt config asks for.

    >>> get_marker("answer_start", "working_out")
    '<SOLUTION>'
    >>> get_marker("reasoning_end", _parent_={"reasoning_tag": "think"})
    '</think>'
    """
    if name not in MARKER_NAMES:
        raise ValueError(f"${{get_marker:{name}}}: unknown marker; use one of {', '.join(MARKER_NAMES)}.")
    if style is not None:
        if style not in MARKER_STYLES:
            raise ValueError(f"${{get_marker:{name},{style}}}: unknown style; use one of {', '.join(MARKER_STYLES)}.")
        return MARKER_STYLES[style][name]
    node = _parent_ if _parent_ is not None else {}
    explicit = node.get(name)
    if explicit:
        return str(explicit)
    kind, side = name.split("_")
    tag = node.get(f"{kind}_tag")
    if tag:
        return f"<{tag}>" if side == "start" else f"</{tag}>"
    raise ValueError(
        f"${{get_marker:{name}}}: this prompt config sets neither {name} nor {kind}_tag; set one, or name a "
        f"style: ${{get_marker:{name},xml}} ({', '.join(MARKER_STYLES)})."
    )


def first(*values: Any) -> Any:
    """The first value that is not null: ``${first:${output_dir},outputs/${now:%H-%M-%S}}``.

    >>> first(None, "outputs/x")
    'outputs/x'
    """
    return next((v for v in values if v is not None and v != "None"), None)


def grpo_lora(name_or_path: str, *, _root_: Any = None) -> bool:
    """``model.lora.enabled`` of the embedded model's option: a LoRA adapter when GRPO trains the embedded model (the
    default job's recipe, bench/recipe.sh); every weight with another algorithm (as their defaults were tuned), with
    stages (``train: null``), or with another model in its place (``model.name_or_path=...``).

    >>> job = lambda loop: OmegaConf.create({"train": {"_target_": f"rlvr.train.{loop}"}})
    >>> embedded = "embedded://smollm2-135m-instruct"
    >>> grpo_lora(embedded, _root_=job("GRPOLoop")), grpo_lora(embedded, _root_=job("SFTLoop"))
    (True, False)
    >>> grpo_lora("./mine", _root_=job("GRPOLoop"))
    False
    """
    return (str(name_or_path).startswith("embedded://")
            and OmegaConf.select(_root_, "train._target_", default=None) == "rlvr.train.GRPOLoop")


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("rlvr_jobs"):  # hydra/launcher=local: parallel jobs, one per visible GPU
        OmegaConf.register_new_resolver("rlvr_jobs", parallel_jobs)
    if not OmegaConf.has_resolver("rlvr_gpus"):  # hydra/launcher=ray_cluster: GPUs per job, 0 without GPUs
        OmegaConf.register_new_resolver("rlvr_gpus", lambda n=1: gpus_per_job(int(n)))
    if not OmegaConf.has_resolver("eval"):
        OmegaConf.register_new_resolver("eval", safe_eval)
    if not OmegaConf.has_resolver("first"):
        OmegaConf.register_new_resolver("first", first)
    if not OmegaConf.has_resolver("grpo_lora"):
        OmegaConf.register_new_resolver("grpo_lora", grpo_lora)
    if not OmegaConf.has_resolver("get_marker"):
        OmegaConf.register_new_resolver("get_marker", get_marker)
