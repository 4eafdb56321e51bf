"""Model components: load the policy (and tokenizer), apply adapters, save the result; the trainable weights kept
and put back (stages, rollback)."""

from rlvr.model.hf import HFModel, LoraSettings, QuantSettings, count_parameters
from rlvr.model.weights import load_weights, restore, save_weights, trainable_state

__all__ = ["HFModel", "LoraSettings", "QuantSettings", "count_parameters", "load_weights", "restore", "save_weights",
           "trainable_state"]
