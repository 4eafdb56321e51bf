"""ExpertIterationLoop: one round's data (the verified-correct samples, distinct, at most keep_per_prompt per prompt;
refined answers of prompts with no correct sample), a round that finds nothing correct trains nothing, and loops
in rounds laid out as stages with their own names, steps and seeds."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import rlvr.train.expert_iteration as expert_iteration
from rlvr.errors import ConfigError
from rlvr.interfaces import TrainInputs
from rlvr.orchestration import build_pipeline
from rlvr.orchestration.stages import StagePlan, layout
from rlvr.scoring import AnswerFormat, NumberVerifier, Scorer
from rlvr.train import ExpertIterationLoop, GRPOLoop, SFTLoop
from tests.conftest import compose

QUESTIONS = {"1 + 2 =": "3", "2 + 2 =": "4", "3 + 3 =": "6"}


def rows() -> list[dict]:
    return [{"prompt": [{"role": "user", "content": q}], "answer": a, "task": "t", "entry": "{}"}
            for q, a in QUESTIONS.items()]


def inputs(seed: int = 0) -> TrainInputs:
    from datasets import Dataset

    return TrainInputs(model=None, tokenizer=None, train=Dataset.from_list(rows()),
                       scorer=Scorer(AnswerFormat(), NumberVerifier()), output_dir="unused", seed=seed, events=None)


@pytest.fixture
def scripted(monkeypatch):
    """The loop's sampler replaced by a script: per question, its k samples; a revision after a critique is "6"."""
    samples = {"1 + 2 =": ["3", " 3", "5", "The sum is 3."], "2 + 2 =": ["5", "4", "4", "4"],
               "3 + 3 =": ["7", "8", "no", "9"]}
    calls = []

    def sampler(model, tokenizer, **kw):
        def generate(prompts, max_new_tokens, k=1):
            calls.append((prompts, k, kw["seed"]))
            if len(prompts[0]) > 1:  # a critique-and-refine conversation
                return ["I slipped." if p[-1]["content"].startswith("Review") else "So it is 6." for p in prompts]
            return [t for p in prompts for t in samples[p[0]["content"]][:k]]
        return generate

    monkeypatch.setattr(expert_iteration, "sampler", sampler)
    return calls


def completions(dataset) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in dataset:
        out.setdefault(r["prompt"][0]["content"], []).append(r["completion"][0]["content"])
    return out


def test_a_round_trains_on_distinct_verified_samples(scripted):
    dataset, statuses = ExpertIterationLoop(keep_per_prompt=2).dataset(inputs())
    assert completions(dataset) == {"1 + 2 =": ["3", "The sum is 3."], "2 + 2 =": ["4"]}  # " 3" is "3" again
    assert statuses == {"correct": 6, "wrong": 5, "unparseable": 1}
    assert [k for _, k, _ in scripted] == [4]  # no refinement asked for


def test_prompts_with_no_correct_sample_are_refined_and_kept_when_right(scripted, caplog):
    loop = ExpertIterationLoop(refine={"rounds": 1, "feedback": "verifier"})
    with caplog.at_level(logging.INFO, logger="rlvr"):
        dataset, _ = loop.dataset(inputs())
    assert completions(dataset) == {"1 + 2 =": ["3"], "2 + 2 =": ["4"], "3 + 3 =": ["So it is 6."]}
    critique = scripted[1][0][0]
    assert critique[1]["content"] == "7" and critique[-1]["content"].startswith("A checker found")
    assert "1 of them refined answers, of 1 prompts with no correct sample" in caplog.text


def test_each_round_draws_its_own_prompts(scripted):
    loop = ExpertIterationLoop(sample_prompts=2)
    drawn = [loop.dataset(inputs(seed))[0] and [p[0]["content"] for p in scripted[-1][0]] for seed in range(4)]
    assert len({tuple(d) for d in drawn}) > 1 and all(len(d) == 2 for d in drawn)
    assert [seed for _, _, seed in scripted] == [0, 1, 2, 3]


def test_a_round_with_nothing_correct_trains_nothing_and_says_so(monkeypatch, caplog):
    monkeypatch.setattr(expert_iteration, "sampler", lambda *a, **kw: lambda prompts, n, k=1: ["?"] * len(prompts) * k)
    loop = ExpertIterationLoop()
    given = inputs()
    with caplog.at_level(logging.WARNING, logger="rlvr"):
        result = loop.train(given)
    assert (result.global_step, result.model) == (0, given.model)
    assert "none of the 12 samples of 3 prompts, sampled accuracy 0% (unparseable 12) is correct" in caplog.text


def test_settings_that_do_not_fit_fail_before_anything_loads():
    with pytest.raises(ConfigError, match="train.completion_field: expert iteration trains on the policy's own"):
        ExpertIterationLoop(completion_field="solution")
    with pytest.raises(ConfigError, match=r"Unknown key 'train.refine.round'. Did you mean 'rounds'\?"):
        ExpertIterationLoop(refine={"round": 2})
    with pytest.raises(ConfigError, match=r"'train.rounds' must be >= 1"):
        build_pipeline(compose(["train=expert_iteration", "train.rounds=0"]))


def test_train_expert_iteration_composes_with_its_rounds():
    pipeline = build_pipeline(compose(["train=expert_iteration", "train.rounds=4", "train.refine.feedback=verifier"]))
    loop = pipeline.trainer
    assert type(loop) is ExpertIterationLoop and loop.rounds == 4 and loop.refine.feedback == "verifier"
    assert [s.name for s in pipeline.stages(Path("run"))] == ["round1", "round2", "round3", "round4"]


def test_rounds_are_stages_with_their_own_names_steps_and_seeds():
    run = Path("run")
    plain = layout(run, StagePlan(), GRPOLoop(max_steps=5))
    assert [(s.name, s.dir, s.staged, s.round) for s in plain] == [("train", run, False, 1)]
    rounds = layout(run, StagePlan(), GRPOLoop(max_steps=5, rounds=3))
    assert [(s.name, s.dir.name, s.offset, s.round) for s in rounds] == [
        ("round1", "1-round1", 0, 1), ("round2", "2-round2", 5, 2), ("round3", "3-round3", 10, 3)]
    assert all(s.staged and s.dir.parent == run / "stages" for s in rounds)
    chain = layout(run, StagePlan({"sft": SFTLoop(max_steps=2), "ei": ExpertIterationLoop(max_steps=4, rounds=2)}),
                   None)
    assert [(s.name, s.offset, s.round) for s in chain] == [("sft", 0, 1), ("ei-round1", 2, 1), ("ei-round2", 6, 2)]
    assert [s.seed(7) for s in chain] == [7, 7, 8]  # a round's seed: the run's + round - 1
