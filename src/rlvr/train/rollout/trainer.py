"""The rollout engine behind TRL's GRPOTrainer: its generation step replaced, nothing else.

TRL's trainer samples in ``_generate_single_turn(prompt_ids, ...)`` and does everything else (decoding the text,
rewards through ``_calculate_rewards``, advantages, the loss) from the token ids it returns. The subclass below
answers that call with :class:`~rlvr.train.rollout.RolloutEngine`, so rewards, dynamic sampling, checkpoints
and the loss see exactly what they see with TRL's own generation. The sampling settings are TRL's (its
``generation_config``: temperature, top-p, top-k, min-p, repetition penalty, EOS tokens, max length), and the
engine draws from torch's global generator as ``generate`` does, so a checkpoint's RNG state resumes it exactly.

Where the engine does not apply, TRL's own generation runs: vLLM, transformers' continuous batching, images,
and weights sharded across processes (FSDP, ZeRO-3), which only TRL's path gathers.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from rlvr.train.rollout.engine import RolloutEngine
from rlvr.train.rollout.sampling import Sampling

log = logging.getLogger(__name__)


def with_engine(trainer_cls: type, engine: RolloutEngine) -> type:
    """``trainer_cls`` (TRL's GRPOTrainer or a subclass) sampling its rollouts with ``engine``."""

    class EngineRollouts(trainer_cls):  # type: ignore[misc, valid-type]
        _rollout_sampling: Sampling | None = None
        _said_fallback = False

        def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations,
                                  has_tool_images=False):
            reason = self._engine_not_applicable(images, multimodal_fields)
            if reason:
                if not self._said_fallback:
                    log.info("rollout engine: %s, so TRL's own generation samples the rollouts", reason)
                    self._said_fallback = True
                return super()._generate_single_turn(prompt_ids, images, multimodal_fields, num_generations,
                                                     has_tool_images)
            if self._rollout_sampling is None:
                self._rollout_sampling = Sampling.from_generation_config(self.generation_config)
            start = time.perf_counter()
            rollout = engine.generate(self.model, prompt_ids, self._rollout_sampling, self._tokenizer.pad_token_id)
            mode = "train" if self.model.training else "eval"
            self._metrics[mode]["rollout/seconds"].append(time.perf_counter() - start)
            self._metrics[mode]["rollout/decoded_fraction"].append(
                rollout.decode_tokens / max(1, len(prompt_ids) * (self._rollout_sampling.max_new_tokens - 1)))
            return rollout.completion_ids, rollout.logprobs

        def _engine_not_applicable(self, images: Any, multimodal_fields: Any) -> str | None:
            if self.use_vllm:
                return "vLLM generates"
            if getattr(self, "use_transformers_continuous_batching", False):
                return "transformers' continuous batching was asked for"
            if images is not None or multimodal_fields:
                return "the prompts have images"
            if getattr(self, "is_fsdp_enabled", False):
                return "FSDP shards the weights"
            plugin = self.accelerator.state.deepspeed_plugin if getattr(self, "is_deepspeed_enabled", False) else None
            if plugin is not None and plugin.zero_stage == 3:
                return "ZeRO-3 shards the weights"
            return None

    EngineRollouts.__name__ = EngineRollouts.__qualname__ = trainer_cls.__name__
    return EngineRollouts
