"""Any Hugging Face causal LM as the policy: hub id, local checkpoint, ``embedded://`` or a run directory (its
trained ``model/``, a LoRA adapter merged into its base), dtype, LoRA (PEFT), 4/8-bit (bitsandbytes, on a CUDA GPU
or on CPU) and gradient checkpointing."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from omegaconf import OmegaConf

from rlvr.errors import ConfigError
from rlvr.interfaces import AtLeastOne, Range
from rlvr.model import embedded
from rlvr.schema import checked

log = logging.getLogger(__name__)


@dataclass
class LoraSettings:
    """LoRA through PEFT. ``enabled: false`` trains all weights."""

    enabled: bool = False
    r: AtLeastOne = 16
    alpha: AtLeastOne = 32
    dropout: Annotated[float, Range(ge=0, lt=1)] = 0.0
    # "all-linear" or a list of module names such as [q_proj, v_proj]
    target_modules: str | list[str] = "all-linear"


@dataclass
class QuantSettings:
    """Load the frozen base in 4 or 8 bits with bitsandbytes (``pip install "rlvr[quant]"``; pair it with LoRA).
    Runs on a CUDA GPU and, slowly, on CPU (bitsandbytes' CPU backend: a smoke run, not a training setup). The
    4-bit weights are de-quantised to ``model.dtype`` for each matrix product (bf16 compute is QLoRA's usual
    choice: ``model.dtype=bfloat16``)."""

    load_in_4bit: bool = False
    load_in_8bit: bool = False
    # 4-bit data type: nf4 (QLoRA's NormalFloat) or fp4
    quant_type: Literal["nf4", "fp4"] = "nf4"


@checked("model")
class HFModel:
    """Loads the policy model and tokenizer.

    Args:
        name_or_path: hub id, local directory, ``embedded://smollm2-135m-instruct``, or a run directory
            (``config.yaml`` + ``model/``, see :func:`locate`).
        dtype: ``auto`` picks bfloat16 on a GPU that supports it, else float32.
        lora: LoRA settings (``model.lora.enabled=true model.lora.r=16``).
        quant: 4/8-bit loading of the base weights.
        gradient_checkpointing: trade compute for memory during the policy update.
        attn_implementation: e.g. ``sdpa``, ``flash_attention_2``; null lets transformers choose.
        trust_remote_code: allow model code from the hub.
        revision: hub revision.
    """

    def __init__(
        self,
        name_or_path: str,
        dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto",
        lora: LoraSettings = LoraSettings(),  # noqa: B008 - copied into the schema
        quant: QuantSettings = QuantSettings(),  # noqa: B008
        gradient_checkpointing: bool = False,
        attn_implementation: str | None = None,
        trust_remote_code: bool = False,
        revision: str | None = None,
    ):
        if not name_or_path:
            raise ConfigError("model.name_or_path must be set (a hub id, a local directory or embedded://...).")
        # From a config the nested settings arrive as plain dicts; from Python, as the dataclasses.
        self.lora = lora if isinstance(lora, LoraSettings) else LoraSettings(**lora)
        self.quant = quant if isinstance(quant, QuantSettings) else QuantSettings(**quant)
        self.name_or_path, self.dtype = name_or_path, dtype
        self.gradient_checkpointing = gradient_checkpointing
        self.attn_implementation, self.trust_remote_code = attn_implementation, trust_remote_code
        self.revision = revision
        if self.quant.load_in_4bit and self.quant.load_in_8bit:
            raise ConfigError("model.quant.load_in_4bit and model.quant.load_in_8bit are exclusive: pick one.")
        if self.quant.load_in_4bit or self.quant.load_in_8bit:
            import importlib.util

            if importlib.util.find_spec("bitsandbytes") is None:
                raise ConfigError('model.quant: 4-bit/8-bit loading needs bitsandbytes, which is not installed: '
                                  'pip install "rlvr[quant]".')
            if not self.lora.enabled:
                raise ConfigError("A 4/8-bit base cannot be trained directly: set model.lora.enabled=true.")

    def torch_dtype(self) -> Any:
        import torch

        if self.dtype != "auto":
            return getattr(torch, self.dtype)
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32

    def source(self) -> Checkpoint:
        """Where the weights and the tokenizer are (:func:`locate`); a hub id that cannot load fails here."""
        source = locate(self.name_or_path)
        if not Path(source.weights).exists():
            check_hub_id(source.weights, self.revision)
        return source

    def load_tokenizer(self, source: Checkpoint | None = None) -> Any:
        """The tokenizer alone (of ``source``, else of :meth:`source`), padding on the left (batched generation),
        with a pad token."""
        from transformers import AutoTokenizer

        where = (source or self.source()).tokenizer
        tokenizer = AutoTokenizer.from_pretrained(where, trust_remote_code=self.trust_remote_code,
                                                  revision=self.revision)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer

    def load_config(self) -> Any:
        """The model's ``transformers`` config alone (its shapes; no weights are read)."""
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(self.source().weights, trust_remote_code=self.trust_remote_code,
                                          revision=self.revision)

    def load(self) -> tuple[Any, Any]:
        """``(model, tokenizer)``: tokenizer pads on the left (batched generation); a run's LoRA adapter merged
        into its base (:func:`locate`); a new LoRA applied if enabled; on the GPU when one is visible."""
        import torch
        from transformers import AutoModelForCausalLM

        source = self.source()
        common = {"trust_remote_code": self.trust_remote_code, "revision": self.revision}
        tokenizer = self.load_tokenizer(source)
        kwargs: dict[str, Any] = {"dtype": self.torch_dtype(), **common}
        if self.attn_implementation:
            kwargs["attn_implementation"] = self.attn_implementation
        quantized = self.quant.load_in_4bit or self.quant.load_in_8bit
        if quantized:
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=self.quant.load_in_4bit,
                load_in_8bit=self.quant.load_in_8bit,
                bnb_4bit_quant_type=self.quant.quant_type,
                bnb_4bit_compute_dtype=kwargs["dtype"],
            )
        model = AutoModelForCausalLM.from_pretrained(source.weights, **kwargs)
        if quantized and not torch.cuda.is_available():
            keep_cpu_layout_trainable(model)
        if source.adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, source.adapter)
            if not quantized:  # merged: a plain model again, generating at full speed (4/8-bit weights cannot merge)
                model = model.merge_and_unload()
        if torch.cuda.is_available() and not quantized:  # bitsandbytes places quantized weights itself
            # An evaluation-only run has no trainer to move the model; under a launcher each process has its rank.
            model.to(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
        if model.generation_config.pad_token_id is None:
            model.generation_config.pad_token_id = tokenizer.pad_token_id
        if self.gradient_checkpointing:
            # transformers 5 renamed gradient checkpointing to activation checkpointing (the old name warns).
            enable = getattr(model, "activation_checkpointing_enable", None)
            if enable is not None:
                enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            model.config.use_cache = False
        if self.lora.enabled:
            model = self.apply_lora(model)
        trainable, total = count_parameters(model)
        log.info("Model %s: %s/%s parameters trainable", self.name_or_path, f"{trainable:,}", f"{total:,}")
        return model, tokenizer

    def apply_lora(self, model: Any) -> Any:
        from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

        if self.quant.load_in_4bit or self.quant.load_in_8bit:
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=self.gradient_checkpointing)
        target = self.lora.target_modules
        config = LoraConfig(
            r=self.lora.r,
            lora_alpha=self.lora.alpha,
            lora_dropout=self.lora.dropout,
            target_modules=target if isinstance(target, str) else list(target),
            task_type="CAUSAL_LM",
        )
        return get_peft_model(model, config)

    def save(self, model: Any, tokenizer: Any, path: str, state_dict: dict[str, Any] | None = None) -> str:
        """Adapter only for LoRA (load with ``peft.AutoPeftModelForCausalLM``), else full weights; ``state_dict``:
        the full weights when the model's own are sharded across ranks (FSDP, ZeRO-3)."""
        model.save_pretrained(path, state_dict=state_dict)
        tokenizer.save_pretrained(path)
        return path


