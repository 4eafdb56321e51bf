"""One way to check a config: every ``_target_`` node against the signature of its target.

A component's ``__init__`` signature is its schema: the names of its settings, their types, their defaults
(stated there and nowhere else) and their choices (``Literal``). :func:`validate` walks the composed config and
checks every node that has a ``_target_``, before anything is built or loaded:

- the target imports;
- every key is a parameter of the target (else: "Unknown key ... Did you mean ...?");
- every value fits the parameter's annotation (``int``, ``float``, ``bool``, ``str``, ``Literal`` choices,
  ``Range`` bounds, ``X | None``, lists and dicts of those, dataclasses such as ``LoraSettings`` key by key):
  :func:`rlvr.schema.check_arguments`, the same check a component constructed directly in Python runs;
- every parameter without a default is set (``???`` in a YAML file means "the user must set this");
- a plain function is ``_partial_: true`` (it is called later, with runtime arguments).

Then :func:`build` constructs the components; a constructor checks the rules that tie several fields together
and raises :class:`~rlvr.errors.ConfigError`. Each message names the key and says how to fix it.

:func:`with_defaults` returns the config with every signature default filled in: what a run saves as
``config.yaml``, so every setting a run used is on record.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from rlvr.errors import ConfigError
from rlvr.schema import check_arguments, check_value, parameters, suggest

__all__ = ["build", "check_value", "import_target", "parameters", "suggest", "validate", "with_defaults"]

_EMPTY = inspect.Parameter.empty


def import_target(path: str, where: str = "_target_") -> Any:
    """Import ``pkg.module.Name``; a ConfigError naming the key if it does not exist."""
    module_name, _, attr = str(path).rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as e:
        raise ConfigError(f"{where}: _target_ '{path}' cannot be imported ({type(e).__name__}: {e}).") from None


def validate(cfg: DictConfig | ListConfig, where: str = "") -> None:
    """Check every ``_target_`` node in ``cfg`` (see the module docstring); raises ConfigError."""
    if isinstance(cfg, DictConfig):
        if "_target_" in cfg:
            _check_node(cfg, where or "config")
        for key in _in_order(cfg, where):
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


def _in_order(cfg: DictConfig, where: str) -> list[Any]:
    """``cfg``'s keys in the order they are checked: as composed, except that at the root ``train`` comes before
    ``eval``. The defaults list puts eval first (so a train option can pick its evaluation: train=prm picks
    eval=best_of_n), but eval reads train's settings (``${train.max_completion_length}``), and a bad value is named
    where the user set it."""
    keys = list(cfg.keys())
    if not where and "train" in keys and "eval" in keys and keys.index("eval") < keys.index("train"):
        keys.remove("train")
        keys.insert(keys.index("eval"), "train")
    return keys


def _check_node(node: DictConfig, where: str) -> None:
    target = import_target(node["_target_"], f"{where}._target_")
    at = "" if where == "config" else f"{where}."  # the root's keys are named as they are typed: seed=...
    params, _, var_kw = parameters(target)
    partial = bool(node.get("_partial_", False))
    if not inspect.isclass(target) and not partial:
        raise ConfigError(
            f"{where}: '{node['_target_']}' is a function; add `_partial_: true` so it is called later with its "
            "runtime arguments (and bound to the parameters given here).")
    values = {}
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
        if not (isinstance(child, DictConfig) and "_target_" in child):  # a component of its own: the walk's
            values[key] = _value(node, key, at)
    check_arguments(target, values, at)  # the check a direct construction runs too (rlvr.schema)
    for name, p in params.items():
        if p.default is _EMPTY and name not in node.keys() and not partial:
            raise ConfigError(f"'{at}{name}' must be set: python run_pipeline.py +{at}{name}=...")


def _value(node: DictConfig, key: str, at: str) -> Any:
    try:
        value = node[key]
    except Exception as e:  # noqa: BLE001 - a broken interpolation or resolver
        raise ConfigError(f"'{at}{key}' cannot be resolved: {e}".splitlines()[0]) from None
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, (DictConfig, ListConfig)) else value


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
