"""Training loops. Each takes the model, tokenizer, dataset and reward functions and returns a TrainResult."""

from rlvr.train.dpo import DPOLoop
from rlvr.train.expert_iteration import ExpertIterationLoop
from rlvr.train.grpo import GRPOLoop
from rlvr.train.kto import KTOLoop
from rlvr.train.ppo import PPOLoop
from rlvr.train.prm import PRMLoop
from rlvr.train.reward_model import RewardModelLoop
from rlvr.train.rloo import RLOOLoop
from rlvr.train.sft import SFTLoop
from rlvr.train.simpo import SimPOLoop

__all__ = ["DPOLoop", "ExpertIterationLoop", "GRPOLoop", "KTOLoop", "PPOLoop", "PRMLoop", "RLOOLoop", "RewardModelLoop",
           "SFTLoop", "SimPOLoop"]