def keep_cpu_layout_trainable(model: Any) -> None:
    """Keep bitsandbytes' 4-bit layers differentiable on CPU. On a CPU with AVX512-BF16, bitsandbytes 0.50
    repacks a 4-bit layer's weights the first time it runs in eval mode without gradients (an evaluation, a
    rollout) into a layout whose kernel has no backward; every later training step then silently drops the
    gradient through the frozen 4-bit layers (LoRA adapters below them learn from a wrong gradient; torch only
    warns; on layers of fewer than 64 inputs the repacking fails outright). Measured on a 2-layer test model: one
    evaluation put the adapters' gradients off by 81% of their largest value. Turning the repacking off keeps one
    layout (de-quantise, then a plain matrix product) for training and generation alike, so both also compute the
    same log-probabilities (tests/unit/model/test_quantized.py, tests/unit/train/test_rollout.py)."""
    from bitsandbytes.nn import Linear4bit

    for module in model.modules():
        if isinstance(module, Linear4bit):
            module.support_avx512bf16_for_cpu = False


def count_parameters(model: Any) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


@dataclass(frozen=True)
class Checkpoint:
    """What :meth:`HFModel.load` reads for a ``name_or_path``: the weights (a hub id or a local directory), the
    LoRA adapter to merge into them (None: none), and where the tokenizer is."""

    weights: str
    tokenizer: str
    adapter: str | None = None


