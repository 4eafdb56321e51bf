"""What a rollout samples from, as ``model.generate`` would: transformers' own logits warpers, in its order.

Sampling is where an engine most easily drifts from the reference: a different order of temperature and top-p, or
a top-k that keeps ties differently, changes the distribution the policy gradient assumes. So we do not write
warpers of our own: :class:`Sampling` builds the same ``transformers`` processors ``generate`` builds for
``do_sample=True`` (repetition penalty, temperature, top-k, top-p, min-p, in that order) and samples with
``torch.multinomial`` as it does. Settings ``generate`` has and we do not (beam search, typical-p, ...) are
refused by name rather than ignored.

The log-probability recorded for each sampled token is the one the GRPO loss uses for the same token:
``log_softmax(logits / temperature)`` over the whole vocabulary, before top-k/top-p truncation (TRL's
``_get_per_token_logps_and_entropies``). It is what the engine returns, and what the tests compare.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from rlvr.errors import ConfigError

# GenerationConfig fields that change what is sampled and that this module does not implement; a value other
# than the default for any of them is refused (the loop then uses TRL's own generation instead).
_UNSUPPORTED = {
    "num_beams": 1, "typical_p": 1.0, "epsilon_cutoff": 0.0, "eta_cutoff": 0.0, "no_repeat_ngram_size": 0,
    "bad_words_ids": None, "suppress_tokens": None, "begin_suppress_tokens": None, "forced_bos_token_id": None,
    "forced_eos_token_id": None, "min_length": 0, "encoder_repetition_penalty": 1.0,
    "sequence_bias": None, "guidance_scale": None, "watermarking_config": None, "top_h": None,
    "exponential_decay_length_penalty": None, "renormalize_logits": False, "stop_strings": None,
}


@dataclass(frozen=True)
class Sampling:
    """Sampling settings of one rollout.

    Args:
        max_new_tokens: tokens per completion at most; a completion that reaches it is cut off there.
        stop_token_ids: tokens that end a completion (EOS and any others); the stop token is kept in the
            completion, as ``generate`` keeps it.
        min_new_tokens: stop tokens cannot be sampled before this many tokens (benchmarks pin lengths with it).
        temperature, top_k, top_p, min_p, repetition_penalty: as in ``transformers.GenerationConfig``
            (``top_k`` 0 or None: off; ``min_p`` None: off).
    """

    max_new_tokens: int
    stop_token_ids: tuple[int, ...]
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float = 1.0
    min_p: float | None = None
    repetition_penalty: float = 1.0
    min_new_tokens: int = 0
    _processors: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ConfigError(f"rollout: max_new_tokens must be >= 1, got {self.max_new_tokens}.")
        if not self.temperature > 0:
            raise ConfigError(f"rollout: temperature must be > 0 for sampling, got {self.temperature}.")
        object.__setattr__(self, "_processors", self._build())

    @classmethod
    def from_generation_config(cls, config: Any) -> Sampling:
        """The sampling ``config`` (a ``transformers.GenerationConfig`` with ``do_sample=True``) describes.

        Raises:
            ConfigError: when it asks for something we do not implement (named), or is not sampling.
        """
        if not config.do_sample:
            raise ConfigError("rollout: the engine samples; this generation config is greedy (do_sample=False).")
        for name, default in _UNSUPPORTED.items():
            value = getattr(config, name, default)
            if value is not None and value != default:
                raise ConfigError(f"rollout: the engine does not implement generation setting {name}={value!r}; "
                                  f"use train.rollout=trl for it.")
        eos = config.eos_token_id
        stops = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
        return cls(max_new_tokens=config.max_new_tokens, stop_token_ids=tuple(dict.fromkeys(stops)),
                   temperature=config.temperature if config.temperature is not None else 1.0,
                   top_k=config.top_k or None, top_p=config.top_p if config.top_p is not None else 1.0,
                   min_p=config.min_p, min_new_tokens=config.min_new_tokens or 0,
                   repetition_penalty=config.repetition_penalty if config.repetition_penalty is not None else 1.0)

    def _build(self) -> Any:
        from transformers.generation.logits_process import (
            LogitsProcessorList,
            MinPLogitsWarper,
            RepetitionPenaltyLogitsProcessor,
            TemperatureLogitsWarper,
            TopKLogitsWarper,
            TopPLogitsWarper,
        )

        # transformers' GenerationMixin._get_logits_processor order for do_sample=True.
        processors = LogitsProcessorList()
        if self.repetition_penalty != 1.0:
            processors.append(RepetitionPenaltyLogitsProcessor(self.repetition_penalty))
        if self.temperature != 1.0:
            processors.append(TemperatureLogitsWarper(self.temperature))
        if self.top_k:
            processors.append(TopKLogitsWarper(top_k=self.top_k, min_tokens_to_keep=1))
        if self.top_p < 1.0:
            processors.append(TopPLogitsWarper(top_p=self.top_p, min_tokens_to_keep=1))
        if self.min_p is not None:
            processors.append(MinPLogitsWarper(min_p=self.min_p, min_tokens_to_keep=1))
        return processors

    def sample(self, logits: torch.Tensor, sequences: torch.Tensor, position: int = 0,
               generator: torch.Generator | None = None, rows: torch.Tensor | None = None,
               batch: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One token per row from ``logits`` (rows x vocab, the last position), and its log-probability under
        ``log_softmax(logits / temperature)``. ``sequences``: each row's tokens so far (prompt and completion),
        which the repetition penalty reads; ``position``: the index of the token sampled in the completion.

        ``rows`` (of a ``batch`` of that many): where these rows sit in the batch as it started. The draw is made
        for the whole batch, finished rows included, as ``generate`` makes it (it keeps decoding them), so the
        random stream advances exactly as it does there: from the same seed, the same tokens are drawn (up to
        float rounding in the logits), and a run keeps the trajectory it would have with ``generate``."""
        logits = logits.float()
        logprobs = torch.log_softmax(logits / self.temperature, dim=-1)
        scores = logits
        if position < self.min_new_tokens and self.stop_token_ids:  # generate's MinNewTokensLengthLogitsProcessor
            scores = logits.index_fill(1, torch.tensor(self.stop_token_ids, device=logits.device), -torch.inf)
        scores = self._processors(sequences, scores)
        probs = torch.softmax(scores, dim=-1)
        if rows is not None and batch is not None and rows.numel() < batch:
            full = probs.new_zeros((batch, probs.size(1)))
            full[:, 0] = 1.0  # a finished row's draw is made and thrown away
            full[rows] = probs
            probs = full
        tokens = torch.multinomial(probs, num_samples=1, generator=generator).squeeze(1)
        if rows is not None and batch is not None and rows.numel() < batch:
            tokens = tokens[rows]
        return tokens, logprobs.gather(1, tokens.unsqueeze(1)).squeeze(1)
