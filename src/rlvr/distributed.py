"""The few collective operations the pipeline needs when a launcher (``torchrun``, ``accelerate launch``) starts
one process per device: who is rank 0, waiting for each other, agreeing on a value, gathering results.

Without a launcher (``WORLD_SIZE`` unset or 1) every function is the single-process identity, so the pipeline's
code has one path. The training itself is distributed by the Trainer (accelerate: DDP, FSDP, DeepSpeed), which
finds the process group this module started and uses it; on CPU, where accelerate would not shard, it finds the
accelerate state this module set up (:func:`trainer_arguments`).
"""

from __future__ import annotations

import os
from typing import Any

_sharding: dict[str, Any] = {}  # on CPU: what accelerate launch asked for and its plugin (see trainer_arguments)


def launched() -> bool:
    """Whether a launcher started several processes (``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def under_launcher() -> bool:
    """Whether ``torchrun`` or ``accelerate launch`` started this process, one process included (they set the
    rendezvous variables)."""
    return all(key in os.environ for key in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def sharding() -> str | None:
    """How ``accelerate launch`` was told to distribute the training (launch/*.yaml): ``fsdp``, ``zero2``,
    ``zero3`` (``zero1``, ...), or None (DDP, torchrun, one process): from the environment the launcher set (on
    CPU, as it was before :func:`trainer_arguments` changed it)."""
    if "kind" in _sharding:
        return _sharding["kind"]
    env = os.environ
    if env.get("ACCELERATE_USE_FSDP", "").lower() == "true":
        return "fsdp"
    if env.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true":
        return f"zero{env.get('ACCELERATE_DEEPSPEED_ZERO_STAGE', '2')}"
    return None


def trainer_arguments() -> dict[str, Any]:
    """Training arguments every Trainer of this process needs: ``{}``, except on CPU under ``accelerate launch``
    with an FSDP or DeepSpeed config.

    accelerate turns FSDP and DeepSpeed on only for a GPU-class device: on CPU its state says MULTI_CPU and the
    Trainer trains with DDP, every rank holding the whole model, without a word (``launch/fsdp.yaml`` on two CPU
    processes wrote one unsharded ``model.safetensors`` per checkpoint). So on CPU this sets accelerate's shared
    state up as accelerate does on a GPU: over the gloo group :func:`init` started, with the FSDP or DeepSpeed
    plugin read from the environment that ``accelerate launch`` set from the config file, and the distributed type
    FSDP or DEEPSPEED; the Trainer then takes that state as it is (``accelerator_config.use_configured_state``).
    Everything after is accelerate's, torch's and DeepSpeed's own code: ``fully_shard`` over a CPU device mesh
    (FSDP2), ZeRO partitioning (DeepSpeed's CPU accelerator, gloo), sharded checkpoints, the gathered weights.
    Called before each Trainer is built (a Trainer built without it resets accelerate's state)."""
    kind = sharding()
    if kind is None or not _active():
        return {}
    import torch

    if torch.cuda.is_available():
        return {}  # accelerate sets FSDP and DeepSpeed up itself
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, PartialState
    from accelerate.utils import DeepSpeedPlugin, DistributedType, FullyShardedDataParallelPlugin

    _sharding["kind"] = kind
    wanted = DistributedType.FSDP if kind == "fsdp" else DistributedType.DEEPSPEED
    if AcceleratorState._shared_state.get("distributed_type") != wanted:
        state = Accelerator(cpu=True).state  # MULTI_CPU over the gloo group, then turned into what was asked for
        if kind == "fsdp":
            state.fsdp_plugin = FullyShardedDataParallelPlugin()  # from the environment, as accelerate reads it
        state.distributed_type = PartialState().distributed_type = wanted
    if kind != "fsdp":
        # A fresh plugin for each Trainer, as on a GPU (a Trainer fills the plugin's config with its own batch size
        # and steps, so a second stage cannot reuse the first one's)...
        plugin = DeepSpeedPlugin()
        plugin.set_mixed_precision("no")  # the model's dtype is the precision (launch/*.yaml: mixed_precision no)
        plugin.select(_from_accelerator_state=True)
        AcceleratorState().deepspeed_plugins = plugin
        # ...given through the state: training arguments would build a second one from this variable (which each
        # Accelerator sets again), and accelerate refuses a second plugin over a configured state.
        os.environ["ACCELERATE_USE_DEEPSPEED"] = "false"
    return {"accelerator_config": {"use_configured_state": True}}


def _active() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def init() -> bool:
    """Join the launcher's process group (gloo on CPU, nccl on GPU) if there is one; True when this call started
    it. Each process uses the GPU of its local rank.

    Also with one process: under a launcher, the first ``TrainingArguments`` built with ``use_cpu=True`` (settings
    are checked on CPU, before any model loads) starts a gloo group of its own, and on a GPU the Trainer after it,
    told the backend is nccl, gathers with NCCL's collectives over that gloo group and fails (``ProcessGroupGloo::
    allgather: invalid tensor size``; seen on an H200 with ``accelerate launch --config_file launch/fsdp.yaml
    --num_processes 1``, 2026-12-04). The group started here first is the one on the right backend."""
    if not under_launcher() or _active():
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
