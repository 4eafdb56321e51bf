"""One way to check a config: every ``_target_`` node against the signature of its target.

A component's ``__init__`` signature is its schema: the names of its settings, their types, their defaults
(stated there and nowhere else) and their choices (``Literal``). :func:`validate` walks the composed config and
checks every node that has a ``_target_``, before anything is built or loaded:

- the target imports;
- every key is a parameter of the target (else: "Unknown key ... Did you mean ...?");
- every value fits the parameter's annotation (``int``, ``float``, ``bool``, ``str``, ``Literal`` choices,
  ``X | None``, lists and dicts of those, dataclasses such as ``LoraSettings`` key by key);
- every parameter without a default is set (``???`` in a YAML file means "the user must set this");
- a plain function is ``_partial_: true`` (it is called later, with runtime arguments).

Then :func:`build` constructs the components; a constructor checks the rules that tie several fields together
and raises :class:`~rlvr.errors.ConfigError`. Each message names the key and says how to fix it.

:func:`with_defaults` returns the config with every signature default filled in: what a run saves as
``config.yaml``, so every setting a run used is on record.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

from omegaconf import DictConfig, ListConfig, OmegaConf

from rlvr.errors import ConfigError
from rlvr.interfaces import Range

_EMPTY = inspect.Parameter.empty


def import_target(path: str, where: str = "_target_") -> Any:
    """Import ``pkg.module.Name``; a ConfigError naming the key if it does not exist."""
    module_name, _, attr = str(path).rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as e:
        raise ConfigError(f"{where}: _target_ '{path}' cannot be imported ({type(e).__name__}: {e}).") from None


def parameters(target: Any) -> tuple[dict[str, inspect.Parameter], dict[str, Any], bool]:
    """``(parameters, type hints, accepts **kwargs)`` of a class's ``__init__`` or of a function: its settings. A
    keyword-only parameter without a default is not one: it is a runtime argument, given by the code that builds
    or calls the target (the orchestrator's ``config``, a reward's ``scores``), never by a config file."""
    fn = target.__init__ if inspect.isclass(target) else target
    params = {k: p for k, p in inspect.signature(fn).parameters.items()
              if k != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
              and not (p.kind is p.KEYWORD_ONLY and p.default is p.empty)}
    var_kw = any(p.kind is p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values())
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # noqa: BLE001 - an annotation we cannot resolve is not checked
        hints = {}
    return params, hints, var_kw


def suggest(name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(name, valid, n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def validate(cfg: DictConfig | ListConfig, where: str = "") -> None:
    """Check every ``_target_`` node in ``cfg`` (see the module docstring); raises ConfigError."""
    if isinstance(cfg, DictConfig):
        if "_target_" in cfg:
            _check_node(cfg, where or "config")
        for key in cfg.keys():
            path = f"{where}.{key}" if where else str(key)
            if OmegaConf.is_missing(cfg, key):
                continue  # reported by the node that owns it
            child = cfg._get_node(key)
            if isinstance(child, (DictConfig, ListConfig)) and not child._is_none():
                validate(child, path)
    elif isinstance(cfg, ListConfig):
        for i, child in enumerate(cfg._iter_ex(resolve=False)):
            if isinstance(child, (DictConfig, ListConfig)):
                validate(child, f"{where}[{i}]")


def _check_node(node: DictConfig, where: str) -> None:
    target = import_target(node["_target_"], f"{where}._target_")
    at = "" if where == "config" else f"{where}."  # the root's keys are named as they are typed: seed=...
    params, hints, var_kw = parameters(target)
    partial = bool(node.get("_partial_", False))
    if not inspect.isclass(target) and not partial:
        raise ConfigError(
            f"{where}: '{node['_target_']}' is a function; add `_partial_: true` so it is called later with its "
            "runtime arguments (and bound to the parameters given here).")
    for key in node.keys():
        key = str(key)
        if key.startswith("_") and key.endswith("_"):
            continue
        if key not in params:
            if var_kw:
                continue
            hint = suggest(key, list(params)) or f" Valid keys: {', '.join(sorted(params))}."
            raise ConfigError(f"Unknown key '{at}{key}' for {node['_target_']}.{hint}")
        if OmegaConf.is_missing(node, key):
            raise ConfigError(f"'{at}{key}' must be set (it is ??? in the config): "
                              f"python run_pipeline.py {at}{key}=...")
        child = node._get_node(key)
        if isinstance(child, DictConfig) and "_target_" in child:
            continue  # a component of its own, checked by the walk
        check_value(_value(node, key, at), hints.get(key, Any), f"{at}{key}")
    for name, p in params.items():
        if p.default is _EMPTY and name not in node.keys() and not partial:
            raise ConfigError(f"'{at}{name}' must be set: python run_pipeline.py +{at}{name}=...")


def _value(node: DictConfig, key: str, at: str) -> Any:
    try:
        value = node[key]
    except Exception as e:  # noqa: BLE001 - a broken interpolation or resolver
        raise ConfigError(f"'{at}{key}' cannot be resolved: {e}".splitlines()[0]) from None
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, (DictConfig, ListConfig)) else value


_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def check_value(value: Any, tp: Any, where: str) -> None:
    """Raise ConfigError unless ``value`` fits annotation ``tp``."""
    problem = _mismatch(value, tp, where)
    if problem:
        raise ConfigError(problem)


def _mismatch(value: Any, tp: Any, where: str) -> str | None:
    """Why ``value`` does not fit ``tp`` (one line), or None."""
    if tp is Any or tp is _EMPTY or isinstance(tp, typing.TypeVar):
        return None
    origin, args = get_origin(tp), get_args(tp)
    if origin is typing.Annotated:
        problem = _mismatch(value, args[0], where)
        if problem is None and isinstance(value, (int, float)) and not isinstance(value, bool):
            for bound in (a for a in args[1:] if isinstance(a, Range)):
                if (why := bound.problem(value)) is not None:
                    return f"'{where}' {why}, got {value!r}."
        return problem
    if origin is Literal:
        if value in args:
            return None
        shown = ", ".join("null" if a is None else str(a) for a in args)
        return f"Invalid value '{value}' for '{where}'. Valid choices: {shown}."
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        problems = [_mismatch(value, a, where) for a in args if a is not type(None)]
        if any(p is None for p in problems):
            return None
        if len(problems) == 1:  # X | None: X's own message
            return problems[0]
        return f"'{where}' got {value!r}, which is not {_describe(tp)}."
    if value is None:
        return f"'{where}' must not be null; expected {_describe(tp)}."
    if tp in _NAMES:
        ok = (isinstance(value, bool) if tp is bool else
              isinstance(value, (int, float)) and not isinstance(value, bool) if tp is float else
              isinstance(value, tp) and not isinstance(value, bool))
        return None if ok else f"'{where}' must be {_NAMES[tp]}, got {value!r}."
    if dataclasses.is_dataclass(tp):
        if dataclasses.is_dataclass(value):
            return None
        if not isinstance(value, dict):
            return f"'{where}' must be a mapping of {', '.join(f.name for f in dataclasses.fields(tp))}."
        fields = {f.name: f for f in dataclasses.fields(tp)}
        hints = typing.get_type_hints(tp, include_extras=True)
        for k, v in value.items():
            if k not in fields:
                return f"Unknown key '{where}.{k}'." + (suggest(str(k), list(fields)) or f" Valid keys: {', '.join(fields)}.")
            problem = _mismatch(v, hints.get(k, Any), f"{where}.{k}")
            if problem:
                return problem
        return None
    if origin in (list, tuple, typing.Sequence) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return f"'{where}' must be a list, got {value!r}."
        item = args[0] if args and args[0] is not Ellipsis else Any
        return next((p for i, v in enumerate(value) if (p := _mismatch(v, item, f"{where}[{i}]"))), None)
    if origin in (dict, typing.Mapping) or tp is dict:
        if not isinstance(value, dict):
            return f"'{where}' must be a mapping, got {value!r}."
        key, item = args if len(args) == 2 else (Any, Any)
        return next((p for k, v in value.items()
                     if (p := _mismatch(k, key, f"{where}.{k}") or _mismatch(v, item, f"{where}.{k}"))), None)
    return None  # a type we do not check (a callable, a class): the constructor does


def _describe(tp: Any) -> str:
    origin, args = get_origin(tp), get_args(tp)
    if origin is typing.Annotated:
        return _describe(args[0])
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if tp is type(None):
        return "null"
    if origin is Literal:
        return "one of " + ", ".join(map(str, args))
    return _NAMES.get(tp, getattr(tp, "__name__", str(tp)))


def build(cfg: DictConfig, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` with plain containers (``_convert_="all"``), a constructor's ConfigError
    passed through as it is, and a TypeError turned into a ConfigError naming the node."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        return instantiate(cfg, _convert_="all", **kwargs)
    except InstantiationException as e:
        cause = e.__cause__
        while isinstance(cause, InstantiationException) and cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, ConfigError):
            raise ConfigError(str(cause)) from None
        where = str(e).rsplit("full_key:", 1)[-1].strip() if "full_key:" in str(e) else "config"
        if isinstance(cause, (TypeError, ValueError)):
            raise ConfigError(f"{where}: {cause}") from None
        raise


def with_defaults(cfg: DictConfig) -> DictConfig:
    """A copy of ``cfg`` in which every ``_target_`` node also holds the defaults of the parameters it does not
    set. Interpolations stay, so ``${train.max_completion_length}`` finds the signature's default; a run saves
    this, resolved, as ``config.yaml``: every setting it used, in one file."""
    out = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))

    def fill(node: Any) -> None:
        if isinstance(node, DictConfig):
            if "_target_" in node and not OmegaConf.is_missing(node, "_target_"):
                target = import_target(node["_target_"], "_target_")
                for name, p in parameters(target)[0].items():
                    if p.default is _EMPTY or not _plain(p.default):
                        continue
                    if name not in node.keys():
                        node[name] = _as_config(p.default)
                    elif dataclasses.is_dataclass(p.default) and isinstance(node._get_node(name), DictConfig):
                        _fill_fields(node[name], _as_config(p.default))
            for key in list(node.keys()):
                fill(node._get_node(key))
        elif isinstance(node, ListConfig):
            for child in node:
                fill(child)

    fill(out)
    return out


def _fill_fields(node: DictConfig, defaults: dict[str, Any]) -> None:
    """Add to ``node`` (a dataclass setting given in part) the fields it leaves out, nested ones too."""
    for key, value in defaults.items():
        if key not in node.keys():
            node[key] = value
        elif isinstance(value, dict) and value and isinstance(node._get_node(key), DictConfig):
            _fill_fields(node[key], value)


def _plain(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if dataclasses.is_dataclass(value):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def _as_config(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    if isinstance(value, tuple):
        return [_as_config(v) for v in value]
    return value
