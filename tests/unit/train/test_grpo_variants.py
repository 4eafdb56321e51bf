"""GRPO's variants as named settings of train=grpo: each trains for 2 steps on a tiny random model, and each
variant's loss equals its paper's formula, written out here independently of TRL, to 1e-6 on fixed random
inputs (TRL's ``_compute_loss`` computes ours). Dynamic sampling (DAPO), which TRL lacks, refills a batch with
groups that carry a signal and logs how many it dropped."""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer

from rlvr.interfaces import TrainInputs
from rlvr.train import GRPOLoop
from rlvr.train.dynamic_sampling import concat, flat_groups
from rlvr.train.trl_bridge import model_args

G = 4  # completions per prompt


def prompts(n: int, word: str = "add") -> Dataset:
    return Dataset.from_list([{"prompt": [{"role": "user", "content": f"{word} {i} and {i + 1}"}]} for i in range(n)])


def variety(completions, **_):
    return [float(len(set(c if isinstance(c, str) else c[0]["content"]))) for c in completions]


def flat_for_odd(completions, prompts, **_):
    """All-equal rewards for prompts with an odd first number (a flat group), distinct characters otherwise."""
    text = lambda p: p if isinstance(p, str) else p[-1]["content"]  # noqa: E731
    return [0.0 if int(text(p).split()[1]) % 2 else float(len(set(str(c)))) for c, p in zip(completions, prompts)]


class Events:
    def __init__(self):
        self.logs: list[dict] = []

    def log(self, step, metrics, warnings):
        self.logs.append({"step": step, **metrics})

    def step_end(self, step, model):
        pass


def train(tiny_model_dir, tmp_path, reward=variety, **settings) -> tuple[Events, object]:
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir, padding_side="left")
    loop = GRPOLoop(**{"max_steps": 2, "per_device_train_batch_size": 8, "num_generations": G,
                       "max_completion_length": 8, "learning_rate": 1e-2, "save_steps": 0, **settings})
    events = Events()
    result = loop.train(TrainInputs(model=model, tokenizer=tokenizer, train=prompts(32), scorer=None,
                                    reward_functions=[reward], reward_weights=[1.0], output_dir=str(tmp_path),
                                    seed=0, events=events))
    assert result.global_step == 2 and [e["step"] for e in events.logs] == [1, 2]
    return events, result


VARIANTS = {
    "grpo": {"loss_type": "grpo"},
    "dr_grpo": {"loss_type": "dr_grpo"},
    "dapo": {"loss_type": "dapo"},
    "bnpo": {"loss_type": "bnpo"},
    "gspo": {"loss_type": "gspo", "epsilon": 3e-4, "epsilon_high": 4e-4},
    "clip_higher": {"epsilon": 0.2, "epsilon_high": 0.28},
    "kl_to_reference": {"beta": 0.04},
    "two_iterations": {"num_iterations": 2},
    "batch_scaled_rewards": {"scale_rewards": "batch"},
    "unscaled_rewards": {"scale_rewards": "none"},
    "mask_truncated": {"mask_truncated_completions": True},
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_each_variant_trains_two_steps(tiny_model_dir, tmp_path, variant):
    events, result = train(tiny_model_dir, tmp_path, **VARIANTS[variant])
    assert all(torch.isfinite(torch.tensor(e["loss"])) for e in events.logs)
    if variant == "kl_to_reference":
        assert "kl" in events.logs[-1]


# --- the loss of each variant against its formula -------------------------------------------------------------


def reference_loss(logps, old, ref, adv, mask, loss_type, eps, eps_high, beta, max_len, n_items):
    """The clipped surrogate of each paper, token by token, with plain tensor operations."""
    if loss_type == "gspo":  # one ratio per sequence: exp(mean of its token log-ratios)
        ratio = torch.exp(((logps - old) * mask).sum(1) / mask.sum(1)).unsqueeze(1).expand_as(logps)
    else:
        ratio = torch.exp(logps - old)
    a = adv.unsqueeze(1)
    per_token = -torch.minimum(ratio * a, torch.clamp(ratio, 1 - eps, 1 + eps_high) * a)
    if beta:  # k3 estimate of KL(policy || reference), weighted by the importance ratio (unbiased; DeepSeek-V3.2)
        per_token = per_token + beta * (torch.exp(ref - logps) - (ref - logps) - 1) * ratio
    if loss_type in ("grpo", "gspo"):  # mean over each sequence's tokens, then over sequences
        return ((per_token * mask).sum(1) / mask.sum(1)).mean()
    if loss_type == "bnpo":  # mean over the tokens of the batch
        return (per_token * mask).sum() / mask.sum()
    if loss_type == "dr_grpo":  # constant normaliser: completions x max completion length
        return (per_token * mask).sum() / (logps.size(0) * max_len)
    return (per_token * mask).sum() / n_items  # dapo: every token of the generation batch


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo", "bnpo", "gspo"])
@pytest.mark.parametrize("beta, eps_high", [(0.0, None), (0.04, 0.28)])
def test_loss_matches_the_formula(tiny_model_dir, tmp_path, loss_type, beta, eps_high):
    from trl import GRPOTrainer

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir, padding_side="left")
    loop = GRPOLoop(loss_type=loss_type, beta=beta, epsilon=0.2, epsilon_high=eps_high, num_generations=G,
                    per_device_train_batch_size=G, max_completion_length=6, save_steps=0)
    trainer = GRPOTrainer(model=model, reward_funcs=[variety], train_dataset=prompts(4), processing_class=tokenizer,
                          args=loop.grpo_config(str(tmp_path), 0, None, **model_args(model)))
    model.eval()  # eval mode: no gradient-accumulation scaling of the loss
    batch, plen, clen = 4, 5, 6
    vocab = model.config.vocab_size
    prompt_ids, completion_ids = torch.randint(4, vocab, (batch, plen)), torch.randint(4, vocab, (batch, clen))
    mask = torch.ones(batch, clen, dtype=torch.long)
    mask[1, 4:] = 0
    mask[3, 2:] = 0
    with torch.no_grad():
        logits = model(torch.cat([prompt_ids, completion_ids], 1)).logits[:, plen - 1:-1]
        logps = torch.log_softmax(logits.float(), -1).gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1)
    old = logps + 0.3 * torch.randn_like(logps)  # far enough from the current policy that clipping happens
    ref = logps + 0.2 * torch.randn_like(logps)
    adv = torch.randn(batch)
    n_items = mask.sum().float()
    inputs = {"prompt_ids": prompt_ids, "prompt_mask": torch.ones_like(prompt_ids), "completion_ids": completion_ids,
              "completion_mask": mask, "advantages": adv, "old_per_token_logps": old, "num_items_in_batch": n_items}
    if beta:
        inputs["ref_per_token_logps"] = ref
    with torch.no_grad():
        ours = trainer._compute_loss(model, inputs)
    expected = reference_loss(logps, old, ref, adv, mask.float(), loss_type, 0.2, eps_high or 0.2, beta, 6, n_items)
    assert ours.item() == pytest.approx(expected.item(), abs=1e-6)
    clipped = torch.exp(logps - old)
    assert ((clipped < 0.8) | (clipped > 1 + (eps_high or 0.2))).any()  # the clip is exercised


