"""Training loops. Each takes the model, tokenizer, dataset and reward functions and returns a TrainResult."""

from rlvr.train.grpo import GRPOLoop

__all__ = ["GRPOLoop"]
