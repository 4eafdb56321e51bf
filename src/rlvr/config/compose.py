"""Composing the config outside a Hydra app (tests, notebooks, the benchmark), from the config tree that
ships inside the package (``pkg://rlvr.conf``; the repository's ``conf/`` links to it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlvr.config.resolvers import register_resolvers

CONFIG_MODULE = "rlvr.conf"
CONFIG_PATH = f"pkg://{CONFIG_MODULE}"


def load_config(overrides: list[str] | None = None, config_name: str = "config",
                config_dir: str | Path | None = None) -> Any:
    """The composed config, as ``python run_pipeline.py OVERRIDES`` would see it.

    ``config_dir`` (like ``--config-dir``) is searched before the shipped tree, so a user's own group options
    and experiments compose with ours.
    """
    from hydra import compose, initialize_config_module

    register_resolvers()
    overrides = list(overrides or [])
    if config_dir is not None:
        overrides.append(f"hydra.searchpath=[file://{Path(config_dir).resolve()}]")
    with initialize_config_module(CONFIG_MODULE, version_base=None):
        return compose(config_name=config_name, overrides=overrides)
