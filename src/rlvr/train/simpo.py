"""SimPO (Meng et al., 2024) through TRL's experimental ``CPOTrainer`` with ``loss_type="simpo"``: a
reference-free preference loss on length-normalised log-probabilities with a target margin ``simpo_gamma``.
``cpo_alpha`` adds CPO's NLL term on the chosen completion (0: pure SimPO, as in the paper). The pairs come
from the policy's own samples or a dataset, as for ``dpo`` (see :mod:`rlvr.train.preference`).

Run it:  python run_pipeline.py train=simpo
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from rlvr.interfaces import NonNegative
from rlvr.train.preference import PreferenceLoop


@dataclass(eq=False, kw_only=True)
class SimPOLoop(PreferenceLoop):
    """SimPO: no reference model. Settings besides the preference loops' (:class:`rlvr.train.preference.
    PreferenceLoop`); ``max_completion_length`` also caps the completions CPOTrainer tokenizes.

    Args:
        beta: scale of the length-normalised reward (the paper uses 2 to 10).
        simpo_gamma: target reward margin between chosen and rejected (the paper's gamma; TRL's default 0.5).
        cpo_alpha: weight of the NLL loss on chosen completions (0: pure SimPO).
    """

    beta: NonNegative = 2.0
    simpo_gamma: float = 0.5
    cpo_alpha: float = 0.0

    def trl_classes(self) -> tuple[type, type]:
        """TRL's ``(CPOConfig, CPOTrainer)``, from ``trl.experimental`` (its warning that the API may change is
        silenced: we chose it, and pin TRL)."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="You are importing from 'trl.experimental'")
            from trl.experimental.cpo import CPOConfig, CPOTrainer

        return CPOConfig, CPOTrainer

    def trl_settings(self) -> dict[str, Any]:
        return {"loss_type": "simpo"}
