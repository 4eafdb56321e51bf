"""Model components: load the policy (and tokenizer), apply adapters, save the result; the trainable weights kept
and put back (stages, rollback)."""

from rlvr.model.hf import HFModel, LoraSettings, QuantSettings, count_parameters
from rlvr.model.weights import full_state_dict, load_weights, restore, save_weights, trainable_state

__all__ = ["HFModel", "LoraSettings", "QuantSettings", "count_parameters", "full_state_dict", "load_weights", "restore",
           "save_weights", "trainable_state"]
