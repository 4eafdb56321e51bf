"""Dynamic sampling (DAPO, Yu et al. 2025, section 3.2), which TRL's GRPOTrainer does not do.

A group of completions whose rewards are all equal has zero advantage for every completion: it costs a full
generation and a backward pass and teaches nothing, and as a policy gets good (or stays hopeless) on a task most
groups become such. With ``train.dynamic_sampling=true`` the trainer drops those groups from each generation batch
and refills it with groups of further prompts, sampled and scored the same way, until the batch is full of groups
that carry a signal or ``max_resample_rounds`` is reached; a batch still short is completed with dropped groups
(zero advantage, so they change nothing but the loss's normaliser) and said so in the logs.

Metrics per step: ``dynamic_sampling/dropped_groups`` (flat groups generated), ``dynamic_sampling/rounds``
(extra generation rounds) and ``dynamic_sampling/unfilled_groups`` (flat groups left in the batch).

The extra prompts are drawn from the training rows with a generator seeded by the run's seed and the step, so a
resumed run draws the same ones (the data position of the main sampler is TRL's and is not touched).
"""

from __future__ import annotations

import random
from typing import Any

import torch

_BATCHED = ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask", "advantages", "old_per_token_logps",
            "ref_per_token_logps", "sampling_per_token_logps", "tool_mask", "importance_sampling_ratio")


def flat_groups(advantages: torch.Tensor, group: int) -> torch.Tensor:
    """A boolean per group of ``group`` consecutive completions: True when every advantage in it is zero (its
    rewards were all equal; centring by the group mean makes them exactly zero)."""
    return (advantages.reshape(-1, group) == 0).all(dim=1)


def concat(parts: list[dict[str, Any]], pad_token_id: int) -> dict[str, Any]:
    """The batched tensors of several ``_generate_and_score_completions`` outputs joined along the batch: prompts
    left-padded and completions right-padded to the widest; ``num_items_in_batch`` recounted."""
    out: dict[str, Any] = {}
    for key in _BATCHED:
        if key not in parts[0]:
            continue
        tensors = [p[key] for p in parts]
        if tensors[0].dim() == 1:
            out[key] = torch.cat(tensors)
            continue
        width = max(t.size(1) for t in tensors)
        left = key.startswith("prompt")
        fill = pad_token_id if key.endswith("_ids") else 0
        out[key] = torch.cat([_pad(t, width, fill, left) for t in tensors])
    mask = out["completion_mask"] * out["tool_mask"] if "tool_mask" in out else out["completion_mask"]
    out["num_items_in_batch"] = mask.sum().to(parts[0]["num_items_in_batch"].dtype)
    return out


def select(output: dict[str, Any], rows: torch.Tensor) -> dict[str, Any]:
    return {k: (v[rows] if k in _BATCHED else v) for k, v in output.items()}


def _pad(t: torch.Tensor, width: int, fill: float, left: bool) -> torch.Tensor:
    extra = width - t.size(1)
    if extra == 0:
        return t
    pad = torch.full((t.size(0), extra, *t.shape[2:]), fill, dtype=t.dtype, device=t.device)
    return torch.cat([pad, t] if left else [t, pad], dim=1)


def dynamic_sampling(trainer_cls: type, max_rounds: int) -> type:
    """``trainer_cls`` (TRL's GRPOTrainer or a subclass) with DAPO's dynamic sampling."""

    class DynamicSampling(trainer_cls):  # type: ignore[misc, valid-type]
        def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
            output = super()._generate_and_score_completions(inputs)
            if not self.model.training:
                return output
            group = self.num_generations
            wanted = output["advantages"].numel() // group
            kept, flat, dropped, rounds = [], [], 0, 0
            part = output
            while True:
                is_flat = flat_groups(part["advantages"], group)
                dropped += int(is_flat.sum())
                for g, f in enumerate(is_flat.tolist()):
                    (flat if f else kept).append((part, g))
                if len(kept) >= wanted or rounds >= max_rounds:
                    break
                rounds += 1
                part = super()._generate_and_score_completions(self._more_prompts(wanted - len(kept), rounds))
            chosen = (kept + flat)[:wanted]
            parts = []
            for source in dict.fromkeys(id(p) for p, _ in chosen):  # each generation round's chosen groups
                src = next(p for p, _ in chosen if id(p) == source)
                rows = torch.tensor([g * group + i for p, g in chosen if id(p) == source for i in range(group)])
                parts.append(select(src, rows))
            merged = {**output, **concat(parts, self.processing_class.pad_token_id)}
            unfilled = max(0, wanted - len(kept))
            metrics = self._metrics["train"]
            metrics["dynamic_sampling/dropped_groups"].append(float(dropped))
            metrics["dynamic_sampling/rounds"].append(float(rounds))
            metrics["dynamic_sampling/unfilled_groups"].append(float(unfilled))
            return merged

        def _more_prompts(self, groups: int, round_: int) -> list[dict[str, Any]]:
            """``groups`` training rows not chosen by TRL's sampler for this step, each repeated once per
            completion of its group; seeded by the run's seed, the step and the round (a resume draws the same)."""
            rng = random.Random(hash((self.args.seed, self.state.global_step, round_)))
            picked = rng.sample(range(len(self.train_dataset)), min(groups, len(self.train_dataset)))
            rows = [self.train_dataset[i] for i in picked]
            return [row for row in rows for _ in range(self.num_generations)]

    DynamicSampling.__name__ = DynamicSampling.__qualname__ = trainer_cls.__name__
    return DynamicSampling
