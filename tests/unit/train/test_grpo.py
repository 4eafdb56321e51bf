"""GRPOLoop maps our fields one-to-one onto trl.GRPOConfig, follows the model for precision and gradient
checkpointing, and rejects what TRL would reject before any model loads."""

from __future__ import annotations

import pytest

from rlvr.errors import ConfigError
from rlvr.orchestration import build
from rlvr.train import GRPOLoop
from tests.conftest import compose


def test_every_setting_reaches_grpo_config(tmp_path):
    loop = build(compose(["train.beta=0.04", "train.loss_type=dr_grpo", "train.num_generations=8",
                          "train.per_device_train_batch_size=16", "+train.extra.top_k=5"]).train, "train")
    args = loop.grpo_config(str(tmp_path), seed=3, reward_weights=[1.0, 0.2], bf16=False)
    assert (args.beta, args.loss_type, args.num_generations, args.top_k) == (0.04, "dr_grpo", 8, 5)
    assert (args.max_steps, args.learning_rate, args.max_completion_length) == (30, 2e-5, 40)
    assert args.seed == 3 and args.reward_weights == [1.0, 0.2] and args.report_to == []


@pytest.mark.parametrize("checkpointing", [False, True])
def test_gradient_checkpointing_follows_the_model(tmp_path, checkpointing):
    """TRL turns checkpointing on by default; ours is model.gradient_checkpointing (off: faster on CPU)."""
    args = GRPOLoop().grpo_config(str(tmp_path), seed=0, reward_weights=None, bf16=False,
                                  gradient_checkpointing=checkpointing)
    assert args.gradient_checkpointing is checkpointing and args.bf16 is False


def test_values_trl_rejects_fail_at_construction():
    with pytest.raises(ConfigError, match="trl.GRPOConfig rejects"):
        GRPOLoop(extra={"generation_batch_size": 24})  # not a multiple of num_generations=16
