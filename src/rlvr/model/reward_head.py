"""Scoring models made from the policy: the same transformer body with a new head, as transformers builds it for
any causal LM it has the class for (Llama, Qwen, Mistral, GPT-2, ...).

- A reward model (:func:`reward_model_from`): a sequence-classification head, one score per sequence read at its
  last token, as TRL's ``RewardTrainer`` trains it; with ``heads=k``, k scores per sequence, an ensemble of k
  heads on one body, each head initialised from its own seed.
- A process reward model (:func:`process_reward_model_from`): a token-classification head with two labels (a step
  is wrong, right), read at the last token of each step of a solution (:mod:`rlvr.scoring.steps`).

The body's weights are copied from the loaded policy, not read again from disk, so a policy loaded from a run
directory (with a merged adapter) or the embedded model is the starting point as it is. The heads are new
(seeded), so an untrained one ranks at chance. Both save and load with transformers' own classes
(``AutoModelForSequenceClassification``, ``AutoModelForTokenClassification``).
"""

from __future__ import annotations

from typing import Any

from rlvr.errors import ConfigError

STEP_LABELS = {0: "wrong_step", 1: "right_step"}


def is_reward_model(model: Any) -> bool:
    """Whether ``model`` scores sequences (a sequence-classification head) rather than generating text."""
    return type(model).__name__.endswith("ForSequenceClassification")


def is_process_reward_model(model: Any) -> bool:
    """Whether ``model`` scores the tokens of a solution (a token-classification head: a process reward model)."""
    return type(model).__name__.endswith("ForTokenClassification")


def reward_model_from(policy: Any, seed: int = 0, heads: int = 1) -> Any:
    """A sequence-classification model with ``heads`` outputs (an ensemble of reward heads when more than one,
    head ``i`` initialised from seed ``seed + i``) and ``policy``'s config, body weights, dtype and device. A
    LoRA-wrapped policy is refused (train the reward model on full weights, or merge first)."""
    if is_reward_model(policy):
        return policy
    labels = {i: f"member_{i}" for i in range(heads)} if heads > 1 else None
    return _head_model(policy, "AutoModelForSequenceClassification", heads, seed, "train=reward_model", labels)


def process_reward_model_from(policy: Any, separator: str, seed: int = 0) -> Any:
    """A token-classification model with two labels (:data:`STEP_LABELS`), ``policy``'s config, body weights, dtype
    and device, and ``separator`` (what splits a solution into steps) recorded in its config as
    ``step_separator``, so whoever loads it reads steps as it was trained to."""
    if is_process_reward_model(policy):
        return policy
    model = _head_model(policy, "AutoModelForTokenClassification", 2, seed, "train=prm", STEP_LABELS)
    model.config.step_separator = separator
    return model


def _head_model(policy: Any, auto_class: str, num_labels: int, seed: int, setting: str,
                labels: dict[int, str] | None) -> Any:
    import torch
    import transformers

    if hasattr(policy, "peft_config"):
        raise ConfigError(f"{setting} trains full weights: set model.lora.enabled=false (a run directory's adapter "
                          "is merged when it loads).")
    config = policy.config.__class__.from_dict(policy.config.to_dict())
    config.num_labels = num_labels
    if labels:
        config.id2label, config.label2id = dict(labels), {v: k for k, v in labels.items()}
    if config.pad_token_id is None:  # a sequence head reads the last non-pad token of each sequence
        config.pad_token_id = policy.generation_config.pad_token_id
    param = next(policy.parameters())
    with torch.random.fork_rng(devices=[param.device] if param.device.type == "cuda" else []):
        torch.manual_seed(seed)
        try:
            model = getattr(transformers, auto_class).from_config(config, dtype=param.dtype)
        except ValueError as e:
            raise ConfigError(f"{setting}: transformers has no {auto_class.removeprefix('AutoModelFor')} head for "
                              f"{type(policy).__name__}: {e}") from None
        body = model.base_model_prefix
        if num_labels > 1 and auto_class.endswith("SequenceClassification"):
            _seed_rows(_head(model, body), seed, config.initializer_range)
    getattr(model, body).load_state_dict(getattr(policy, body).state_dict(), strict=True)
    return model.to(param.device)


def _head(model: Any, body: str) -> Any:
    """The new linear layer on top of the body (``score`` for most models, ``classifier`` for some)."""
    import torch

    return next(m for name, m in model.named_children() if name != body and isinstance(m, torch.nn.Linear))


def _seed_rows(head: Any, seed: int, std: float) -> None:
    """Each output row of ``head`` (one ensemble member) drawn from its own seed, ``seed + row``."""
    import torch

    with torch.no_grad():
        for row in range(head.weight.shape[0]):
            gen = torch.Generator().manual_seed(seed + row)
            head.weight[row].copy_(torch.randn(head.weight.shape[1], generator=gen) * std)
        if head.bias is not None:
            head.bias.zero_()
