"""GRPO's variants as named settings of train=grpo: each trains for 2 steps on a tiny random model, and each
variant's loss equals its paper's formula, written out here independently of TRL, to 1e-6 on fixed random
inputs (TRL's ``_compute_loss`` computes ours). Dynamic sampling (DAPO), which TRL lacks, refills a batch with
groups that carry a signal and logs how many it dropped."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer

from rlvr.errors import ConfigError
from rlvr.interfaces import Rewards, TrainInputs
from rlvr.rewards import weighted_total
from rlvr.train import GRPOLoop
from rlvr.train.dynamic_sampling import concat, dynamic_sampling, flat_groups
from rlvr.train.trl_bridge import model_args

G = 4  # completions per prompt


def prompts(n: int, word: str = "add") -> Dataset:
    return Dataset.from_list([{"prompt": [{"role": "user", "content": f"{word} {i} and {i + 1}"}]} for i in range(n)])


def variety(completions, **_):
    return [float(len(set(c if isinstance(c, str) else c[0]["content"]))) for c in completions]


def flat_for_odd(completions, prompts, **_):
    """All-equal rewards for prompts with an odd first number (a flat group), distinct characters otherwise."""
    text = lambda p: p if isinstance(p, str) else p[-1]["content"]  # noqa: E731
    return [3.7 if int(text(p).split()[1]) % 2 else float(len(set(str(c)))) for c, p in zip(completions, prompts)]


def flat_for_all(completions, **_):
    return [1.0] * len(completions)


class Events:
    def __init__(self):
        self.logs: list[dict] = []
        self.warnings: dict[int, list[str]] = {}

    def log(self, step, metrics, warnings):
        self.logs.append({"step": step, **metrics})
        self.warnings[step] = warnings

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
                                    rewards=Rewards({"reward": reward}, {"reward": 1.0}), output_dir=str(tmp_path),
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
    start = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    assert any(not torch.equal(w, start[k]) for k, w in result.model.state_dict().items())  # the policy moved
    if variant == "kl_to_reference":
        assert "kl" in events.logs[-1]
    if variant == "two_iterations":  # step 2 updates on step 1's completions, now off-policy: the clip acts
        assert "completions/clipped_ratio" not in events.logs[1] and events.logs[1]["clip_ratio/region_mean"] > 0


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


LOSS_TYPES = ["grpo", "dr_grpo", "dapo", "bnpo", "gspo"]


def loss_case(tiny_model_dir, tmp_path, **settings):
    """TRL's trainer for our ``settings``, and fixed random inputs: 4 completions of 6 tokens (two cut short by
    their mask), old and reference log-probs drawn away from the current policy so that clipping happens, random
    advantages."""
    from trl import GRPOTrainer

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir, padding_side="left")
    # temperature 1: the formula takes the log-probabilities of the logits as they are (TRL's pass divides them by
    # the sampling temperature, as it must)
    loop = GRPOLoop(**{"epsilon": 0.2, "num_generations": G, "per_device_train_batch_size": G, "temperature": 1.0,
                       "max_completion_length": 6, "save_steps": 0, **settings})
    trainer = GRPOTrainer(model=model, reward_funcs=[variety], train_dataset=prompts(4), processing_class=tokenizer,
                          args=loop.config(str(tmp_path), 0, **model_args(model)))
    batch, plen, clen, vocab = 4, 5, 6, model.config.vocab_size
    inputs = {"prompt_ids": torch.randint(4, vocab, (batch, plen)),
              "completion_ids": torch.randint(4, vocab, (batch, clen)),
              "completion_mask": torch.ones(batch, clen, dtype=torch.long), "advantages": torch.randn(batch)}
    inputs["prompt_mask"] = torch.ones_like(inputs["prompt_ids"])
    inputs["completion_mask"][1, 4:] = 0
    inputs["completion_mask"][3, 2:] = 0
    inputs["num_items_in_batch"] = inputs["completion_mask"].sum().float()
    with torch.no_grad():
        logps = policy_logps(model, inputs)
    inputs["old_per_token_logps"] = logps + 0.3 * torch.randn_like(logps)
    ref = logps + 0.2 * torch.randn_like(logps)
    if settings.get("beta"):
        inputs["ref_per_token_logps"] = ref
    ratio = torch.exp(logps - inputs["old_per_token_logps"])
    assert ((ratio < 0.8) | (ratio > 1 + (settings.get("epsilon_high") or 0.2))).any()  # the clip is exercised
    return trainer, model, inputs, ref


def policy_logps(model, inputs):
    """Each completion token's log-probability under ``model``, computed here, apart from TRL."""
    plen = inputs["prompt_ids"].size(1)
    logits = model(torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], 1)).logits[:, plen - 1:-1]
    return torch.log_softmax(logits.float(), -1).gather(-1, inputs["completion_ids"].unsqueeze(-1)).squeeze(-1)


