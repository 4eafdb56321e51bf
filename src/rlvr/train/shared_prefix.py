"""The training pass with each group's prompt computed once: the same log-probabilities and gradients as TRL's,
for a fraction of the compute.

TRL scores a GRPO batch by running every completion with its prompt through the model: a group of 16
completions of one prompt runs that prompt 16 times, forward and backward. In the default run the prompt is
most of each sequence, and on a CPU this pass, not generation, is most of the step. Here the prompt (all but its
last token) of each distinct prompt in a micro-batch runs once, with gradients; its KV cache is repeated across
the group (``repeat_interleave``, so the gradients of the group's completions flow back into the one prompt
pass and add up there, as they add up over the copies in TRL's pass); and the completions run on top of it.
The positions and the attention mask are TRL's (positions 0..n over the padded row), and the log-probabilities
come from TRL's own fused LM head (``fused_lm_head=True``, with the labels already shifted), so the per-token
log-probabilities, entropies and gradients equal TRL's up to float rounding; the tests check both.

Rows with no gradient are not run at all. A completion whose advantage is zero (every completion of its group
got the same reward: a "flat" group) adds nothing to the loss or to the gradient when the loss is the advantage
times a function of that completion alone, which it is for every TRL loss type without a KL term (``beta`` 0), an
entropy mask or bonus, an off-policy mask or an auxiliary loss. Such rows get the log-probabilities they were
sampled with (a ratio of 1) instead of a forward pass; the loss, its normaliser (the count of every completion's
tokens) and the gradients are the same as with every row run. A flat group's prompt does not run either. In the
default run most groups late in training are flat, and the pass is most of a step on a CPU. The metric
``train_pass/scored_fraction`` is the fraction of rows that ran; ``entropy`` is the mean over those rows (none ran:
NaN).

Where it does not apply, TRL's own pass runs: gradient checkpointing (which drops the KV cache), images or token
type ids, several processes (DDP expects one forward per backward), weights sharded by FSDP or DeepSpeed, one
process included (a LoRA model under FSDP2 on one process failed in the backward pass: the prompt pass's
weights were resharded before it), micro-batches with no repeated prompt.
"""

from __future__ import annotations

from typing import Any

import torch

from rlvr.train.kv_cache import base_model, cache_kwargs, new_cache, repeat_rows
from rlvr.train.trl_bridge import is_checkpointing

# TRL's multimodal inputs to the scoring pass: with any of them, TRL's own pass runs.
MULTIMODAL = ("pixel_values", "image_grid_thw", "num_images", "pixel_attention_mask", "spatial_shapes", "num_tiles",
              "image_sizes", "token_type_ids", "mm_token_type_ids", "image_position_ids")


