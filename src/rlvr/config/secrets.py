"""Secrets stay out of everything a run writes.

API keys belong in the environment (``WANDB_API_KEY``, ``HF_TOKEN``, ``AWS_SECRET_ACCESS_KEY``, ...), where the
libraries read them. A setting whose name looks like a secret (``api_key``, ``token``, ``secret``, ``password``,
...) still works when put in a config or on the command line, but it is written as ``<redacted>`` in
``config.yaml``, ``results.json``, the report and Hydra's ``.hydra/`` files, with a warning; and the values of
secret-looking environment variables are scrubbed from the same files, wherever they appear.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

REDACTED = "<redacted>"
_SECRET_NAME = re.compile(r"(api[_-]?key|token|secret|password|passwd|credential|private[_-]?key)", re.I)


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def find(config: Any, where: str = "") -> dict[str, str]:
    """``{dotted key: value}`` of every non-empty string setting whose name looks like a secret."""
    found: dict[str, str] = {}
    if isinstance(config, dict):
        for key, value in config.items():
            path = f"{where}.{key}" if where else str(key)
            if isinstance(value, str) and value and value != REDACTED and is_secret_name(str(key)):
                found[path] = value
            else:
                found.update(find(value, path))
    elif isinstance(config, list):
        for i, value in enumerate(config):
            found.update(find(value, f"{where}[{i}]"))
    return found


def redact(config: Any) -> Any:
    """A copy of ``config`` with every secret-looking setting's value replaced by ``<redacted>``."""
    if isinstance(config, dict):
        return {k: REDACTED if isinstance(v, str) and v and is_secret_name(str(k)) else redact(v)
                for k, v in config.items()}
    if isinstance(config, list):
        return [redact(v) for v in config]
    return config


def known_values(config: Any = None) -> list[str]:
    """The secret strings to scrub: values of secret-looking environment variables and of ``config``'s secret
    settings (longest first, so a key that contains another is replaced whole)."""
    values = {v for k, v in os.environ.items() if is_secret_name(k) and len(v) >= 8}
    values |= {v for v in find(config or {}).values() if len(v) >= 4}
    return sorted(values, key=len, reverse=True)


def scrub(text: str, values: list[str]) -> str:
    for value in values:
        text = text.replace(value, REDACTED)
    return text


def warn_if_any(config: Any) -> None:
    for key in find(config):
        log.warning("[rlvr] %s looks like a secret: it is used, but written as %s in every file of the run. "
                    "Prefer the environment (e.g. WANDB_API_KEY, HF_TOKEN).", key, REDACTED)


def scrub_files(paths: list[Path], values: list[str]) -> None:
    """Rewrite text files that contain any of ``values`` (Hydra's own ``.hydra/*.yaml``, written before we run)."""
    if not values:
        return
    for path in paths:
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            continue
        clean = scrub(text, values)
        if clean != text:
            path.write_text(clean)
