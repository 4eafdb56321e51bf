"""What a benchmark model entry points at, and how to load it with the training pipeline's own model component.

An entry is a hub id, ``embedded://...``, a local checkpoint, or a run directory written by
``run_pipeline.py`` (``config.yaml`` + ``model/``). Inside a run (or any local directory) an
``adapter_config.json`` means a LoRA adapter: its base is loaded with :class:`~rlvr.model.HFModel`, the adapter
applied and merged; otherwise the directory holds full weights.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ModelSource:
    """A resolved benchmark model: what to load as the base, and the LoRA adapter to apply, if any."""

    spec: str  # as the user wrote it
    label: str  # short name for tables and file names
    kind: str  # hub | local | run | lora | run-lora
    base: str  # name_or_path for HFModel
    adapter: str | None = None
    run_config: str | None = None  # the run's config.yaml, for its prompt


def resolve_model(spec: str, label: str | None = None) -> ModelSource:
    """Classify ``spec`` by looking at the file system only (nothing is loaded)."""
    path = Path(spec).expanduser()
    if not path.is_dir():
        return ModelSource(spec, label or _label(spec), "hub", spec)
    run_config = path / "config.yaml"
    is_run = (path / "model").is_dir() and run_config.exists()
    weights = path / "model" if is_run else path
    run_cfg = str(run_config) if is_run else None
    # Hydra names runs outputs/<date>/<time>: a bare time is no name, so keep the date with it.
    name = f"{path.parent.name}_{path.name}" if re.fullmatch(r"[\d_:-]+", path.name) else path.name
    if (weights / "adapter_config.json").exists():
        base = _adapter_base(weights, run_cfg)
        return ModelSource(spec, label or _label(name), "run-lora" if is_run else "lora", base, str(weights), run_cfg)
    return ModelSource(spec, label or _label(name), "run" if is_run else "local", str(weights), None, run_cfg)


def _adapter_base(adapter_dir: Path, run_config: str | None) -> str:
    """The run's own ``model.name_or_path`` (e.g. ``embedded://...``), else the adapter's recorded base."""
    if run_config:
        from omegaconf import OmegaConf

        name = OmegaConf.select(OmegaConf.load(run_config), "model.name_or_path")
        if name:
            return str(name)
    base = json.loads((adapter_dir / "adapter_config.json").read_text()).get("base_model_name_or_path")
    if not base:
        raise ValueError(f"{adapter_dir}/adapter_config.json names no base_model_name_or_path.")
    return base


def _label(text: str) -> str:
    text = text.split("://", 1)[-1]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text.replace("/", "--")).strip("_") or "model"


def unique_labels(sources: list[ModelSource]) -> list[ModelSource]:
    """Suffix repeated labels (two runs both named ``model``) with their position."""
    from collections import Counter
    from dataclasses import replace

    counts = Counter(s.label for s in sources)
    return [replace(s, label=f"{s.label}-{i}") if counts[s.label] > 1 else s for i, s in enumerate(sources)]


def load_model(source: ModelSource, model_node: dict[str, Any], device: str) -> tuple[Any, Any]:
    """``(model, tokenizer)`` on ``device``, loaded by HFModel with ``model_node``'s settings (dtype, attention...)
    and LoRA training disabled; an adapter is merged into its base so generation runs at full speed."""
    from hydra.utils import instantiate

    node = {**model_node, "name_or_path": source.base, "lora": {**model_node.get("lora", {}), "enabled": False}}
    model, tokenizer = instantiate(node, _convert_="object").load()
    quantized = getattr(model, "is_quantized", False)
    if source.adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, source.adapter)
        if not quantized:
            model = model.merge_and_unload()
    if not quantized:  # bitsandbytes places quantized weights itself
        model.to(device)
    model.eval()
    return model, tokenizer