def gradient(model, loss):
    model.zero_grad()
    loss.backward()
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
@pytest.mark.parametrize("beta, eps_high", [(0.0, None), (0.04, 0.28)])
def test_loss_and_gradient_match_the_formula(tiny_model_dir, tmp_path, loss_type, beta, eps_high):
    trainer, model, inputs, ref = loss_case(tiny_model_dir, tmp_path, loss_type=loss_type, beta=beta,
                                            epsilon_high=eps_high)
    model.eval()  # one batch, no gradient-accumulation scaling
    ours = trainer._compute_loss(model, inputs)
    ours_grad = gradient(model, ours)
    expected = reference_loss(policy_logps(model, inputs), inputs["old_per_token_logps"], ref, inputs["advantages"],
                              inputs["completion_mask"].float(), loss_type, 0.2, eps_high or 0.2, beta, 6,
                              inputs["num_items_in_batch"])
    expected_grad = gradient(model, expected)
    assert ours.item() == pytest.approx(expected.item(), abs=1e-6)
    assert (ours_grad - expected_grad).abs().max().item() <= 1e-6 and expected_grad.abs().max() > 1e-3


@pytest.mark.parametrize("loss_type", ["cispo", "sapo", "luspo", "vespo"])
def test_trls_further_losses_build_and_give_a_gradient(tiny_model_dir, tmp_path, loss_type):
    """TRL's losses beyond the papers' formulas above are passed through as they are: each builds a GRPOTrainer
    (whose own checks pass: luspo's sequence-level ratios, vespo's token-level ones) and moves the policy."""
    trainer, model, inputs, _ = loss_case(tiny_model_dir, tmp_path, loss_type=loss_type, epsilon_high=0.28)
    model.eval()
    loss = trainer._compute_loss(model, inputs)
    assert torch.isfinite(loss) and gradient(model, loss).abs().max() > 1e-4
    expected = "sequence" if loss_type == "luspo" else "token"
    assert trainer.args.loss_type == loss_type and trainer.args.importance_sampling_level == expected


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_accumulated_micro_batches_add_up_to_the_formula_over_the_step(tiny_model_dir, tmp_path, loss_type):
    """In training TRL splits a step's batch into gradient_accumulation_steps micro-batches and scales each one's
    loss; their sum is the formula over the whole batch (bnpo's normaliser is, by definition, per micro-batch)."""
    trainer, model, inputs, ref = loss_case(tiny_model_dir, tmp_path, loss_type=loss_type, beta=0.04,
                                            epsilon_high=0.28, per_device_train_batch_size=2,
                                            gradient_accumulation_steps=2)
    model.train()
    trainer.current_gradient_accumulation_steps = 2
    halves = [slice(0, 2), slice(2, 4)]
    batched = [k for k in inputs if k != "num_items_in_batch"]  # the count spans the whole generation batch
    with torch.no_grad():
        ours = sum(trainer._compute_loss(model, {**inputs, **{k: inputs[k][h] for k in batched}}) for h in halves)
        logps = policy_logps(model, inputs)

    def formula(rows):
        return reference_loss(logps[rows], inputs["old_per_token_logps"][rows], ref[rows], inputs["advantages"][rows],
                              inputs["completion_mask"][rows].float(), loss_type, 0.2, 0.28, 0.04, 6,
                              inputs["num_items_in_batch"])

    expected = sum(formula(h) for h in halves) / 2 if loss_type == "bnpo" else formula(slice(0, 4))
    assert ours.item() == pytest.approx(expected.item(), abs=1e-6)


