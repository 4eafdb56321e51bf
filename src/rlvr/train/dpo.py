"""Direct Preference Optimization through TRL's ``DPOTrainer``, on pairs built from the policy's own samples
scored by the verifier (``train.preferences=samples``) or on a dataset's chosen/rejected pairs
(``train.preferences=dataset``); see :mod:`rlvr.train.preference`.

Run it:  python run_pipeline.py train=dpo          (or experiment=dpo_from_samples)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from rlvr.interfaces import NonNegative
from rlvr.train.preference import PreferenceLoop, Reference


@dataclass(eq=False, kw_only=True)
class DPOLoop(PreferenceLoop):
    """DPO against a frozen reference: the policy as it was before training. Settings besides the preference
    loops' (:class:`rlvr.train.preference.PreferenceLoop`):

    Args:
        beta: strength of the pull towards the reference (for ``ipo``, its tau).
        loss_type: ``sigmoid`` (the DPO paper's), ``hinge`` (SLiC) or ``ipo``.
        reference: ``model`` keeps a frozen copy of the policy and runs it each step; ``precomputed`` computes
            the reference log-probs of every pair once before training (less memory, no second model).
    """

    beta: NonNegative = 0.1
    loss_type: Literal["sigmoid", "hinge", "ipo"] = "sigmoid"
    reference: Reference = "model"

    def trl_classes(self) -> tuple[type, type]:
        from trl import DPOConfig, DPOTrainer

        return DPOConfig, DPOTrainer

    def trl_settings(self) -> dict[str, Any]:
        return {"loss_type": [self.loss_type], "precompute_ref_log_probs": self.reference == "precomputed"}
