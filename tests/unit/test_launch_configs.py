"""The accelerate configs under launch/: each one is read by accelerate's own loader as the setup it names, and
the README gives a command for each. (Two CPU processes run them: DDP in tests/integration/test_distributed.py,
FSDP2, ZeRO-2 and ZeRO-3 in tests/integration/test_sharded.py.)"""

from __future__ import annotations

import pytest
from accelerate.commands.config.config_args import load_config_from_file
from accelerate.utils import DistributedType

from rlvr import distributed
from tests.conftest import REPO

LAUNCH = REPO / "launch"


@pytest.mark.parametrize("name, kind, zero", [
    ("ddp", DistributedType.MULTI_GPU, None),
    ("fsdp", DistributedType.FSDP, None),
    ("zero2", DistributedType.DEEPSPEED, 2),
    ("zero3", DistributedType.DEEPSPEED, 3),
])
def test_each_accelerate_config_loads_as_its_setup(name, kind, zero):
    config = load_config_from_file(str(LAUNCH / f"{name}.yaml"))
    assert config.distributed_type == kind and config.num_machines == 1 and not config.use_cpu
    assert config.mixed_precision == "no"  # precision follows the model's dtype
    if zero is not None:
        assert config.deepspeed_config["zero_stage"] == zero
    if name == "fsdp":
        assert config.fsdp_config["fsdp_version"] == 2
    readme = (REPO / "README.md").read_text()
    assert f"accelerate launch --config_file launch/{name}.yaml" in readme


@pytest.mark.parametrize("env, kind", [
    ({}, None),
    ({"ACCELERATE_USE_FSDP": "true"}, "fsdp"),
    ({"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "2"}, "zero2"),
    ({"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "3"}, "zero3"),
])
def test_the_sharding_asked_for_is_read_from_accelerates_environment(monkeypatch, env, kind):
    for key in ("ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED", "ACCELERATE_DEEPSPEED_ZERO_STAGE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert distributed.sharding() == kind
    assert distributed.trainer_arguments() == {}  # no process group: nothing to set up


def test_one_process_under_a_launcher_joins_its_group_first(monkeypatch):
    """``accelerate launch --num_processes 1`` (one GPU): the group is ours, on the device's backend, before any
    ``TrainingArguments(use_cpu=True)`` (settings checked before the model loads) starts a gloo group of its own,
    which on a GPU broke the Trainer's gathers (seen on an H200, 2026-12-04)."""
    import torch
    import torch.distributed as dist

    for key, value in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1",
                       "MASTER_PORT": "29541"}.items():
        monkeypatch.setenv(key, value)
    assert not distributed.launched() and distributed.under_launcher()
    try:
        assert distributed.init() and dist.get_backend() == "gloo" and distributed.world_size() == 1
        assert not distributed.init()  # joined once
    finally:
        distributed.shutdown()
    asked = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    monkeypatch.setattr(dist, "init_process_group", lambda backend: asked.append(backend))
    distributed.init()
    assert asked == ["nccl"]


def test_without_a_launcher_the_collectives_are_the_identity(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not distributed.launched() and not distributed.init()
    assert (distributed.world_size(), distributed.rank(), distributed.is_main()) == (1, 0, True)
    assert distributed.agree("x") == "x" and distributed.gather({"a": 1}) == [{"a": 1}]
