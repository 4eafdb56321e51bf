"""PPO's arithmetic (rlvr.train.ppo_math) against the formulas written as plain loops, token by token, on random
padded batches: to 1e-6."""

from __future__ import annotations

import math

import pytest
import torch

from rlvr.train import ppo_math

B, T = 5, 7


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    lengths = [7, 3, 1, 5, 6]
    mask = torch.tensor([[1.0 if t < n else 0.0 for t in range(T)] for n in lengths])
    rnd = lambda: torch.randn(B, T, generator=g, dtype=torch.float64)  # noqa: E731
    return {"mask": mask.double(), "lengths": lengths, "rewards": rnd(), "values": rnd(), "logps": rnd() - 2,
            "old": rnd() - 2, "ref": rnd() - 2, "adv": rnd(), "returns": rnd(), "old_values": rnd()}


def test_gae_and_returns_equal_the_recursion(batch):
    gamma, lam = 0.99, 0.95
    adv, ret = ppo_math.gae(batch["rewards"], batch["values"], batch["mask"], gamma, lam)
    for i, n in enumerate(batch["lengths"]):
        r, v = batch["rewards"][i].tolist(), batch["values"][i].tolist()
        expected, running = [0.0] * T, 0.0
        for t in reversed(range(n)):
            v_next = v[t + 1] if t + 1 < n else 0.0  # terminal after the last token
            running = r[t] + gamma * v_next - v[t] + gamma * lam * running
            expected[t] = running
        for t in range(T):
            assert adv[i, t].item() == pytest.approx(expected[t], abs=1e-6)
            assert ret[i, t].item() == pytest.approx(expected[t] + v[t] if t < n else 0.0, abs=1e-6)


def test_gae_with_lambda_one_and_gamma_one_is_the_reward_to_go_minus_the_value(batch):
    adv, _ = ppo_math.gae(batch["rewards"], batch["values"], batch["mask"], 1.0, 1.0)
    i, n = 0, batch["lengths"][0]
    for t in range(n):
        to_go = sum(batch["rewards"][i, t:n].tolist())
        assert adv[i, t].item() == pytest.approx(to_go - batch["values"][i, t].item(), abs=1e-6)


def test_clipped_policy_loss_equals_the_formula(batch):
    clip = 0.2
    loss, clipfrac, approx_kl = ppo_math.policy_loss(batch["logps"], batch["old"], batch["adv"], batch["mask"], clip)
    terms, clipped, kls, n = 0.0, 0, 0.0, 0
    for i, length in enumerate(batch["lengths"]):
        for t in range(length):
            ratio = math.exp(batch["logps"][i, t].item() - batch["old"][i, t].item())
            a = batch["adv"][i, t].item()
            terms += max(-a * ratio, -a * min(max(ratio, 1 - clip), 1 + clip))
            clipped += abs(ratio - 1) > clip
            kls += 0.5 * (batch["logps"][i, t].item() - batch["old"][i, t].item()) ** 2
            n += 1
    assert loss.item() == pytest.approx(terms / n, abs=1e-6)
    assert clipfrac.item() == pytest.approx(clipped / n, abs=1e-6) and 0 < clipped < n
    assert approx_kl.item() == pytest.approx(kls / n, abs=1e-6)


def test_clipped_value_loss_equals_the_formula(batch):
    clip = 0.2
    loss = ppo_math.value_loss(batch["values"], batch["old_values"], batch["returns"], batch["mask"], clip)
    total, n = 0.0, 0
    for i, length in enumerate(batch["lengths"]):
        for t in range(length):
            v, old, ret = (batch[k][i, t].item() for k in ("values", "old_values", "returns"))
            v_clip = old + min(max(v - old, -clip), clip)
            total += 0.5 * max((v - ret) ** 2, (v_clip - ret) ** 2)
            n += 1
    assert loss.item() == pytest.approx(total / n, abs=1e-6)


@pytest.mark.parametrize("kind", ["k1", "k3"])
def test_kl_estimators(batch, kind):
    kl = ppo_math.kl_penalty(batch["logps"], batch["ref"], kind)
    for i in range(B):
        for t in range(T):
            lp, ref = batch["logps"][i, t].item(), batch["ref"][i, t].item()
            expected = lp - ref if kind == "k1" else math.exp(ref - lp) - (ref - lp) - 1
            assert kl[i, t].item() == pytest.approx(expected, abs=1e-6)
    if kind == "k3":
        assert (kl >= 0).all()


def test_whiten_gives_zero_mean_unit_variance_on_real_tokens(batch):
    w = ppo_math.whiten(batch["adv"], batch["mask"])
    real = w[batch["mask"].bool()]
    assert real.mean().item() == pytest.approx(0.0, abs=1e-6)
    assert real.pow(2).mean().item() == pytest.approx(1.0, abs=1e-5)
    assert (w[~batch["mask"].bool()] == 0).all()