# --- dynamic sampling ---------------------------------------------------------------------------------------


def test_flat_groups_are_read_from_the_rewards_not_the_advantages():
    rewards = torch.tensor([3.7] * G + [1.0, 0.0, 1.0, 1.0] + [2.0, float("nan"), 2.0, 2.0] + [float("nan")] * G)
    assert flat_groups(rewards, G).tolist() == [True, False, True, True]  # unscorable completions left out
    sixteen = torch.full((16,), 3.7)
    assert (sixteen - sixteen.mean() != 0).any()  # why not advantages == 0: a flat group's mean is not exact
    assert flat_groups(sixteen, 16).tolist() == [True]


def test_trl_totals_the_rewards_as_weighted_total_does(tiny_model_dir, tmp_path):
    """Weights go to TRL by name (as a list in its functions' order), and TRL's own total, from which its advantages
    come, is :func:`rlvr.rewards.weighted_total` of the functions' values: the sum PPO and dynamic sampling use."""
    from trl import GRPOTrainer

    class Capture(GRPOTrainer):
        def _calculate_rewards(self, *args):
            self.per_function = super()._calculate_rewards(*args)
            return self.per_function

    def some(completions, **_):  # no reward for every other completion: left out of the total
        return [None if i % 2 else 1.0 for i in range(len(completions))]

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir, padding_side="left")
    rewards = Rewards({"some": some, "variety": variety}, {"variety": 0.25, "some": 2.0})
    functions, weights = rewards.as_lists()
    assert weights == [2.0, 0.25]
    loop = GRPOLoop(num_generations=G, per_device_train_batch_size=2 * G, max_completion_length=6, save_steps=0)
    trainer = Capture(model=model, reward_funcs=functions, train_dataset=prompts(2), processing_class=tokenizer,
                      args=loop.config(str(tmp_path), 0, reward_weights=weights, **model_args(model)))
    trainer.model.train()
    trainer._generate_and_score_completions([row for row in prompts(2) for _ in range(G)])
    ours = weighted_total(dict(zip(rewards.functions, trainer.per_function.unbind(1))), rewards.weights)
    assert trainer._metrics["train"]["reward"][-1] == pytest.approx(ours.nanmean().item(), abs=1e-6)
    assert ours[1::2].tolist() == pytest.approx((0.25 * trainer.per_function[1::2, 1]).tolist())


class FakeGRPO:
    """Stands in for GRPOTrainer's generation and scoring: the prompt "p<i>" gets the rewards 0, 1, 0, 1 when i
    is even and 3.7 for all four completions when i is odd (a flat group). Its rows' prompt_ids hold i."""

    def __init__(self, n_prompts: int, step: int = 0):
        self.train_dataset = [{"prompt": f"p{i}"} for i in range(n_prompts)]
        self.num_generations, self.reward_weights, self.reward_func_names = G, torch.ones(1), ["variety"]
        self.model, self.processing_class = SimpleNamespace(training=True), SimpleNamespace(pad_token_id=0)
        self.args, self.state = SimpleNamespace(seed=0), SimpleNamespace(global_step=step)
        self._metrics = {"train": defaultdict(list)}
        self.generated: list[str] = []

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        return torch.tensor([[3.7 if int(p[1:]) % 2 else float(j % 2)] for j, p in enumerate(prompts)])

    def _score(self, inputs, prompts):
        return self._calculate_rewards(inputs, prompts, None, None)

    def _generate_and_score_completions(self, inputs):
        prompts = [row["prompt"] for row in inputs]
        self.generated += prompts[::G]
        rewards = self._score(inputs, prompts)[:, 0]
        ids = torch.tensor([[int(p[1:])] for p in prompts])
        return {"prompt_ids": ids, "prompt_mask": torch.ones_like(ids), "completion_ids": ids + 100,
                "completion_mask": torch.ones_like(ids), "num_items_in_batch": torch.tensor(float(len(ids))),
                "advantages": rewards - rewards.view(-1, G).mean(1).repeat_interleave(G)}


