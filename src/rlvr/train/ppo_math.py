"""The arithmetic of PPO for language models, on padded batches of completions (``mask`` 1 on real tokens):

- per-token KL to the reference: ``k1 = log p - log p_ref`` (unbiased, can be negative) or
  ``k3 = exp(log p_ref - log p) - (log p_ref - log p) - 1`` (non-negative, lower variance; Schulman 2020);
- generalized advantage estimation (Schulman et al. 2016): ``delta_t = r_t + gamma V_{t+1} - V_t``,
  ``A_t = delta_t + gamma lambda A_{t+1}``, with ``V`` and ``A`` zero after a completion's last token;
  returns ``R_t = A_t + V_t``;
- the clipped surrogate (Schulman et al. 2017): ``max(-A r, -A clip(r, 1-eps, 1+eps))`` with ``r = exp(log p -
  log p_old)``, and the clipped value loss ``0.5 max((V - R)^2, (V_old + clip(V - V_old, -c, c) - R)^2)``,
  both averaged over real tokens.

Each is checked against a plain loop over the formula in ``tests/unit/train/test_ppo.py``.
"""

from __future__ import annotations

import torch


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1)


def whiten(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``x`` shifted and scaled to mean 0 and variance 1 over the real tokens (padding stays 0)."""
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    return (x - mean) * torch.rsqrt(var + eps) * mask


def kl_penalty(logps: torch.Tensor, ref_logps: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-token estimate of KL(policy || reference) from the sampled tokens' log-probabilities."""
    if kind == "k1":
        return logps - ref_logps
    if kind == "k3":
        d = ref_logps - logps
        return torch.exp(d) - d - 1
    raise ValueError(f"kl estimator must be k1 or k3, got {kind!r}")


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
        ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(advantages, returns)`` for per-token ``rewards`` and ``values`` of shape (batch, tokens); completions are
    right-padded (``mask`` is 1 then 0), so the state after a completion's last token is terminal."""
    rewards, values = rewards * mask, values * mask
    advantages = torch.zeros_like(rewards)
    next_value = torch.zeros_like(rewards[:, 0])
    next_advantage = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.size(1))):
        m = mask[:, t]
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        advantages[:, t] = (delta + gamma * lam * next_advantage) * m
        next_value, next_advantage = values[:, t] * m, advantages[:, t]
    return advantages, (advantages + values) * mask


def policy_loss(logps: torch.Tensor, old_logps: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
                clip: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(loss, clip fraction, approximate KL to the sampling policy)``, averaged over real tokens."""
    log_ratio = logps - old_logps
    ratio = torch.exp(log_ratio)
    losses = torch.maximum(-advantages * ratio, -advantages * torch.clamp(ratio, 1 - clip, 1 + clip))
    clipped = ((ratio - 1).abs() > clip).float()
    approx_kl = 0.5 * log_ratio.pow(2)
    return masked_mean(losses, mask), masked_mean(clipped, mask), masked_mean(approx_kl, mask)


def value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor,
               clip: float) -> torch.Tensor:
    clipped = old_values + torch.clamp(values - old_values, -clip, clip)
    return 0.5 * masked_mean(torch.maximum((values - returns) ** 2, (clipped - returns) ** 2), mask)