def run_config(path: str | Path) -> Path | None:
    """The ``config.yaml`` of a run directory (one that holds ``config.yaml`` and ``model/``), else None."""
    path = Path(path).expanduser()
    return path / "config.yaml" if (path / "config.yaml").is_file() and (path / "model").is_dir() else None


def locate(name_or_path: str) -> Checkpoint:
    """Where the weights of ``name_or_path`` are; looks at the file system only (``embedded://`` is converted
    once, see :mod:`rlvr.model.embedded`).

    A run directory's weights are its ``model/``. A directory with ``adapter_config.json`` (a run trained with
    LoRA saves only the adapter) is loaded on its base: the run's own ``model.name_or_path`` from its
    ``config.yaml``, else the adapter's ``base_model_name_or_path``. Anything else is passed to transformers
    as it is (a hub id, a local checkpoint); a local path that does not exist raises a ConfigError.
    """
    if embedded.is_embedded(name_or_path):
        path = embedded.resolve(name_or_path)
        return Checkpoint(path, path)
    if name_or_path.startswith(("/", "./", "../", "~")) and not Path(name_or_path).expanduser().exists():
        raise ConfigError(f"model.name_or_path={name_or_path}: no such directory (a local checkpoint or run "
                          "directory; a hub id has the form org/name).")
    config = run_config(name_or_path)
    weights = Path(name_or_path).expanduser() / "model" if config else Path(name_or_path).expanduser()
    if not (weights / "adapter_config.json").is_file():
        where = str(weights) if config else name_or_path
        return Checkpoint(where, where)
    base = locate(adapter_base(weights, config))
    if base.adapter:
        raise ConfigError(f"{name_or_path}: its base model {base.weights} is itself a LoRA adapter; merge that "
                          "one first (one adapter at a time).")
    tokenizer = str(weights) if (weights / "tokenizer_config.json").is_file() else base.tokenizer
    return Checkpoint(base.weights, tokenizer, str(weights))


def check_hub_id(repo_id: str, revision: str | None = None, timeout_s: float = 2.0) -> None:
    """Fail in seconds, with one line, for a hub id that cannot load: not in the local cache and the hub
    unreachable (offline: HF_HUB_OFFLINE=1, or no answer within ``timeout_s``), or no such model on the hub.
    transformers would retry for close to a minute and end in a traceback."""
    import huggingface_hub
    import requests
    from huggingface_hub import constants

    if isinstance(huggingface_hub.try_to_load_from_cache(repo_id, "config.json", revision=revision), str):
        return  # downloaded before: transformers loads it from the cache
    where = f"model.name_or_path={repo_id}"
    if constants.HF_HUB_OFFLINE:
        raise ConfigError(f"{where}: not in the local Hugging Face cache and HF_HUB_OFFLINE is set; download it "
                          "first, or give a local directory or embedded://smollm2-135m-instruct.")
    token = huggingface_hub.get_token()
    try:
        answer = requests.head(f"{constants.ENDPOINT}/api/models/{repo_id}", timeout=timeout_s, allow_redirects=True,
                               headers={"authorization": f"Bearer {token}"} if token else {})
    except requests.RequestException:
        raise ConfigError(f"{where}: not in the local Hugging Face cache, and the hub did not answer within "
                          f"{timeout_s:g} s (offline?); give a local directory or embedded://smollm2-135m-instruct.") \
            from None
    if answer.status_code in (401, 403, 404):
        raise ConfigError(f"{where}: no such model on the hub (or a gated/private one: set HF_TOKEN); check the "
                          "id, which has the form org/name.")


def adapter_base(adapter_dir: Path, run_config: Path | None = None) -> str:
    """The base model of a LoRA adapter: the run's ``model.name_or_path`` (``embedded://...`` stays as the run
    named it), else the ``base_model_name_or_path`` that PEFT recorded."""
    if run_config is not None:
        name = OmegaConf.select(OmegaConf.load(run_config), "model.name_or_path")
        if name:
            return str(name)
    base = json.loads((adapter_dir / "adapter_config.json").read_text()).get("base_model_name_or_path")
    if not base:
        raise ConfigError(f"{adapter_dir}/adapter_config.json names no base_model_name_or_path, and no run "
                          "config.yaml names the base model.")
    return str(base)
