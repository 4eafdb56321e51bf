"""Training on rows chosen as training goes (:class:`~rlvr.interfaces.TrainingFeed`: a curriculum's levels, flat
prompts skipped), for the loops over TRL trainers that sample groups (GRPO, RLOO).

TRL's sampler still picks the rows of each generation batch, and its position is what a checkpoint records; the
feed then decides what each picked row is (the row of its slot at its task's current level, or another prompt in
place of a skipped one) just before the trainer generates, and learns how they went right after the rewards:

    _generate_and_score_completions(rows)   rows = feed.rows(step, rows, ...)  -> TRL generates, scores
      _calculate_rewards(...)               feed.observe(step, rows, correct, flat, group)
    log(...)                                + feed.metrics() (levels, window accuracy, skipped prompts)
    rlvr_state.json of every checkpoint     + {"feed": feed.state_dict()}; restored by train(resume_from_checkpoint)

``correct`` is the run's :class:`~rlvr.scoring.Scorer` on each completion (the verdict the rewards are built on;
reasoning-gym's scorers take microseconds), ``flat`` a group's equal total rewards, read as dynamic sampling reads
them. Wrapped inside dynamic sampling, each of its refill rounds goes through the feed as well. One process only:
under a launcher a group's completions, and so its verdicts, may be split across ranks.
"""

from __future__ import annotations

from typing import Any

from rlvr import distributed
from rlvr.errors import ConfigError
from rlvr.interfaces import TrainingFeed
from rlvr.scoring.completions import completion_text
from rlvr.train.checkpoints import read_state
from rlvr.train.dynamic_sampling import flat_groups, trainer_totals


def with_feed(trainer_cls: type, feed: TrainingFeed, scorer: Any) -> type:
    """``trainer_cls`` (TRL's GRPOTrainer or RLOOTrainer) training on the rows ``feed`` chooses, judged by
    ``scorer``; it restores the feed from a checkpoint's :func:`feed_state`."""
    if distributed.launched():
        raise ConfigError("data.curriculum and data.difficulty_filter.flat_epochs run in one process for now (a "
                          "group's completions may be split across ranks); turn them off under a launcher.")

    class Fed(trainer_cls):  # type: ignore[misc, valid-type]
        def train(self, resume_from_checkpoint: Any = None, **kwargs: Any) -> Any:
            if resume_from_checkpoint:
                state = read_state(resume_from_checkpoint)
                if "feed" not in state:
                    raise ConfigError(f"{resume_from_checkpoint} was saved without a curriculum or flat-prompt "
                                      "state; it cannot be continued with one.")
                feed.load_state_dict(state["feed"])
            return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)

        def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
            if self.model.training:
                inputs = feed.rows(self.state.global_step + 1, inputs, self.num_generations, self.train_dataset,
                                   self.args.seed)
            return super()._generate_and_score_completions(inputs)

        def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
            rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
            if self.model.training:
                correct = [scorer(completion_text(c), row).correct for c, row in zip(completions, inputs)]
                flat = flat_groups(trainer_totals(self, rewards), self.num_generations)
                feed.observe(self.state.global_step + 1, inputs, correct, flat.tolist(), self.num_generations)
            return rewards

        def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
            if "loss" in logs:  # a training step's log: the levels and counts as they are now
                logs = {**logs, **feed.metrics()}
            super().log(logs, *args, **kwargs)

    Fed.__name__ = Fed.__qualname__ = trainer_cls.__name__
    return Fed


def feed_state(feed: TrainingFeed) -> dict[str, Any]:
    """What a checkpoint keeps of ``feed`` (in ``rlvr_state.json``, through
    :func:`rlvr.train.checkpoints.atomic_checkpoints`' ``extra_state``)."""
    return {"feed": feed.state_dict()}