def generation_batch(*indices: int) -> list[dict]:
    return [{"prompt": f"p{i}"} for i in indices for _ in range(G)]


def test_dynamic_sampling_keeps_only_groups_with_a_signal_from_unseen_prompts():
    trainer = dynamic_sampling(FakeGRPO, max_rounds=5)(n_prompts=40)
    out = trainer._generate_and_score_completions(generation_batch(0, 1, 2, 3))
    groups = out["prompt_ids"][:, 0].view(-1, G)
    assert (groups == groups[:, :1]).all() and len(groups) == 4  # whole groups, as many as TRL asked for
    assert {0, 2} <= set(groups[:, 0].tolist()) and all(i % 2 == 0 for i in groups[:, 0].tolist())
    assert len(set(trainer.generated)) == len(trainer.generated)  # no prompt generated twice in a step
    flat = sum(int(p[1:]) % 2 for p in trainer.generated)
    metrics = trainer._metrics["train"]
    assert metrics["dynamic_sampling/dropped_groups"] == [flat] and flat >= 2
    assert metrics["dynamic_sampling/unfilled_groups"] == [0.0] and metrics["dynamic_sampling/rounds"][0] >= 1
    assert out["num_items_in_batch"].item() == 4 * G and (out["advantages"] != 0).all()
    again = dynamic_sampling(FakeGRPO, max_rounds=5)(n_prompts=40)
    again._generate_and_score_completions(generation_batch(0, 1, 2, 3))
    assert again.generated == trainer.generated  # seeded by seed, step and round: a resumed run draws the same


def test_a_generation_step_that_does_not_score_through_calculate_rewards_is_an_error():
    class Unscored(FakeGRPO):
        def _score(self, inputs, prompts):  # rewards computed without _calculate_rewards
            return FakeGRPO._calculate_rewards(self, inputs, prompts, None, None)

    trainer = dynamic_sampling(Unscored, max_rounds=1)(n_prompts=4)
    with pytest.raises(RuntimeError, match="did not call"):
        trainer._generate_and_score_completions(generation_batch(0))


def test_a_batch_that_cannot_be_filled_is_completed_with_flat_groups():
    trainer = dynamic_sampling(FakeGRPO, max_rounds=2)(n_prompts=5)  # p0..p4: only p4 is left to draw
    out = trainer._generate_and_score_completions(generation_batch(0, 1, 2, 3))
    assert trainer.generated == ["p0", "p1", "p2", "p3", "p4"]  # the training set ran out after one round
    assert sorted(out["prompt_ids"][::G, 0].tolist()) == [0, 1, 2, 4]  # 3 with a signal, then the first flat one
    metrics = trainer._metrics["train"]
    assert (metrics["dynamic_sampling/rounds"], metrics["dynamic_sampling/unfilled_groups"]) == ([1.0], [1.0])


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
    assert sum(log["dynamic_sampling/dropped_groups"] for log in events.logs) >= 1  # half the prompts are flat
    for log in events.logs:
        assert log["dynamic_sampling/unfilled_groups"] == 0
        assert (log["dynamic_sampling/rounds"] >= 1) == (log["dynamic_sampling/dropped_groups"] >= 1)
    assert not any("could not fill" in w for ws in events.warnings.values() for w in ws)


def test_a_batch_dynamic_sampling_cannot_fill_is_said_in_plain_words(tiny_model_dir, tmp_path):
    events, _ = train(tiny_model_dir, tmp_path, reward=flat_for_all, dynamic_sampling=True, max_resample_rounds=1)
    assert [log["dynamic_sampling/unfilled_groups"] for log in events.logs] == [2.0, 2.0]
    assert [log["dynamic_sampling/dropped_groups"] for log in events.logs] == [4.0, 4.0]  # 2 + 2 refilled, flat
    assert any(w.startswith("Dynamic sampling could not fill the batch over the last 2 steps: 2 group(s)")
               for w in events.warnings[2])


