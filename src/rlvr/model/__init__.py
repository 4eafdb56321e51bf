"""Model components: load the policy (and tokenizer), apply adapters, save the result."""

from rlvr.model.hf import HFModel, LoraSettings, QuantSettings, count_parameters

__all__ = ["HFModel", "LoraSettings", "QuantSettings", "count_parameters"]
