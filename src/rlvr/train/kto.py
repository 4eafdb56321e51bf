"""Kahneman-Tversky Optimization through TRL's ``KTOTrainer``: unpaired examples labelled desirable or not.
From the policy's own samples (``train.preferences=samples``), each sample of a prompt whose samples do not all
score alike is desirable when the verifier scores it correct; from a dataset, its ``completion``/``label`` columns,
or its chosen/rejected pairs unpaired. See :mod:`rlvr.train.preference`.

Run it:  python run_pipeline.py train=kto
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from rlvr.interfaces import NonNegative
from rlvr.train.preference import PreferenceLoop, Reference


@dataclass(eq=False, kw_only=True)
class KTOLoop(PreferenceLoop):
    """KTO against a frozen reference (the policy before training). Settings besides the preference loops'
    (:class:`rlvr.train.preference.PreferenceLoop`); ``per_device_train_batch_size`` counts labelled examples (at
    least 2: KTO estimates its KL term from mismatched examples of the batch).

    Args:
        beta: strength of the pull towards the reference.
        loss_type: ``kto`` or ``apo_zero_unpaired``.
        desirable_weight, undesirable_weight: loss weights of the two labels (raise the rarer one's).
        reference: ``model`` (a frozen copy run each step) or ``precomputed`` (reference log-probs computed once).
    """

    form = "labels"

    beta: NonNegative = 0.1
    loss_type: Literal["kto", "apo_zero_unpaired"] = "kto"
    desirable_weight: float = 1.0
    undesirable_weight: float = 1.0
    reference: Reference = "model"

    def trl_classes(self) -> tuple[type, type]:
        from trl import KTOConfig, KTOTrainer

        return KTOConfig, KTOTrainer

    def trl_settings(self) -> dict[str, Any]:
        return {"precompute_ref_log_probs": self.reference == "precomputed"}
