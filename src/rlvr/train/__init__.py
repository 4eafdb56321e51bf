"""Training loops. Each takes the model, tokenizer, dataset and reward functions and returns a TrainResult."""

from rlvr.train.grpo import GRPOLoop
from rlvr.train.sft import SFTLoop

__all__ = ["GRPOLoop", "SFTLoop"]
