"""The weights training changes (every parameter that requires a gradient: the whole model, or only the LoRA
adapter), kept in memory or on disk, and put back.

A multi-stage pipeline uses them twice: a stage's result is saved as ``weights.safetensors`` in its directory, so
a resumed run rebuilds the model of finished stages without training them again; and the model before a stage is
kept in memory, so a stage that the regression gate refuses is rolled back exactly (bit for bit).

Weights that training sharded across ranks (FSDP2's DTensors, DeepSpeed ZeRO-3's partitions) are gathered whole
and put back shard by shard, so under a launcher every rank must call these functions together.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from rlvr import distributed
from rlvr.errors import ConfigError
from rlvr.files import staged_file


def trainable_state(model: Any) -> dict[str, Any]:
    """A CPU copy of every parameter that requires a gradient (tied parameters once), by name; whole even where
    training sharded it (every rank gets all of it)."""
    _reshard(model)
    params = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    with _zero3_gathered([p for _, p in params]):
        return {name: _whole(p).detach().to("cpu", copy=True).contiguous() for name, p in params}


def restore(model: Any, state: dict[str, Any]) -> None:
    """Copy ``state`` (from :func:`trainable_state`) back into ``model`` in place; every trainable parameter must
    be in it, and nothing else. A sharded parameter takes its own shard of the whole tensor."""
    import torch

    _reshard(model)
    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    missing, unexpected = sorted(set(params) - set(state)), sorted(set(state) - set(params))
    if missing or unexpected:
        raise ConfigError(f"Saved weights do not fit this model ({len(missing)} trainable parameters missing, "
                          f"{len(unexpected)} unknown, e.g. {(missing or unexpected)[0]}): was the run's model or "
                          "LoRA setting changed?")
    with torch.no_grad(), _zero3_gathered(list(params.values()), modify=True):
        for name, p in params.items():
            value = state[name].to(p.device, p.dtype)
            if hasattr(p, "device_mesh"):  # an FSDP2 DTensor: every rank holds the whole value, keeps its shard
                from torch.distributed.tensor import distribute_tensor

                value = distribute_tensor(value, p.device_mesh, p.placements, src_data_rank=None)
            p.copy_(value)


def full_state_dict(model: Any) -> dict[str, Any] | None:
    """The model's whole state dict (on CPU) when training sharded its weights, for ``save_pretrained`` on rank 0;
    None when every rank holds them whole anyway (``save_pretrained`` of the model itself is right then)."""
    _reshard(model)
    params = list(model.parameters())
    if not any(hasattr(p, "device_mesh") or hasattr(p, "ds_id") for p in params):
        return None
    with _zero3_gathered(params):
        return {name: _whole(t).detach().to("cpu", copy=True) for name, t in model.state_dict().items()}


def save_weights(model: Any, path: str | Path) -> Path:
    """Write the trainable weights to ``path`` (safetensors) atomically (:func:`rlvr.files.staged_file`). Every
    rank calls it (sharded weights are gathered); rank 0 writes."""
    from safetensors.torch import save_file

    state = trainable_state(model)
    path = Path(path)
    if not distributed.is_main():
        return path
    with staged_file(path) as tmp:
        save_file(state, str(tmp))
    return path


def _reshard(model: Any) -> None:
    """FSDP2 leaves the root module's weights gathered after a forward pass, and its parameters are then those
    gathered copies, which the next reshard drops: reshard first, so that reads and writes reach the shards."""
    import torch

    if not torch.distributed.is_available() or not torch.distributed.is_initialized():
        return
    from torch.distributed.fsdp import FSDPModule

    for module in model.modules():
        if isinstance(module, FSDPModule):
            module.reshard()


def _whole(tensor: Any) -> Any:
    """The whole tensor of an FSDP2 shard (a DTensor; collective), else the tensor itself."""
    return tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor


def _zero3_gathered(params: list[Any], modify: bool = False) -> contextlib.AbstractContextManager:
    """Under DeepSpeed ZeRO-3, ``params`` whole on every rank inside the block (what rank 0 writes into them is
    partitioned again on leaving it, with ``modify``); otherwise nothing."""
    zero3 = [p for p in params if hasattr(p, "ds_id")]
    if not zero3:
        return contextlib.nullcontext()
    import deepspeed

    return deepspeed.zero.GatheredParameters(zero3, modifier_rank=0 if modify else None)


def load_weights(model: Any, path: str | Path) -> None:
    """Put the weights saved by :func:`save_weights` back into ``model``."""
    from safetensors.torch import load_file

    restore(model, load_file(str(path)))