def test_without_dynamic_sampling_flat_groups_stay_in_the_batch(tiny_model_dir, tmp_path):
    events, _ = train(tiny_model_dir, tmp_path, reward=flat_for_odd)
    assert all("dynamic_sampling/dropped_groups" not in log for log in events.logs)


# --- combinations rejected before anything loads -------------------------------------------------------------


@pytest.mark.parametrize(("settings", "message"), [
    ({"epsilon": 1.0}, "'train.epsilon' must be in (0, 1) (the ratio is clipped below at 1 - epsilon), got 1.0."),
    ({"epsilon": 0.2, "epsilon_high": 0.1}, "train.epsilon_high (0.1) is the upper clip bound"),
    ({"loss_type": "dapo", "extra": {"importance_sampling_level": "sequence"}},
     "train.extra.importance_sampling_level: set by train.loss_type (gspo"),
    ({"dynamic_sampling": True, "extra": {"multi_objective_aggregation": "normalize_then_sum"}},
     "train.dynamic_sampling drops groups whose total rewards are equal"),
])
def test_invalid_combinations_are_one_line_config_errors(settings, message):
    with pytest.raises(ConfigError) as e:
        GRPOLoop(**settings)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_dynamic_sampling_under_a_launcher_is_refused_at_construction(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="runs in one process for now"):
        GRPOLoop(dynamic_sampling=True)


@pytest.mark.parametrize(("override", "message"), [
    ("train.epsilon=1.5", "'train.epsilon' must be in (0, 1) (the ratio is clipped below at 1 - epsilon)"),
    ("train.max_resample_rounds=0", "'train.max_resample_rounds' must be >= 1 (0 refills nothing)"),
])
def test_ranges_are_checked_by_the_config_validation(override, message):
    from tests.conftest import build_group, compose

    with pytest.raises(ConfigError) as e:
        build_group(compose([override]), "train")
    assert message in str(e.value)


# --- through the pipeline: metrics.jsonl and resume ----------------------------------------------------------


def test_dynamic_sampling_through_the_pipeline_logs_to_metrics_jsonl_and_resumes_exactly(tiny_model_dir, tmp_path):
    """A tiny random model's groups are mostly flat (it rarely answers): steps draw extra prompts, some cannot
    fill their batch (one group of 4 here), and the run says so. A run resumed from checkpoint-2 draws the same
    extras and ends with the weights of the uninterrupted run; metrics.jsonl holds the counts and the warning."""
    from safetensors.torch import load_file

    from rlvr.orchestration import build_pipeline
    from tests.conftest import compose, read_jsonl, tiny_overrides

    settings = ["train.max_steps=4", "train.save_steps=2", "train.dynamic_sampling=true", "train.max_resample_rounds=1",
                "+observers.jsonl={_target_: rlvr.observers.JsonlObserver}"]
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    build_pipeline(compose(tiny_overrides(tiny_model_dir, full) + settings)).run(full)
    checkpoint = f"resume={full / 'checkpoints' / 'checkpoint-2'}"
    results = build_pipeline(compose(tiny_overrides(tiny_model_dir, resumed) + settings + [checkpoint])).run(resumed)
    assert results["train"]["resumed_from_step"] == 2

    def counts(run_dir):
        return [{k: v for k, v in r.items() if k.startswith("dynamic_sampling/")}
                for r in read_jsonl(run_dir / "metrics.jsonl") if r["event"] == "train"]

    assert len(counts(full)) == 4 and counts(resumed) == counts(full)[2:]  # steps 3 and 4 drew the same extras
    assert sum(c["dynamic_sampling/rounds"] for c in counts(full)) >= 1
    assert any(c["dynamic_sampling/unfilled_groups"] > 0 for c in counts(full))
    last = [r for r in read_jsonl(full / "metrics.jsonl") if r["event"] == "train"][-1]
    assert any(w.startswith("Dynamic sampling could not fill the batch") for w in last["warnings"])
    a, b = (load_file(d / "model" / "model.safetensors") for d in (full, resumed))
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-6
