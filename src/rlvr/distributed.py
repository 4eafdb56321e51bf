"""The few collective operations the pipeline needs when a launcher (``torchrun``, ``accelerate launch``) starts
one process per device: who is rank 0, waiting for each other, agreeing on a value, gathering results.

Without a launcher (``WORLD_SIZE`` unset or 1) every function is the single-process identity, so the pipeline's
code has one path. The training itself is distributed by the Trainer (accelerate: DDP, FSDP, DeepSpeed), which
finds the process group this module started and uses it.
"""

from __future__ import annotations

import os
from typing import Any


def launched() -> bool:
    """Whether a launcher started several processes (``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def sharded_launch() -> bool:
    """Whether ``accelerate launch`` was told to split the weights across ranks (FSDP, or DeepSpeed ZeRO-3)."""
    env = os.environ
    return env.get("ACCELERATE_USE_FSDP", "").lower() == "true" or (
        env.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true" and env.get("ACCELERATE_DEEPSPEED_ZERO_STAGE") == "3")


def _active() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def init() -> bool:
    """Join the launcher's process group (gloo on CPU, nccl on GPU) if there is one; True when this call started
    it. Each process uses the GPU of its local rank."""
    if not launched() or _active():
        return False
    import torch
    import torch.distributed as dist

    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    return True


def shutdown() -> None:
    if _active():
        import torch.distributed as dist

        dist.destroy_process_group()


def world_size() -> int:
    if _active():
        import torch.distributed as dist

        return dist.get_world_size()
    return 1


def rank() -> int:
    if _active():
        import torch.distributed as dist

        return dist.get_rank()
    return 0


def is_main() -> bool:
    """Rank 0: the one process that writes the run directory and tells observers."""
    return rank() == 0


def barrier() -> None:
    if _active():
        import torch.distributed as dist

        dist.barrier()


def agree(value: Any) -> Any:
    """Rank 0's ``value``, on every rank."""
    if not _active():
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(value: Any) -> list[Any]:
    """Every rank's ``value``, in rank order, on every rank."""
    if not _active():
        return [value]
    import torch.distributed as dist

    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out
