"""Composing the config outside a Hydra app (tests, notebooks, the benchmark), from the config tree that
ships inside the package (``pkg://rlvr.conf``; the repository's ``conf/`` links to it)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from rlvr.config.resolvers import register_resolvers

CONFIG_MODULE = "rlvr.conf"
CONFIG_PATH = f"pkg://{CONFIG_MODULE}"
GROUPS = ("data", "prompts", "model", "reward", "train", "eval", "observers", "experiment", "control")
SWITCHES = ("preflight",)  # settings nodes turned on by a bare value: preflight=true is preflight.enabled=true


def open_overrides(args: list[str]) -> list[str]:
    """Command-line values may set any key: ``train.max_steps=500`` becomes ``++train.max_steps=500``.

    A group file only holds what differs from its class's defaults, so most keys are not in the composed
    config and Hydra's struct mode would ask for ``+``. Whether a key exists is the signature's business:
    :func:`rlvr.config.validate` rejects an unknown one with a "did you mean". Group choices (``data=gsm8k``),
    Hydra's own settings (``hydra.*``), flags and keys already prefixed with ``+``/``++``/``~`` are left alone.
    A switch (``preflight=true``) sets its node's ``enabled``, so the node's other settings stay reachable
    (``preflight.sample=0``). A group inside a group (``eval/rerank``) may be chosen with a dot too:
    ``eval.rerank=prm`` is ``eval/rerank=prm``.

    >>> open_overrides(["train.max_steps=5", "data=gsm8k", "+x.y=1", "hydra.run.dir=d", "-m", "seed=3"])
    ['++train.max_steps=5', 'data=gsm8k', '+x.y=1', 'hydra.run.dir=d', '-m', '++seed=3']
    >>> open_overrides(["preflight=true", "preflight.sample=0"])
    ['++preflight.enabled=true', '++preflight.sample=0']
    >>> open_overrides(["eval.rerank=[prm,reward_model]", "eval.rerank.prm.path=p"])
    ['eval/rerank=[prm,reward_model]', '++eval.rerank.prm.path=p']
    """
    out = []
    for arg in args:
        key, eq, value = arg.partition("=")
        plain = eq and not arg.startswith(("-", "+", "~")) and not any(c in key for c in "/@")
        if plain and key in SWITCHES:
            arg = f"++{key}.enabled={value}"
        elif plain and "." in key and files(CONFIG_MODULE).joinpath(*key.split(".")).is_dir():
            arg = arg.replace(".", "/", key.count("."))  # a nested group's choice
        elif plain and key not in GROUPS and not key.startswith("hydra."):
            arg = f"++{arg}"
        out.append(arg)
    return out


def load_config(overrides: list[str] | None = None, config_name: str = "config",
                config_dir: str | Path | None = None) -> Any:
    """The composed config, as ``python run_pipeline.py OVERRIDES`` would see it.

    ``config_dir`` (like ``--config-dir``) is searched before the shipped tree, so a user's own group options
    and experiments compose with ours.
    """
    from hydra import compose, initialize_config_module

    register_resolvers()
    overrides = open_overrides(list(overrides or []))
    if config_dir is not None:
        overrides.append(f"hydra.searchpath=[file://{Path(config_dir).resolve()}]")
    with initialize_config_module(CONFIG_MODULE, version_base=None):
        return compose(config_name=config_name, overrides=overrides)
