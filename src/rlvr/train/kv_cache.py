"""KV-cache plumbing shared by the rollout engine and the shared-prefix training pass: the name a model takes its
cache under, and a cache's rows repeated per group (autograd follows the repeat) or selected."""

from __future__ import annotations

import functools
import inspect
from typing import Any

import torch


def base_model(model: Any) -> Any:
    """The transformers model under a PEFT wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def new_cache(model: Any) -> Any:
    """An empty growing (dynamic) KV cache for ``model``."""
    from transformers import DynamicCache

    return DynamicCache(config=base_model(model).config)


def cache_kwargs(model: Any, cache: Any) -> dict[str, Any]:
    """``cache`` as the keyword argument ``model``'s forward takes: ``cache`` since transformers 5.x (which warns
    on the old name), ``past_key_values`` before."""
    return {_cache_argument(type(base_model(model)).forward): cache}


@functools.cache
def _cache_argument(forward: Any) -> str:
    return "cache" if "cache" in inspect.signature(forward).parameters else "past_key_values"


def repeat_rows(cache: Any, counts: torch.Tensor) -> Any:
    """Each row of every layer of ``cache`` repeated ``counts[row]`` times, in place; returns ``cache``."""
    for layer in cache.layers:
        layer.keys = layer.keys.repeat_interleave(counts, dim=0)
        layer.values = layer.values.repeat_interleave(counts, dim=0)
    return cache
