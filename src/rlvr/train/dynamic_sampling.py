"""Dynamic sampling (DAPO, Yu et al. 2025, section 3.2), which TRL's GRPOTrainer does not do.

A group of completions whose rewards are all equal has zero advantage for every completion: it costs a full
generation and a backward pass and teaches nothing, and as a policy gets good (or stays hopeless) on a task most
groups become such. With ``train.dynamic_sampling=true`` the trainer drops those groups from each generation batch
and refills it with groups of further prompts, sampled and scored the same way, until the batch is full of groups
that carry a signal or ``max_resample_rounds`` extra rounds are spent; a batch still short is completed with
dropped groups (zero advantage: they change nothing but the loss's normaliser), and the diagnostics say so in
plain words.

A group is flat when its total rewards (:func:`rlvr.rewards.weighted_total`, the sum TRL's advantages come from;
unscorable completions left out) are equal, read from the rewards themselves: TRL's advantages of such a group
are not always exactly zero (a group mean of 3.7 x 16 rounds), so testing them for zero would keep some flat
groups.

Metrics per step: ``dynamic_sampling/dropped_groups`` (flat groups generated), ``dynamic_sampling/rounds``
(extra generation rounds) and ``dynamic_sampling/unfilled_groups`` (flat groups left in the batch). TRL's own
``reward``, ``frac_reward_zero_std`` and completion metrics count every round's completions.

Where the extra prompts come from, and resume: TRL's sampler, whose position a checkpoint records, is not
touched: each step still consumes exactly the prompts it would without dynamic sampling. The extra prompts are
drawn from the whole training set, leaving out those already generated for this step, by a generator seeded
with the run's seed, the step and the round; so a resumed run draws the same extra prompts, and a prompt drawn
as an extra may come again later from the sampler in its turn (it is not marked consumed). With
``scale_rewards=batch`` each round's advantages are scaled by the spread of that round's own batch.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import torch

from rlvr import distributed
from rlvr.errors import ConfigError
from rlvr.rewards import weighted_total

_BATCHED = ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask", "advantages", "old_per_token_logps",
            "ref_per_token_logps", "sampling_per_token_logps", "tool_mask", "importance_sampling_ratio")


def check_settings(extra: dict[str, Any]) -> None:
    """Reject, before anything loads, what dynamic sampling cannot do (``extra``: the loop's ``train.extra``)."""
    if distributed.launched():
        raise ConfigError("train.dynamic_sampling runs in one process for now (a group's completions may be split "
                          "across ranks); turn it off under a launcher.")
    if extra.get("multi_objective_aggregation") == "normalize_then_sum":
        raise ConfigError("train.dynamic_sampling drops groups whose total rewards are equal, but with "
                          "train.extra.multi_objective_aggregation=normalize_then_sum such a group can still carry "
                          "a signal; use one of them, not both.")


def trainer_totals(trainer: Any, rewards_per_func: torch.Tensor) -> torch.Tensor:
    """The total reward of each completion from a TRL trainer's rewards per function (one column per function, in
    ``trainer.reward_func_names`` order) and its weights: :func:`rlvr.rewards.weighted_total`, the sum its
    advantages come from."""
    names = trainer.reward_func_names
    return weighted_total(dict(zip(names, rewards_per_func.unbind(1))),
                          dict(zip(names, trainer.reward_weights.tolist())))


def flat_groups(rewards: torch.Tensor, group: int) -> torch.Tensor:
    """A boolean per group of ``group`` consecutive completions: True when its scored rewards are all equal (or
    fewer than two were scored), so that every advantage in it is zero.

    >>> flat_groups(torch.tensor([3.7, 3.7, 3.7, 3.7, 1.0, 0.0, 1.0, 1.0, 2.0, float("nan"), 2.0, 2.0]), 4).tolist()
    [True, False, True]
    """
    r = rewards.reshape(-1, group)
    unscored = torch.isnan(r)
    highest = r.masked_fill(unscored, -torch.inf).amax(dim=1)
    lowest = r.masked_fill(unscored, torch.inf).amin(dim=1)
    return ~(highest > lowest)


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


def _prompt_key(row: dict[str, Any]) -> str:
    return repr(row["prompt"])


def _random_order(rng: random.Random, n: int) -> Iterator[int]:
    """0..n-1 in a random order, drawn lazily (a refill usually needs a few rows of a large set)."""
    drawn: set[int] = set()
    while len(drawn) < n:
        i = rng.randrange(n)
        if i not in drawn:
            drawn.add(i)
            yield i


def dynamic_sampling(trainer_cls: type, max_rounds: int) -> type:
    """``trainer_cls`` (TRL's GRPOTrainer or a subclass) with DAPO's dynamic sampling."""

    class DynamicSampling(trainer_cls):  # type: ignore[misc, valid-type]
        def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
            self._last_rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
            return self._last_rewards

        def _generate_and_score(self, inputs: list[dict[str, Any]]) -> tuple[dict[str, Any], torch.Tensor]:
            """TRL's generation and scoring of ``inputs``, and the completions' total rewards."""
            self._last_rewards = None
            output = super()._generate_and_score_completions(inputs)
            if self._last_rewards is None:
                raise RuntimeError("dynamic sampling reads the rewards from _calculate_rewards, which this trainer's "
                                   "generation step did not call")
            return output, trainer_totals(self, self._last_rewards)

        def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
            if not self.model.training:
                return super()._generate_and_score_completions(inputs)
            output, rewards = self._generate_and_score(inputs)
            group = self.num_generations
            wanted = output["advantages"].numel() // group
            seen = {_prompt_key(row) for row in inputs}
            kept, flat, rounds, part = [], [], 0, output
            while True:
                is_flat = flat_groups(rewards, group)
                for g, f in enumerate(is_flat.tolist()):
                    (flat if f else kept).append((part, g))
                if len(kept) >= wanted or rounds >= max_rounds:
                    break
                more = self._more_prompts(wanted - len(kept), rounds + 1, seen)
                if not more:  # every training prompt was generated for this step already
                    break
                rounds += 1
                part, rewards = self._generate_and_score(more)
            rows_of: dict[int, tuple[dict[str, Any], list[int]]] = {}  # each round's output and its chosen rows
            for p, g in (kept + flat)[:wanted]:
                rows_of.setdefault(id(p), (p, []))[1].extend(range(g * group, (g + 1) * group))
            parts = [select(p, torch.tensor(rows)) for p, rows in rows_of.values()]
            metrics = self._metrics["train"]
            metrics["dynamic_sampling/dropped_groups"].append(float(len(flat)))
            metrics["dynamic_sampling/rounds"].append(float(rounds))
            metrics["dynamic_sampling/unfilled_groups"].append(float(max(0, wanted - len(kept))))
            return {**output, **concat(parts, self.processing_class.pad_token_id)}

        def _more_prompts(self, groups: int, round_: int, seen: set[str]) -> list[dict[str, Any]]:
            """``groups`` training rows whose prompts are not in ``seen`` (this step's so far; added to it), each
            repeated once per completion of its group; seeded by the run's seed, the step and the round."""
            rng = random.Random(f"{self.args.seed}:{self.state.global_step}:{round_}")
            rows = []
            for i in _random_order(rng, len(self.train_dataset)):
                row = self.train_dataset[i]
                if _prompt_key(row) not in seen:
                    seen.add(_prompt_key(row))
                    rows.append(row)
                    if len(rows) == groups:
                        break
            return [row for row in rows for _ in range(self.num_generations)]

    DynamicSampling.__name__ = DynamicSampling.__qualname__ = trainer_cls.__name__
    return DynamicSampling