# --- dynamic sampling ---------------------------------------------------------------------------------------


def test_flat_groups_are_the_ones_with_all_zero_advantages():
    adv = torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0, -1.0, 0.0, 0.0])
    assert flat_groups(adv, 4).tolist() == [True, False]


def test_batches_of_different_widths_are_joined_with_the_right_padding():
    a = {"prompt_ids": torch.tensor([[5, 6]]), "prompt_mask": torch.tensor([[1, 1]]),
         "completion_ids": torch.tensor([[7]]), "completion_mask": torch.tensor([[1]]),
         "advantages": torch.tensor([0.5]), "num_items_in_batch": torch.tensor(1.0)}
    b = {"prompt_ids": torch.tensor([[8]]), "prompt_mask": torch.tensor([[1]]),
         "completion_ids": torch.tensor([[9, 9, 9]]), "completion_mask": torch.tensor([[1, 1, 0]]),
         "advantages": torch.tensor([-0.5]), "num_items_in_batch": torch.tensor(2.0)}
    out = concat([a, b], pad_token_id=0)
    assert out["prompt_ids"].tolist() == [[5, 6], [0, 8]] and out["prompt_mask"].tolist() == [[1, 1], [0, 1]]
    assert out["completion_ids"].tolist() == [[7, 0, 0], [9, 9, 9]]
    assert out["completion_mask"].tolist() == [[1, 0, 0], [1, 1, 0]] and out["num_items_in_batch"].item() == 3


def test_dynamic_sampling_drops_flat_groups_refills_the_batch_and_logs_it(tiny_model_dir, tmp_path):
    events, _ = train(tiny_model_dir, tmp_path, reward=flat_for_odd, dynamic_sampling=True, max_resample_rounds=4)
    for log in events.logs:
        assert log["dynamic_sampling/dropped_groups"] >= 1  # half the prompts give flat groups
        assert log["dynamic_sampling/rounds"] >= 1 and log["dynamic_sampling/unfilled_groups"] == 0
        assert log["frac_reward_zero_std"] > 0  # TRL's own count, over everything generated


def test_without_dynamic_sampling_flat_groups_stay_in_the_batch(tiny_model_dir, tmp_path):
    events, _ = train(tiny_model_dir, tmp_path, reward=flat_for_odd)
    assert all("dynamic_sampling/dropped_groups" not in log for log in events.logs)
