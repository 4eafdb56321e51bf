"""A completion's total reward: the weighted sum of its reward functions' values, both keyed by the functions'
names. Every loop that sums rewards itself calls :func:`weighted_total` (PPO; dynamic sampling, which must find
the groups TRL's advantages make flat); TRL's GRPOTrainer and RLOOTrainer sum from the same weights, which they
take as a list in their functions' order (:meth:`rlvr.interfaces.Rewards.as_lists`), by the same rule, which
``tests/unit/rewards/test_suite.py`` checks against a GRPOTrainer's own total.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def weighted_total(values: Mapping[str, Sequence[float | None] | Any], weights: Mapping[str, float]) -> Any:
    """Each completion's total, as a float32 tensor: the sum over the functions named in ``weights`` of weight x
    value, where a value a function did not give (None, or NaN: TRL's "no reward for this one") is left out; NaN
    for a completion no function scored (TRL leaves it out of its group's statistics, with advantage 0).

    >>> weighted_total({"correct": [1.0, None, None], "format": [0.5, 1.0, None]},
    ...                {"correct": 1.0, "format": 0.25}).tolist()
    [1.125, 0.25, nan]
    """
    import torch

    columns = [torch.as_tensor([float("nan") if v is None else v for v in values[name]], dtype=torch.float32)
               if not isinstance(values[name], torch.Tensor) else values[name].float() for name in weights]
    per_function = torch.stack(columns, dim=1)
    weight = torch.tensor([float(weights[name]) for name in weights], device=per_function.device)
    total = (per_function * weight.unsqueeze(0)).nansum(dim=1)
    return total.masked_fill(torch.isnan(per_function).all(dim=1), float("nan"))