def shared_prefix(trainer_cls: type) -> type:
    """``trainer_cls`` (TRL's GRPOTrainer or a subclass) scoring each micro-batch's repeated prompts once."""

    class SharedPrefix(trainer_cls):  # type: ignore[misc, valid-type]
        _rows_scored: torch.Tensor | None = None  # set for one loss computation: the rows with a gradient
        _rows_fill: torch.Tensor | None = None  # the log-probabilities the other rows keep

        def _compute_loss(self, model, inputs):
            live = self._rows_with_gradient(inputs)
            if live is not None:
                mode = "train" if self.model.training else "eval"
                self._metrics[mode]["train_pass/scored_fraction"].append(live.float().mean().item())
            if live is None or bool(live.all()):
                return super()._compute_loss(model, inputs)
            self._rows_scored, self._rows_fill = live, inputs.get("old_per_token_logps")
            try:
                return super()._compute_loss(model, inputs)
            finally:
                self._rows_scored = self._rows_fill = None

        def _rows_with_gradient(self, inputs) -> torch.Tensor | None:
            """The rows whose advantage is not zero, where the others provably add nothing to the loss and its
            gradient (the module's docstring); None where every row must run."""
            if (self.beta != 0.0 or self.top_entropy_quantile < 1.0 or getattr(self, "_entropy_bonus_enabled", False)
                    or getattr(self, "off_policy_mask_threshold", None) is not None or self.aux_loss_enabled
                    or self._trls_pass_only(inputs)):
                return None
            advantages = inputs["advantages"]
            return advantages != 0 if advantages.dim() == 1 else (advantages != 0).any(dim=1)

        def _trls_pass_only(self, multimodal) -> bool:
            """Whether only TRL's pass may score: images or token type ids, several processes (DDP expects one
            forward per backward, on every rank), weights sharded by FSDP or DeepSpeed."""
            return (any(multimodal.get(k) is not None for k in MULTIMODAL) or self.accelerator.num_processes > 1
                    or self.is_fsdp_enabled or self.is_deepspeed_enabled)

        def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep,
                                               batch_size=None, compute_entropy=False, compute_aux_loss=False,
                                               **multimodal):
            live = self._rows_scored
            if live is not None and live.size(0) == input_ids.size(0):
                return self._score_rows_with_gradient(model, input_ids, attention_mask, logits_to_keep, batch_size,
                                                      compute_entropy, live)
            if (any(v is not None for v in multimodal.values()) or compute_aux_loss or
                    self._trls_pass_only(multimodal) or _checkpointing(model)):
                return super()._get_per_token_logps_and_entropies(
                    model, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy,
                    compute_aux_loss, **multimodal)
            batch_size = batch_size or input_ids.size(0)
            logps, entropies = [], []
            for start in range(0, input_ids.size(0), batch_size):
                chunk = slice(start, start + batch_size)
                with self.accelerator.autocast():
                    out = score(model, input_ids[chunk], attention_mask[chunk], logits_to_keep)
                if out is None:  # no prompt repeats in this chunk: nothing to share
                    lp, ent, _ = super()._get_per_token_logps_and_entropies(
                        model, input_ids[chunk], attention_mask[chunk], logits_to_keep, None, compute_entropy)
                else:
                    lp, ent = out.log_probs, out.entropy
                logps.append(lp)
                entropies.append(ent)
            return torch.cat(logps), (torch.cat(entropies) if compute_entropy else None), None

        def _score_rows_with_gradient(self, model, input_ids, attention_mask, logits_to_keep, batch_size,
                                      compute_entropy, live):
            """Every row's log-probabilities (and entropies) with only the ``live`` rows run through the model."""
            rows = live.nonzero().squeeze(1)
            fill = self._rows_fill
            logps = (fill.detach().clone() if fill is not None else
                     torch.zeros(input_ids.size(0), logits_to_keep, device=input_ids.device))
            entropies = torch.full_like(logps, float("nan")) if compute_entropy else None
            if rows.numel() == 0:
                # Nothing to run; every trainable weight still gets its (zero) gradient, as with every row run, so
                # the optimizer steps exactly as it would.
                anchor = sum(p.sum() for p in model.parameters() if p.requires_grad)
                return logps + 0.0 * anchor, entropies, None
            self._rows_scored = None  # the rows below are all live: score them as any micro-batch
            try:
                lp, ent, _ = self._get_per_token_logps_and_entropies(
                    model, input_ids[rows], attention_mask[rows], logits_to_keep, batch_size, compute_entropy)
            finally:
                self._rows_scored = live
            logps = logps.to(lp.dtype).index_copy(0, rows, lp)
            if compute_entropy:
                # The other rows get the scored rows' mean, so TRL's token mean of the entropy is theirs.
                mask = attention_mask[rows, -logits_to_keep:].to(ent.dtype)
                mean = (ent.detach() * mask).sum() / mask.sum().clamp(min=1.0)
                entropies = torch.full_like(logps, mean.item()).index_copy(0, rows, ent)
            return logps, entropies, None

    SharedPrefix.__name__ = SharedPrefix.__qualname__ = trainer_cls.__name__
    return SharedPrefix


def score(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, completion_len: int) -> Any:
    """TRL's fused-head output (``log_probs``, ``entropy``: rows x ``completion_len``) for the completion tokens
    of ``input_ids`` (left-padded prompt, then completion), each distinct prompt run once; None when no prompt
    repeats (or the prompt is a single token)."""
    prompt_len = input_ids.size(1) - completion_len
    if prompt_len < 2:
        return None
    prefix = prompt_len - 1  # the prompt's last token runs with the completion: its output scores token 0
    keys = torch.cat([input_ids[:, :prefix], attention_mask[:, :prefix]], dim=1)
    distinct, counts = torch.unique_consecutive(keys, dim=0, return_counts=True)  # a group's rows are adjacent
    if distinct.size(0) == input_ids.size(0):
        return None
    first = torch.cat([counts.new_zeros(1), counts.cumsum(0)[:-1]])
    cache = new_cache(model)
    model(input_ids=input_ids[first, :prefix], attention_mask=attention_mask[first, :prefix], use_cache=True,
          logits_to_keep=1, **cache_kwargs(model, cache))
    repeat_rows(cache, counts)
    labels = input_ids[:, prompt_len:].masked_fill(attention_mask[:, prompt_len:] == 0, -100)
    return model(input_ids=input_ids[:, prefix:-1], attention_mask=attention_mask[:, :-1], shift_labels=labels,
                 fused_lm_head=True, **cache_kwargs(model, cache))


def _checkpointing(model: Any) -> bool:
    return is_checkpointing(base_model(model))
