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


def shared_prefix(trainer_cls: type) -> type:
    """``trainer_cls`` (TRL's GRPOTrainer or a subclass) scoring each micro-batch's repeated prompts once."""

    class SharedPrefix(trainer_cls):  # type: ignore[misc, valid-type]
        def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep,
                                               batch_size=None, compute_entropy=False, compute_aux_loss=False,
                                               **multimodal):
            if (any(v is not None for v in multimodal.values()) or compute_aux_loss or
                    self.accelerator.num_processes > 1 or _checkpointing(model) or
                    self.is_fsdp_enabled or self.is_deepspeed_enabled):
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
