"""Any Hugging Face causal LM as the policy: hub id or local path, dtype, LoRA (PEFT), 4/8-bit
(bitsandbytes, CUDA only) and gradient checkpointing."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from rlvr.errors import ConfigError
from rlvr.model import embedded

log = logging.getLogger(__name__)


@dataclass
class LoraSettings:
    """LoRA through PEFT. ``enabled: false`` trains all weights."""

    enabled: bool = False
    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    # "all-linear" or a list of module names such as [q_proj, v_proj]
    target_modules: Any = "all-linear"


@dataclass
class QuantSettings:
    """Load the frozen base in 4 or 8 bits with bitsandbytes (needs CUDA; pair it with LoRA)."""

    load_in_4bit: bool = False
    load_in_8bit: bool = False
    quant_type: str = "nf4"


class HFModel:
    """Loads the policy model and tokenizer.

    Args:
        name_or_path: hub id, local directory, or ``embedded://smollm2-135m-instruct``.
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
        self.attn_implementation, self.trust_remote_code, self.revision = attn_implementation, trust_remote_code, revision
        if self.quant.load_in_4bit and self.quant.load_in_8bit:
            raise ConfigError("model.quant.load_in_4bit and model.quant.load_in_8bit are exclusive: pick one.")
        if (self.quant.load_in_4bit or self.quant.load_in_8bit):
            import torch

            if not torch.cuda.is_available():
                raise ConfigError(
                    "model.quant: 4-bit/8-bit loading uses bitsandbytes and needs a CUDA GPU; none is visible. "
                    "Set model.quant.load_in_4bit=false model.quant.load_in_8bit=false to train on CPU."
                )
            if not self.lora.enabled:
                raise ConfigError("A 4/8-bit base cannot be trained directly: set model.lora.enabled=true.")

    def torch_dtype(self) -> Any:
        import torch

        if self.dtype != "auto":
            return getattr(torch, self.dtype)
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32

    def load(self) -> tuple[Any, Any]:
        """``(model, tokenizer)``: tokenizer pads on the left (batched generation); LoRA applied if enabled."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = embedded.resolve(self.name_or_path) if embedded.is_embedded(self.name_or_path) else self.name_or_path
        common = {"trust_remote_code": self.trust_remote_code, "revision": self.revision}
        tokenizer = AutoTokenizer.from_pretrained(path, **common)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        kwargs: dict[str, Any] = {"dtype": self.torch_dtype(), **common}
        if self.attn_implementation:
            kwargs["attn_implementation"] = self.attn_implementation
        if self.quant.load_in_4bit or self.quant.load_in_8bit:
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=self.quant.load_in_4bit,
                load_in_8bit=self.quant.load_in_8bit,
                bnb_4bit_quant_type=self.quant.quant_type,
                bnb_4bit_compute_dtype=kwargs["dtype"],
            )
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
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

    def save(self, model: Any, tokenizer: Any, path: str) -> str:
        """Adapter only for LoRA (load with ``peft.AutoPeftModelForCausalLM``), else full weights."""
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
        return path


def count_parameters(model: Any) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
