"""Typed config schemas derived from the components' own signatures.

A component's ``__init__`` signature is the one place where its fields, types and defaults are declared.
``schema_of(cls)`` turns that signature into a dataclass that Hydra's ConfigStore understands, so the YAML
files in ``conf/`` only hold what differs, an unknown key fails at composition time (struct mode) and a value
of the wrong type fails when it is set, naming the key. ``Literal`` choices, which OmegaConf cannot type,
are stored as ``str`` and checked by :func:`check_choices`, before anything is instantiated.
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

_SCHEMAS: dict[type, type] = {}
_PRIMITIVES = (int, float, str, bool)


def import_target(path: str) -> Any:
    """Import ``pkg.module.Name`` (the ``_target_`` convention); raises ConfigError if it does not exist."""
    module_name, _, attr = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as e:
        raise ConfigError(f"_target_ '{path}' cannot be imported: {e}") from None


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls.__init__, include_extras=False)


def _omegaconf_type(tp: Any) -> Any:
    """Map a Python annotation onto one OmegaConf can validate (Literal -> str, unions -> Any)."""
    origin = get_origin(tp)
    if tp in _PRIMITIVES or tp is Any or dataclasses.is_dataclass(tp):
        return tp
    if origin is Literal:
        return type(get_args(tp)[0])
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return typing.Optional[_omegaconf_type(args[0])]
        return Any
    if origin in (list, tuple, typing.Sequence) or tp in (list, tuple):
        inner = get_args(tp)
        item = _omegaconf_type(inner[0]) if inner and inner[0] is not Ellipsis else Any
        return list[item] if item in _PRIMITIVES else list[Any]
    if origin is dict or tp is dict:
        return dict[str, Any]
    return Any


def schema_of(cls: type) -> type:
    """A dataclass with ``_target_`` and one field per ``__init__`` parameter of ``cls``.

    Parameters without a default are runtime arguments (a tokenizer, a model) that the orchestrator passes
    explicitly; they are not config fields.
    """
    if cls in _SCHEMAS:
        return _SCHEMAS[cls]
    hints = _hints(cls)
    fields: list[tuple[str, Any, Any]] = [
        ("_target_", str, dataclasses.field(default=f"{cls.__module__}.{cls.__qualname__}"))
    ]
    for name, p in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) or p.default is inspect.Parameter.empty:
            continue
        tp = _omegaconf_type(hints.get(name, Any))
        default = p.default
        if isinstance(default, (list, dict)) or dataclasses.is_dataclass(default):
            field = dataclasses.field(default_factory=lambda d=default: _copy(d))
        else:
            field = dataclasses.field(default=default)
        fields.append((name, tp, field))
    schema = dataclasses.make_dataclass(f"{cls.__name__}Config", fields)
    schema.__doc__ = f"Config schema of {cls.__module__}.{cls.__qualname__} (generated from its signature)."
    _SCHEMAS[cls] = schema
    return schema


def _copy(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return dataclasses.replace(value)
    return type(value)(value)


def _literal_choices(tp: Any) -> tuple | None:
    if get_origin(tp) is Literal:
        return get_args(tp)
    if get_origin(tp) in (Union, types.UnionType):
        for arg in get_args(tp):
            if get_origin(arg) is Literal:
                return get_args(arg) + ((None,) if type(None) in get_args(tp) else ())
    return None


def _suggest(name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(name, valid, n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def check_node(node: DictConfig, where: str) -> None:
    """Check one ``_target_`` node: the target imports, every key is a parameter, Literal values are valid."""
    target = import_target(node["_target_"])
    params = inspect.signature(target).parameters if not inspect.isclass(target) else (
        inspect.signature(target.__init__).parameters
    )
    accepts_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
    valid = [k for k in params if k not in ("self",)]
    hints = _hints(target) if inspect.isclass(target) else typing.get_type_hints(target)
    for key in node.keys():
        if str(key).startswith("_") and str(key).endswith("_"):
            continue
        if key not in params:
            if accepts_kwargs:
                continue
            raise ConfigError(
                f"Unknown key '{where}.{key}' for {node['_target_']}.{_suggest(str(key), valid)} "
                f"Valid keys: {', '.join(sorted(valid))}."
            )
        choices = _literal_choices(hints.get(key))
        if choices is not None and not OmegaConf.is_missing(node, key):
            value = node[key]
            if value not in choices:
                shown = ", ".join(repr(c) if c is None else str(c) for c in choices)
                raise ConfigError(f"Invalid value '{value}' for '{where}.{key}'. Valid choices: {shown}.")


def check_choices(cfg: DictConfig | ListConfig, where: str = "") -> None:
    """Walk the whole config and check every ``_target_`` node (see :func:`check_node`)."""
    if isinstance(cfg, DictConfig):
        skip: tuple = ()
        if "_target_" in cfg and not OmegaConf.is_missing(cfg, "_target_"):
            check_node(cfg, where or "<root>")
            # A component that builds its own children (the reward suite) checks them itself.
            skip = getattr(import_target(cfg["_target_"]), "validates_children", ())
        for key in cfg.keys():
            if OmegaConf.is_missing(cfg, key) or key in skip:
                continue
            child = cfg._get_node(key)
            if isinstance(child, (DictConfig, ListConfig)):
                check_choices(child, f"{where}.{key}" if where else str(key))
    elif isinstance(cfg, ListConfig):
        for i, child in enumerate(cfg):
            if isinstance(child, (DictConfig, ListConfig)):
                check_choices(child, f"{where}[{i}]")


def missing_keys(cfg: DictConfig) -> list[str]:
    """Keys still set to ``???`` anywhere in the config."""
    out: list[str] = []

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, DictConfig):
            for k in node.keys():
                path = f"{prefix}.{k}" if prefix else str(k)
                if OmegaConf.is_missing(node, k):
                    out.append(path)
                else:
                    walk(node._get_node(k), path)
        elif isinstance(node, ListConfig):
            for i, child in enumerate(node._iter_ex(resolve=False)):
                walk(child, f"{prefix}[{i}]")

    walk(cfg, "")
    return out
