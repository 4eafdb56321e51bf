"""The signature is the schema: a component's settings are the parameters of its ``__init__`` (names, types,
defaults, ``Literal`` choices, :class:`~rlvr.interfaces.Range` bounds). :func:`check_arguments` checks values
against them, and it is the one check both ways of building a component run:

- from a config, :func:`rlvr.config.validate` calls it for every ``_target_`` node before anything is built;
- in Python, a class marked :func:`checked` (or a dataclass whose ``__post_init__`` calls it) checks the
  arguments it is constructed with, so ``Evaluator(top_p=1.5)`` fails with the line ``eval.top_p=1.5`` gets.

Constructors keep only the rules that tie several settings together.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, Union, get_args, get_origin

from rlvr.errors import ConfigError
from rlvr.interfaces import Range

_EMPTY = inspect.Parameter.empty


def parameters(target: Any) -> tuple[dict[str, inspect.Parameter], dict[str, Any], bool]:
    """``(parameters, type hints, accepts **kwargs)`` of a class's ``__init__`` or of a function. A dataclass's
    ``default_factory`` shows as the value it makes, and its hints are resolved field by field in the module that
    declares each field (so a subclass in another module inherits its base's annotations correctly). A keyword-only
    parameter without a default is not a setting: it is a runtime argument, given by the code that builds or calls
    the target (the orchestrator's ``config``, a reward's ``scores``), never by a config file."""
    fn = target.__init__ if inspect.isclass(target) else target
    signature = inspect.signature(fn)
    params = {k: p for k, p in signature.parameters.items()
              if k != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
              and not (p.kind is p.KEYWORD_ONLY and p.default is p.empty)}
    var_kw = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    dataclass = inspect.isclass(target) and dataclasses.is_dataclass(target)
    if dataclass:
        made = {f.name: f.default_factory() for f in dataclasses.fields(target)
                if f.default_factory is not dataclasses.MISSING}
        params = {k: p.replace(default=made[k]) if k in made else p for k, p in params.items()}
    try:
        hints = typing.get_type_hints(target if dataclass else fn, include_extras=True)
    except Exception:  # noqa: BLE001 - an annotation we cannot resolve is not checked
        hints = {}
    return params, hints, var_kw


def suggest(name: str, valid: list[str]) -> str:
    """`` Did you mean 'x'?`` for the closest of ``valid``, or nothing."""
    close = difflib.get_close_matches(name, valid, n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def check_arguments(target: Any, values: Mapping[str, Any], at: str = "") -> None:
    """Raise ConfigError, naming the setting as ``at + name``, for the first of ``values`` that does not fit its
    parameter's annotation in ``target``'s signature (a name that is no parameter is not this check's business)."""
    hints = parameters(target)[1]
    for name, value in values.items():
        check_value(value, hints.get(name, Any), f"{at}{name}")


def checked(group: str) -> Any:
    """A class decorator: constructing the class checks the arguments given against its signature
    (:func:`check_arguments`), each named ``<group>.<name>`` as in a config."""

    def mark(cls: type) -> type:
        init = cls.__init__
        signature = inspect.signature(init)

        @functools.wraps(init)
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            given = signature.bind(self, *args, **kwargs).arguments
            check_arguments(cls, {k: v for k, v in given.items() if k != "self"
                                  and signature.parameters[k].kind is not inspect.Parameter.VAR_KEYWORD}, f"{group}.")
            init(self, *args, **kwargs)

        cls.__init__ = __init__  # type: ignore[method-assign]
        return cls

    return mark


_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def check_value(value: Any, tp: Any, where: str) -> None:
    """Raise ConfigError unless ``value`` fits annotation ``tp``."""
    problem = mismatch(value, tp, where)
    if problem:
        raise ConfigError(problem)


def mismatch(value: Any, tp: Any, where: str) -> str | None:
    """Why ``value`` does not fit ``tp`` (one line naming ``where``), or None."""
    if tp is Any or tp is _EMPTY or isinstance(tp, typing.TypeVar):
        return None
    origin, args = get_origin(tp), get_args(tp)
    if origin is typing.Annotated:
        problem = mismatch(value, args[0], where)
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
        problems = [mismatch(value, a, where) for a in args if a is not type(None)]
        if any(p is None for p in problems):
            return None
        if len(problems) == 1:  # X | None: X's own message
            return problems[0]
        return f"'{where}' got {value!r}, which is not {describe(tp)}."
    if value is None:
        return f"'{where}' must not be null; expected {describe(tp)}."
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
                hint = suggest(str(k), list(fields)) or f" Valid keys: {', '.join(fields)}."
                return f"Unknown key '{where}.{k}'.{hint}"
            problem = mismatch(v, hints.get(k, Any), f"{where}.{k}")
            if problem:
                return problem
        return None
    if origin in (list, tuple, typing.Sequence) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return f"'{where}' must be a list, got {value!r}."
        item = args[0] if args and args[0] is not Ellipsis else Any
        return next((p for i, v in enumerate(value) if (p := mismatch(v, item, f"{where}[{i}]"))), None)
    if origin in (dict, typing.Mapping) or tp is dict:
        if not isinstance(value, dict):
            return f"'{where}' must be a mapping, got {value!r}."
        key, item = args if len(args) == 2 else (Any, Any)
        return next((p for k, v in value.items()
                     if (p := mismatch(k, key, f"{where}.{k}") or mismatch(v, item, f"{where}.{k}"))), None)
    return None  # a type we do not check (a callable, a class, a protocol): the constructor does


def describe(tp: Any) -> str:
    """An annotation in words: ``an integer or null``."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is typing.Annotated:
        return describe(args[0])
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) for a in args)
    if tp is type(None):
        return "null"
    if origin is Literal:
        return "one of " + ", ".join(map(str, args))
    return _NAMES.get(tp, getattr(tp, "__name__", str(tp)))
