"""train=prm: a token-classification head on the policy's body, trained on step labels at the last token of each
step (and nowhere else), saved so transformers' own AutoModelForTokenClassification loads it, and evaluated by
best-of-N reranking. A run resumed from a checkpoint reads its labels from the cache and ends with the weights of
an uninterrupted run."""

from __future__ import annotations

import json
import shutil

import pytest

import rlvr.data.step_labels as step_labels
import rlvr.train.prm as prm
from rlvr.errors import ConfigError
from rlvr.orchestration import build_pipeline
from rlvr.rewards import ProcessReward
from rlvr.train.prm import IGNORED, collate, step_loss, tokenized
from tests.conftest import compose, tiny_overrides

GOOD, BAD = "ok ok\n", "no no\n"


def overrides(model_dir, run_dir, *extra: str) -> list[str]:
    shrunk = [o for o in tiny_overrides(model_dir, run_dir) if not o.startswith("train.num_generations")]
    return [*shrunk, "train=prm", "train.label_prompts=4", "train.solutions_per_prompt=2", "train.rollouts=2",
            "eval.n=2", *extra]


def scripted_labels(model, tokenizer, rows, scorer, how, cache_dir):
    """Stands in for Math-Shepherd labelling: a step reading "ok ok" is right, one reading "no no" wrong."""
    out = []
    for row in rows:
        for steps in ([GOOD, GOOD, "so 1"], [GOOD, BAD, "so 2"], [BAD, GOOD, "so 3"], [BAD, BAD, "so 4"]):
            labels = [float(s == GOOD) for s in steps[:2]] + [float(steps[1] == GOOD)]
            out.append({"prompt": row["prompt"], "completion": "".join(steps), "steps": steps, "labels": labels,
                        "correct": bool(labels[-1])})
    return out


def test_labels_sit_at_each_steps_last_token_and_the_loss_reads_only_them(tiny_model_dir):
    import torch
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)  # one token per character
    solution = {"prompt": "Q ", "steps": ["ab\n", "cd"], "labels": [1.0, 0.25]}
    row = tokenized(tok, solution, max_length=64)
    assert len(row["labels"]) == len(row["input_ids"]) == 7
    assert row["labels"] == [IGNORED, IGNORED, IGNORED, 1.0, IGNORED, IGNORED, 0.25]  # at "b" and "d"
    assert tokenized(tok, solution, max_length=5)["labels"] == [IGNORED, IGNORED, IGNORED, 1.0, IGNORED]

    batch = collate([row, tokenized(tok, {**solution, "steps": ["ab"], "labels": [0.0]}, 64)], pad_id=0)
    assert batch["attention_mask"].tolist() == [[1] * 7, [1] * 4 + [0] * 3]
    logits = torch.randn(2, 7, 2, requires_grad=True)
    loss = step_loss(type("Out", (), {"logits": logits}), batch["labels"])
    logp = torch.log_softmax(logits.detach(), -1)
    expected = -(logp[0, 3, 1] + 0.25 * logp[0, 6, 1] + 0.75 * logp[0, 6, 0] + logp[1, 3, 0]) / 3
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    touched = logits.grad.abs().sum(-1) > 0
    assert touched.nonzero().tolist() == [[0, 3], [0, 6], [1, 3]]  # no gradient from any other token


def test_the_prm_learns_scripted_step_labels_saves_and_loads_with_transformers(tiny_model_dir, tmp_path, monkeypatch):
    from transformers import AutoModelForTokenClassification

    monkeypatch.setattr(prm, "label_steps", scripted_labels)
    run = tmp_path / "run"
    cfg = compose(overrides(tiny_model_dir, run, "train.max_steps=24", "train.learning_rate=3e-3",
                            "train.step_separator=\\n", "eval.num_examples=2"))
    results = build_pipeline(cfg).run(run)
    assert results["run"]["status"] == "success" and results["train"]["global_step"] == 24
    history = results["train_history"]
    assert history[-1]["loss"] < history[0]["loss"]
    # Best-of-2 before (the policy: a random pick's accuracy) and after (the PRM's pick), on the same samples.
    assert results["baseline"]["extra"].keys() >= {"pass@1", "pass@2", "maj@2"} and results["final"]["n"] == 2
    assert results["final"]["extra"]["pass@1"] == results["baseline"]["extra"]["pass@1"]

    model = AutoModelForTokenClassification.from_pretrained(run / "model")
    assert type(model).__name__ == "LlamaForTokenClassification" and model.config.num_labels == 2
    assert model.config.step_separator == "\n" and model.config.id2label == {0: "wrong_step", 1: "right_step"}
    reward = ProcessReward(str(run / "model"), aggregation="min")
    prompt = [{"role": "user", "content": "1 + 1 ="}]
    good, mixed = reward.rate([prompt] * 2, [GOOD + GOOD + "so 1", GOOD + BAD + "so 2"])
    assert good > 0.6 > mixed


def test_a_resumed_run_reads_its_labels_from_the_cache_and_matches_an_uninterrupted_one(tiny_model_dir, tmp_path,
                                                                                        monkeypatch):
    from safetensors.torch import load_file

    four = ["train.max_steps=4", "train.save_steps=2", "train.step_separator=' '", "eval.baseline=false",
            "eval.num_examples=1"]
    full = tmp_path / "full"
    build_pipeline(compose(overrides(tiny_model_dir, full, *four))).run(full)
    (cache,) = (full / "checkpoints").glob("step_labels-*.jsonl")
    assert len(cache.read_text().splitlines()) == 4  # one line per labelled problem

    def no_sampling(*args, **kwargs):
        raise AssertionError("the labels were sampled again")

    monkeypatch.setattr(step_labels, "sample", no_sampling)
    resumed = tmp_path / "resumed"
    (resumed / "checkpoints").mkdir(parents=True)
    shutil.copy(cache, resumed / "checkpoints" / cache.name)  # what the killed run had labelled
    results = build_pipeline(compose(overrides(tiny_model_dir, resumed, *four,
                                               f"resume={full / 'checkpoints' / 'checkpoint-2'}"))).run(resumed)
    assert results["train"]["resumed_from_step"] == 2 and results["train"]["global_step"] == 4
    ours, theirs = load_file(resumed / "model" / "model.safetensors"), load_file(full / "model" / "model.safetensors")
    assert max((ours[k] - theirs[k]).abs().max().item() for k in theirs) <= 1e-5
    assert json.loads((resumed / "results.json").read_text())["run"]["status"] == "success"


@pytest.mark.parametrize(("override", "message"), [
    ("train.step_separator=''", "train.step_separator must not be empty"),
    ("train.estimate=medium", "Invalid value 'medium' for 'train.estimate'"),
    ("train.rollouts=0", "'train.rollouts' must be >= 1, got 0"),
])
def test_bad_prm_settings_fail_before_anything_loads(tmp_path, override, message):
    with pytest.raises(ConfigError) as error:
        build_pipeline(compose(["train=prm", override, f"output_dir={tmp_path}"]))
    assert message in str(error.value) and "\n" not in str(error.value)
