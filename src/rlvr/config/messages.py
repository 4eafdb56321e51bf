"""Hydra's and OmegaConf's composition errors as one line that names the key, option or file.

Hydra reports a bad command line over up to a dozen lines and exits 1; :func:`one_line` turns each kind a user
can cause (unknown group option, unknown key, bad override syntax, YAML syntax error, missing value, broken
interpolation) into one line, so the entry points can print ``Config error: ...`` and exit 2.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Callable

from rlvr.config.validate import suggest
from rlvr.errors import ConfigError


def exit_on_config_error(app: Callable[[], object]) -> None:
    """Run a Hydra app (the entry points' ``main``); a ConfigError or a composition error prints one line
    ``Config error: ...`` and exits with status 2, anything else keeps its traceback."""
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra would print its errors over many lines and exit 1
    try:
        app()
    except ConfigError as e:
        fail(str(e))
    except Exception as e:  # noqa: BLE001 - only composition errors are turned into one line; others re-raise
        line = one_line(e)
        if line is None:
            raise
        fail(line)


def fail(message: str) -> None:
    """``Config error: <message>`` on stderr, exit status 2."""
    print(f"Config error: {message}", file=sys.stderr)
    sys.exit(2)


def one_line(error: BaseException) -> str | None:
    """The user-facing line for a composition error, or None when ``error`` is not one (a bug: traceback)."""
    from hydra.errors import (
        ConfigCompositionException,
        MissingConfigException,
        OverrideParseException,
    )
    from omegaconf.errors import OmegaConfBaseException
    from yaml import YAMLError

    text = str(error)
    if isinstance(error, MissingConfigException):
        return _missing_option(text)
    if isinstance(error, OverrideParseException):
        return f"cannot parse the command-line override: {_first(text)}"
    if isinstance(error, ConfigCompositionException):
        cause = error.__cause__
        m = re.match(r"Could not override '([^']+)'", text)
        if m:
            return _unknown_key(m.group(1), cause)
        if isinstance(cause, YAMLError) or "yaml" in type(cause).__module__ if cause else False:
            return _yaml(cause)
        if cause is not None and (line := one_line(cause)):
            return line
        return _first(text)
    if isinstance(error, YAMLError):
        return _yaml(error)
    if isinstance(error, ValueError) and text.startswith("Config group override must be a string"):
        return "a group option on the command line cannot be null (data=null): name an option, or leave the " \
               "group out with ~<group> (~experiment)."
    if isinstance(error, OmegaConfBaseException):
        key = getattr(error, "full_key", None)
        return f"{key}: {_first(text)}" if key else _first(text)
    return None


def _first(text: str) -> str:
    return " ".join(line.strip() for line in text.strip().splitlines()[:1])


def _missing_option(text: str) -> str:
    m = re.search(r"Could not find '([^']+)'", text)
    options = re.findall(r"^\t(\S+)$", text, flags=re.M)
    if m and "/" in m.group(1):
        group, option = m.group(1).rsplit("/", 1)
        hint = suggest(option, options)
        listed = f" Options: {', '.join(options)}." if options else ""
        return f"'{group}={option}': no such option in group '{group}'.{hint}{listed}"
    if m:
        return f"no config named '{m.group(1)}'{' (' + ', '.join(options) + ')' if options else ''}."
    return _first(text)


def _unknown_key(key: str, cause: BaseException | None) -> str:
    parent = getattr(cause, "parent_node", None)
    valid = [str(k) for k in parent.keys()] if parent is not None and hasattr(parent, "keys") else []
    leaf = key.rsplit(".", 1)[-1]
    return (f"Unknown key '{key}'.{suggest(leaf, valid)} To add a new key on purpose, write +{key}=..."
            + (f" Valid keys here: {', '.join(valid)}." if valid and not suggest(leaf, valid) else ""))


def _yaml(error: BaseException | None) -> str:
    mark = getattr(error, "problem_mark", None)
    where = f"{mark.name}, line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "a config file"
    problem = getattr(error, "problem", None) or _first(str(error))
    return f"YAML syntax error in {where}: {problem}."
