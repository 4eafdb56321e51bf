"""GRPOLoop maps our fields one-to-one onto trl.GRPOConfig, follows the model for precision and gradient
checkpointing, and rejects what TRL would reject before any model loads."""

from __future__ import annotations

import pytest

from rlvr.errors import ConfigError
from rlvr.train import GRPOLoop
from rlvr.train.trl_bridge import checkpointing as checkpointing_arg
from tests.conftest import build_group, compose


def test_every_setting_reaches_grpo_config(tmp_path):
    loop = build_group(compose(["train.beta=0.04", "train.loss_type=dr_grpo", "train.num_generations=8",
                                "train.per_device_train_batch_size=16", "train.extra.top_k=5"]), "train")
    args = loop.config(str(tmp_path), seed=3, reward_weights=[1.0, 0.2], bf16=False)
    assert (args.beta, args.loss_type, args.num_generations, args.top_k) == (0.04, "dr_grpo", 8, 5)
    # train=grpo's recipe for the default job (conf/train/grpo.yaml; bench/recipe.sh)
    assert (args.max_steps, args.learning_rate, args.max_completion_length, args.temperature) == (50, 2e-4, 16, 0.8)
    assert args.seed == 3 and args.reward_weights == [1.0, 0.2] and args.report_to == []


@pytest.mark.parametrize("checkpointing", [False, True])
def test_gradient_checkpointing_follows_the_model(tmp_path, checkpointing):
    """TRL turns checkpointing on by default; ours is model.gradient_checkpointing (off: faster on CPU)."""
    args = GRPOLoop().config(str(tmp_path), seed=0, bf16=False,
                                  **checkpointing_arg(checkpointing))
    assert args.gradient_checkpointing is checkpointing and args.bf16 is False


def test_every_loss_type_trls_grpo_accepts_is_one_of_ours():
    """train.loss_type offers each loss TRL's GRPOConfig lists (its own help text names them), plus gspo (TRL's
    grpo loss on sequence-level ratios); when TRL adds one, this says so."""
    import re
    from typing import get_args

    from trl import GRPOConfig

    from rlvr.train.grpo import LossType

    help_text = GRPOConfig.__dataclass_fields__["loss_type"].metadata["help"]
    trls = set(re.findall(r"'(\w+)'", re.search(r"Supported values are (.+?)\. ", help_text).group(1)))
    assert len(trls) >= 8 and trls == set(get_args(LossType)) - {"gspo"}, f"TRL's GRPO loss types: {sorted(trls)}"


def test_values_trl_rejects_fail_at_construction():
    with pytest.raises(ConfigError, match="trl.GRPOConfig rejects"):
        GRPOLoop(extra={"generation_batch_size": 24})  # not a multiple of num_generations=16


def test_no_deprecated_training_argument_is_used(tmp_path, recwarn):
    """transformers 5 warns on every use of `gradient_checkpointing`; we pass its new name."""
    import warnings

    warnings.simplefilter("always")
    GRPOLoop().config(str(tmp_path), seed=0, bf16=False, **checkpointing_arg(False))
    assert not [w for w in recwarn if "deprecated" in str(w.message)]


@pytest.mark.parametrize(("extra", "message"), [({"beta": 0.1}, "train.extra.beta: a setting of its own"),
                                                ({"not_a_field": 1}, "trl.GRPOConfig does not know: not_a_field")])
def test_extra_is_only_for_fields_we_do_not_surface(extra, message):
    with pytest.raises(ConfigError, match=message):
        GRPOLoop(extra=extra)


@pytest.mark.parametrize("train", ["grpo", "rloo", "sft", "dpo", "kto", "simpo", "reward_model"])
def test_every_trl_loop_has_the_non_finite_loss_setting(train):
    """Every loop over a TRL trainer runs through trl_bridge's guard, so each one takes the setting."""
    assert build_group(compose([f"train={train}", "train.on_nonfinite_loss=stop"]), "train").settings[
        "on_nonfinite_loss"] == "stop"
    with pytest.raises(ConfigError, match=r"^Invalid value 'sometimes' for 'train.on_nonfinite_loss'. Valid choices: "
                                          r"skip, stop.$"):
        build_group(compose([f"train={train}", "train.on_nonfinite_loss=sometimes"]), "train")
