"""A reward model made from the policy: the same transformer body with a sequence-classification head (one
score per sequence, read at its last token), as TRL's ``RewardTrainer`` trains it. Works for any causal LM
transformers has an ``AutoModelForSequenceClassification`` class for (Llama, Qwen, Mistral, GPT-2, ...).

The body's weights are copied from the loaded policy, not read again from disk, so a policy loaded from a run
directory (with a merged adapter) or the embedded model is the starting point as it is. The head is new
(seeded), so an untrained reward model ranks pairs at chance.
"""

from __future__ import annotations

from typing import Any

from rlvr.errors import ConfigError


def is_reward_model(model: Any) -> bool:
    """Whether ``model`` scores sequences (a sequence-classification head) rather than generating text."""
    return type(model).__name__.endswith("ForSequenceClassification")


def reward_model_from(policy: Any, seed: int = 0) -> Any:
    """A ``num_labels=1`` sequence-classification model with ``policy``'s config, body weights, dtype and
    device. A LoRA-wrapped policy is refused (train the reward model on full weights, or merge first)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    if is_reward_model(policy):
        return policy
    if hasattr(policy, "peft_config"):
        raise ConfigError("train=reward_model trains full weights: set model.lora.enabled=false (a run directory's "
                          "adapter is merged when it loads).")
    config = policy.config.__class__.from_dict(policy.config.to_dict())
    config.num_labels = 1
    if config.pad_token_id is None:  # the head reads the last non-pad token of each sequence
        config.pad_token_id = policy.generation_config.pad_token_id
    param = next(policy.parameters())
    with torch.random.fork_rng(devices=[param.device] if param.device.type == "cuda" else []):
        torch.manual_seed(seed)
        try:
            model = AutoModelForSequenceClassification.from_config(config, dtype=param.dtype)
        except ValueError as e:
            raise ConfigError(f"train=reward_model: transformers has no sequence-classification head for "
                              f"{type(policy).__name__}: {e}") from None
    body = model.base_model_prefix
    getattr(model, body).load_state_dict(getattr(policy, body).state_dict(), strict=True)
    return model.to(param.device)
