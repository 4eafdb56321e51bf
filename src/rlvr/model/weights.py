"""The weights training changes (every parameter that requires a gradient: the whole model, or only the LoRA
adapter), kept in memory or on disk, and put back.

A multi-stage pipeline uses them twice: a stage's result is saved as ``weights.safetensors`` in its directory, so
a resumed run rebuilds the model of finished stages without training them again; and the model before a stage is
kept in memory, so a stage that the regression gate refuses is rolled back exactly (bit for bit).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlvr.errors import ConfigError
from rlvr.files import staged_file


def trainable_state(model: Any) -> dict[str, Any]:
    """A CPU copy of every parameter that requires a gradient (tied parameters once), by name."""
    return {name: p.detach().to("cpu", copy=True).contiguous()
            for name, p in model.named_parameters() if p.requires_grad}


def restore(model: Any, state: dict[str, Any]) -> None:
    """Copy ``state`` (from :func:`trainable_state`) back into ``model`` in place; every trainable parameter must
    be in it, and nothing else."""
    import torch

    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    missing, unexpected = sorted(set(params) - set(state)), sorted(set(state) - set(params))
    if missing or unexpected:
        raise ConfigError(f"Saved weights do not fit this model ({len(missing)} trainable parameters missing, "
                          f"{len(unexpected)} unknown, e.g. {(missing or unexpected)[0]}): was the run's model or "
                          "LoRA setting changed?")
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(state[name].to(p.device, p.dtype))


def save_weights(model: Any, path: str | Path) -> Path:
    """Write the trainable weights to ``path`` (safetensors) atomically (:func:`rlvr.files.staged_file`)."""
    from safetensors.torch import save_file

    path = Path(path)
    with staged_file(path) as tmp:
        save_file(trainable_state(model), str(tmp))
    return path


def load_weights(model: Any, path: str | Path) -> None:
    """Put the weights saved by :func:`save_weights` back into ``model``."""
    from safetensors.torch import load_file

    restore(model, load_file(str(path)))
