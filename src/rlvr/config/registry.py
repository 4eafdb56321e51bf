"""Registers one typed schema per component class in Hydra's ConfigStore, under ``schema/<group>/<Class>``.

A group file extends its schema and sets only what differs::

    defaults:
      - /schema/data/ReasoningGymData@_here_
      - _self_
    task: chain_sum

Adding a component class to a group = one line in ``GROUP_SCHEMAS`` + one YAML file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore

from rlvr.config.resolvers import register_resolvers
from rlvr.config.schema import schema_of

CONF_DIR = Path(__file__).resolve().parents[3] / "conf"


def _group_schemas() -> dict[str, list[type]]:
    from rlvr.data import FinQAData, PromptTemplate, QAData, ReasoningGymData
    from rlvr.evaluation import Evaluator
    from rlvr.model import HFModel
    from rlvr.rewards import RewardSuite
    from rlvr.train import GRPOLoop

    return {
        "data": [ReasoningGymData, QAData, FinQAData],
        "model": [HFModel],
        "train": [GRPOLoop],
        "reward": [RewardSuite],
        "eval": [Evaluator],
        "prompts": [PromptTemplate],
    }


_registered = False


def register_configs() -> None:
    """Store every schema and register our resolvers (idempotent)."""
    global _registered
    if _registered:
        return
    cs = ConfigStore.instance()
    for group, classes in _group_schemas().items():
        for cls in classes:
            cs.store(group=f"schema/{group}", name=cls.__name__, node=schema_of(cls))
    register_resolvers()
    _registered = True


def load_config(overrides: list[str] | None = None, config_dir: str | Path | None = None,
                config_name: str = "config") -> Any:
    """Compose the config outside a Hydra app (tests, notebooks, the benchmark)."""
    from hydra import compose, initialize_config_dir

    register_configs()
    with initialize_config_dir(str(Path(config_dir or CONF_DIR).resolve()), version_base=None):
        return compose(config_name=config_name, overrides=list(overrides or []))
