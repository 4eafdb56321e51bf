"""The rollout engine: sampling a GRPO batch (groups of completions of the same prompt) from the policy, with
the policy's own weights, and the log-probability of every sampled token.

What it does that ``model.generate`` (TRL's path) does not:

- **One prefill per group.** TRL repeats each prompt once per completion and ``generate`` prefills every copy.
  The engine prefills each distinct prompt once and repeats its KV cache across the group (16x less prefill in
  the default run); only the last position's logits are projected onto the vocabulary.
- **Finished completions stop costing compute.** A completion that sampled a stop token leaves the batch: its
  rows are dropped from the KV cache, so the decoding batch shrinks as completions end (``generate`` keeps
  decoding padding for them until the longest is done). With a static cache the batch is compacted only when
  half of it has finished, so the number of distinct shapes (and CUDA graphs) stays logarithmic.
- **A static KV cache reused across steps, and a compiled decoding step** (``compile=True``, meant for GPUs):
  the cache is allocated once at the largest batch and length seen and reset between rollouts, and
  ``torch.compile(mode="reduce-overhead")`` captures the one-token decoding step as CUDA graphs.
- **The sampled tokens' log-probabilities** come with the completions, so nothing has to recompute them to
  check the engine (the tests compare them with the training forward pass) or to correct for a mismatch.

The weights are the trainer's: the engine calls the model object the trainer optimises (a PEFT model applies
its adapters in place) under ``torch.no_grad``; nothing is copied.
What is sampled is what ``generate`` samples: :mod:`rlvr.train.rollout.sampling` uses transformers' own logits
warpers in ``generate``'s order, and the tests compare the token distributions statistically.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch

from rlvr.train.kv_cache import base_model, cache_kwargs, new_cache, repeat_rows
from rlvr.train.rollout.sampling import Sampling


@dataclass
class Rollout:
    """Completions in the order of the prompts given, each ending at (and including) its stop token or cut off
    at ``max_new_tokens``; ``logprobs[i][j]`` is the log-probability of ``completion_ids[i][j]``."""

    completion_ids: list[list[int]]
    logprobs: list[list[float]]
    prefill_tokens: int  # prompt tokens run through the model (distinct prompts only)
    decode_tokens: int  # (row, position) pairs decoded: what finished completions no longer cost


class RolloutEngine:
    """Samples completions from a causal LM.

    Args:
        compile: capture the decoding step with ``torch.compile(mode="reduce-overhead")`` (CUDA graphs on a GPU)
            over a static KV cache; the first rollout pays the compilation.
        static_cache: a static KV cache allocated once and reused across rollouts; default: when compiling (an
            eager decoding step is faster over a cache that grows with the sequence).
        pad_to: prompt lengths are rounded up to a multiple of this with a static cache, so that steps with
            slightly different prompts reuse the same cache and graphs.
    """

    def __init__(self, compile: bool = False, static_cache: bool | None = None, pad_to: int = 64):
        self.compile = compile
        self.static_cache = compile if static_cache is None else static_cache
        self.pad_to = pad_to
        self._cache: Any = None
        self._cache_shape: tuple[int, int] | None = None
        self._decode: Any = None

    @torch.no_grad()
    def generate(self, model: Any, prompt_ids: list[list[int]], sampling: Sampling, pad_token_id: int,
                 generator: torch.Generator | None = None) -> Rollout:
        """One completion per entry of ``prompt_ids``; identical prompts (a GRPO group) share one prefill."""
        device = next(model.parameters()).device
        unique: dict[tuple[int, ...], int] = {}
        owner = [unique.setdefault(tuple(p), len(unique)) for p in prompt_ids]
        prompts = list(unique)
        # Rows of the decoding batch, grouped by prompt: row r decodes for the prompt entries in rows[r].
        order = sorted(range(len(prompt_ids)), key=lambda i: owner[i])
        repeats = torch.bincount(torch.tensor(owner), minlength=len(prompts)).to(device)

        width = max(map(len, prompts))
        if self.static_cache:
            width = -(-width // self.pad_to) * self.pad_to
        ids = torch.full((len(prompts), width), pad_token_id, dtype=torch.long, device=device)
        mask = torch.zeros((len(prompts), width), dtype=torch.long, device=device)
        for i, p in enumerate(prompts):
            ids[i, width - len(p):] = torch.tensor(p, device=device)
            mask[i, width - len(p):] = 1

        # Under no_grad transformers neither checkpoints activations nor turns the KV cache off, so a model
        # training with gradient checkpointing needs nothing paused here.
        return self._run(model, ids, mask, repeats, order, sampling, generator, device)

    def _run(self, model, ids, mask, repeats, order, sampling, generator, device) -> Rollout:
        max_new = sampling.max_new_tokens
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        prefill_cache = new_cache(model)
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1,
                    **cache_kwargs(model, prefill_cache))
        prefill_tokens = int(mask.sum())
        logits = out.logits[:, -1].repeat_interleave(repeats, dim=0)
        mask = mask.repeat_interleave(repeats, dim=0)
        sequences = ids.repeat_interleave(repeats, dim=0)
        next_pos = positions[:, -1].repeat_interleave(repeats, dim=0) + 1
        batch = logits.size(0)
        if self.static_cache:
            cache = self._static(model, prefill_cache, repeats, batch, ids.size(1) + max_new)
            # The whole cache's length at once (the positions not yet decoded are hidden by the causal mask): a
            # mask one token longer at each step would be a new shape, and a new compilation, at every token.
            mask = torch.cat([mask, mask.new_ones((batch, max_new))], dim=1)
        else:
            cache = repeat_rows(prefill_cache, repeats)

        rows = torch.arange(batch, device=device)  # which output row each batch row is
        tokens_out = torch.full((batch, max_new), -1, dtype=torch.long, device=device)
        logps_out = torch.zeros((batch, max_new), dtype=torch.float32, device=device)
        lengths = torch.full((batch,), max_new, dtype=torch.long, device=device)
        stops = torch.tensor(sampling.stop_token_ids, dtype=torch.long, device=device)
        decode_tokens = 0
        for t in range(max_new):
            token, logp = sampling.sample(logits, sequences, t, generator, rows, batch)
            tokens_out[rows, t] = token
            logps_out[rows, t] = logp
            done = torch.isin(token, stops)
            lengths[rows[done]] = t + 1
            if t + 1 == max_new:
                break
            live = ~done
            if not live.any():
                break
            if not live.all() and self._should_compact(int(live.sum()), token.size(0)):
                keep = live.nonzero().squeeze(1)
                rows, token, mask, sequences, next_pos = (x[keep] for x in (rows, token, mask, sequences, next_pos))
                cache = self._select(cache, keep)
            if not self.static_cache:
                mask = torch.cat([mask, mask.new_ones((mask.size(0), 1))], dim=1)
            if sampling.repetition_penalty != 1.0:  # the only processor that reads the tokens so far
                sequences = torch.cat([sequences, token.unsqueeze(1)], dim=1)
            decode_tokens += token.size(0)
            logits = self._step(model, token.unsqueeze(1), mask, next_pos.unsqueeze(1), cache)
            next_pos = next_pos + 1

        inverse = torch.empty_like(torch.tensor(order))
        inverse[torch.tensor(order)] = torch.arange(len(order))
        tokens_out, logps_out, lengths = tokens_out.cpu(), logps_out.cpu(), lengths.cpu()
        completion_ids = [tokens_out[r, :lengths[r]].tolist() for r in inverse.tolist()]
        logprobs = [logps_out[r, :lengths[r]].tolist() for r in inverse.tolist()]
        return Rollout(completion_ids, logprobs, prefill_tokens, decode_tokens)

    def _should_compact(self, live: int, batch: int) -> bool:
        """Whether to drop finished rows now: at once with a growing cache (dropping is a cheap gather), with a
        static one only when at most half the rows still decode (each new batch size is a new graph)."""
        return not self.static_cache or live <= batch // 2

    def _step(self, model, token, mask, positions, cache) -> torch.Tensor:
        if self.compile and self._decode is None:
            # One static graph per batch size (a full batch, then halves as rows finish: a handful), not a graph
            # generalised over sizes, which compiles slower and runs slower.
            self._decode = torch.compile(_decode_step, mode="reduce-overhead", fullgraph=False, dynamic=False)
        step = self._decode if self.compile else _decode_step
        return step(model, token, mask, positions, cache_kwargs(model, cache))

    def _select(self, cache: Any, keep: torch.Tensor) -> Any:
        """``cache`` with only the rows ``keep``. The static cache kept for the next rollout is left whole: the
        smaller one is a copy."""
        if self.static_cache:
            cache = copy.copy(cache)
            cache.layers = [copy.copy(layer) for layer in cache.layers]
        for layer in cache.layers:
            layer.keys = layer.keys.index_select(0, keep)
            layer.values = layer.values.index_select(0, keep)
            if self.static_cache:
                layer.batch_size = layer.keys.size(0)
                layer.cumulative_length = layer.cumulative_length.clone()
        return cache

    def _static(self, model, prefill, repeats, batch, length) -> Any:
        """The static cache for ``batch`` rows of up to ``length`` tokens, holding the prefilled prompts repeated
        per group; kept and reset between rollouts while it is large enough."""
        from transformers import StaticCache

        cache, shape = self._cache, (batch, length)
        if cache is None or self._cache_shape != shape:
            cache = self._cache = StaticCache(config=base_model(model).config, max_cache_len=length)
            self._cache_shape = shape
        else:
            cache.reset()
        for i, layer in enumerate(prefill.layers):
            cache.update(layer.keys.repeat_interleave(repeats, dim=0),
                         layer.values.repeat_interleave(repeats, dim=0), i)
        return cache


def _decode_step(model, token, mask, positions, cache: dict[str, Any]) -> torch.Tensor:
    return model(input_ids=token, attention_mask=mask, position_ids=positions, use_cache=True, **cache).logits[:, -1]
