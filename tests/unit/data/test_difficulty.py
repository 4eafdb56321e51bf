"""data.difficulty_filter: the pass-rate filter before training (kept and dropped exactly by the band, pass rates
saved, a killed pass resumed to the same result) and, during training, prompts skipped after k flat groups (exactly
those, replaced by prompts not skipped, resumable), for any data source."""

from __future__ import annotations

import json

import pytest
from datasets import Dataset

from rlvr.data import PromptTemplate, QAData
from rlvr.data.difficulty import DifficultyFilter
from rlvr.data.feed import Feed, prompt_key
from rlvr.errors import ConfigError
from rlvr.orchestration import build_pipeline
from rlvr.scoring import Scorer
from rlvr.scoring.verifiers import NumberVerifier
from tests.conftest import FIXTURES, compose

PROMPT = PromptTemplate()
SCORER = Scorer(PROMPT.answer_format, NumberVerifier())
SOLVED = [0, 3, 4, 1, 2, 4, 0, 2, 4, 3]  # correct samples of 4, per prompt


def rows(n=len(SOLVED)):
    return Dataset.from_list([{"prompt": PROMPT.messages(f"q{i}"), "question": f"q{i}", "answer": str(i),
                               "task": "qa", "entry": "{}"} for i in range(n)])


@pytest.fixture
def sampler(monkeypatch):
    """The base model's samples, scripted: prompt qI gets SOLVED[I] right answers of k; the calls are recorded."""
    calls = []

    def sample(model, tokenizer, prompts, *, k, seed, **_):
        calls.append((prompts[0][-1]["content"], len(prompts), seed))
        out = []
        for p in prompts:
            i = int(p[-1]["content"][1:])
            out += [f"The answer is {i}." if j < SOLVED[i] else "The answer is -1." for j in range(k)]
        return out

    monkeypatch.setattr("rlvr.data.difficulty.sample", sample)
    return calls


def test_pass_rate_filter_keeps_exactly_the_band_and_saves_every_pass_rate(sampler, tmp_path):
    path = tmp_path / "pass_rates.jsonl"
    kept, stats = DifficultyFilter(samples=4, batch_size=12).apply(None, None, rows(), SCORER, path, seed=0)
    assert kept["question"] == [f"q{i}" for i, c in enumerate(SOLVED) if 1 <= c <= 3]
    assert stats | {"pass_rates": None} == {
        "prompts": 10, "samples_per_prompt": 4, "kept": 5, "dropped_too_hard": 2, "dropped_too_easy": 3,
        "kept_correct": [1, 3], "mean_pass_rate": 0.575, "pass_rates": None}
    saved = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["correct"] for r in saved] == SOLVED and saved[5]["pass_rate"] == 1.0
    assert [c[1] for c in sampler] == [3, 3, 3, 1]  # chunks of batch_size // samples prompts
    wide, _ = DifficultyFilter(samples=4, min_correct=0, max_correct=4).apply(None, None, rows(), SCORER,
                                                                             tmp_path / "all.jsonl", seed=0)
    assert len(wide) == 10
    easy_only, _ = DifficultyFilter(samples=4, min_correct=0).apply(None, None, rows(), SCORER,
                                                                   tmp_path / "hard.jsonl", seed=0)
    assert easy_only["question"] == [f"q{i}" for i, c in enumerate(SOLVED) if c < 4]


def test_a_killed_pass_resumes_from_its_last_chunk_to_the_same_result(sampler, tmp_path):
    whole = tmp_path / "whole.jsonl"
    expected, _ = DifficultyFilter(samples=4, batch_size=12).apply(None, None, rows(), SCORER, whole, seed=7)
    first_seeds = [c[2] for c in sampler]
    sampler.clear()
    killed = tmp_path / "killed.jsonl"
    lines = whole.read_text().splitlines()
    killed.write_text("\n".join(lines[:6]) + "\n" + lines[6][:10])  # two chunks, and a torn line of the third
    again, _ = DifficultyFilter(samples=4, batch_size=12).apply(None, None, rows(), SCORER, killed, seed=7)
    assert again["question"] == expected["question"]
    assert [c[0] for c in sampler] == ["q6", "q9"] and [c[2] for c in sampler] == first_seeds[2:]
    sampler.clear()
    DifficultyFilter(samples=4, batch_size=12).apply(None, None, rows(), SCORER, whole, seed=7)
    assert sampler == []  # complete: nothing sampled again
    with pytest.raises(ConfigError, match="holds pass rates of other training prompts or settings"):
        DifficultyFilter(samples=8).apply(None, None, rows(), SCORER, whole, seed=7)


def test_pass_rate_filter_that_drops_everything_says_so(sampler, tmp_path):
    with pytest.raises(ConfigError, match="dropped every training prompt"):
        DifficultyFilter(samples=4, min_correct=2, max_correct=2).apply(None, None, rows(3), SCORER,
                                                                       tmp_path / "p.jsonl", seed=0)
    with pytest.raises(ConfigError, match=r"min_correct \(3\) <= max_correct \(2\)"):
        DifficultyFilter(samples=4, min_correct=3, max_correct=2)


def group_rows(data, indices, group=4):
    return [data[i] for i in indices for _ in range(group)]


def test_flat_prompts_are_skipped_exactly_after_k_flat_groups_and_replaced():
    data = rows(6)
    feed = Feed(flat_epochs=2)
    # (prompt, correct of 4, flat) per group, over three epochs of prompts 0..3
    epochs = [[(0, 4, True), (1, 0, True), (2, 2, False), (3, 4, True)],
              [(0, 4, True), (1, 0, True), (2, 4, True), (3, 1, False)],
              [(2, 4, True), (3, 4, True)]]
    for step, epoch in enumerate(epochs, start=1):
        batch = group_rows(data, [i for i, _, _ in epoch])
        correct = [j < right for _, right, _ in epoch for j in range(4)]
        feed.observe(step, batch, correct, [f for _, _, f in epoch], 4)
    assert {s["question"]: (s["why"], s["step"]) for s in feed.skipped.values()} == {
        "q0": ("solved", 2), "q1": ("unsolved", 2), "q2": ("solved", 3)}  # q3's groups: signal in epoch 2
    chosen = feed.rows(4, group_rows(data, [0, 3, 1, 5]), 4, data, seed=0)
    questions = [chosen[g]["question"] for g in range(0, 16, 4)]
    assert questions[1] == "q3" and questions[3] == "q5"  # not skipped: kept
    assert {questions[0], questions[2]} <= {"q3", "q4", "q5"}  # replaced by prompts not skipped
    assert all(chosen[g + j] == chosen[g] for g in range(0, 16, 4) for j in range(4))  # whole groups
    assert feed.metrics() == {"flat_prompts/skipped": 3.0, "flat_prompts/skipped_solved": 2.0,
                              "flat_prompts/skipped_unsolved": 1.0, "flat_prompts/skipped_flat": 0.0,
                              "flat_prompts/replaced": 2.0}
    assert feed.rows(5, group_rows(data, [0, 3, 1, 5]), 4, data, seed=0) != chosen  # seeded by the step
    assert Feed(flat_epochs=2).rows(4, chosen, 4, data, seed=0) == chosen  # nothing skipped: nothing changes
    restored = Feed(flat_epochs=2)
    restored.load_state_dict(json.loads(json.dumps(feed.state_dict())))
    assert restored.rows(4, group_rows(data, [0, 3, 1, 5]), 4, data, seed=0) == chosen
    assert restored.summary()["flat_prompts"]["skipped"] == 3


def test_flat_prompts_with_a_curriculum_are_replaced_from_their_level():
    from rlvr.data import ReasoningGymData

    splits = ReasoningGymData(task="chain_sum", train_size=20, test_size=4,
                              curriculum={"attributes": {"chain_sum": {"num_terms": [0, 1]}}},
                              difficulty_filter={"flat_epochs": 1}).load(PROMPT)
    feed, slot = splits.feed, splits.train[0]
    feed.curriculum.tasks["chain_sum"].place(1)
    row = feed.rows(1, [slot] * 4, 4, splits.train, seed=0)[0]
    feed.observe(1, [row] * 4, [True] * 4, [True], 4)
    replaced = feed.rows(2, [slot] * 4, 4, splits.train, seed=0)[0]
    assert replaced["question"] != row["question"] and replaced["level"] == "chain_sum/L1"
    assert replaced["slot"] == slot["slot"] and prompt_key(replaced) not in feed.skipped


def test_any_data_source_takes_both_filters():
    data = QAData(path=str(FIXTURES / "gsm8k"), answer_pattern=r"####\s*(.+?)\s*$", answer_type="integer",
                  train_size=8, test_size=4, difficulty_filter={"samples": 2, "flat_epochs": 3})
    splits = data.load(PromptTemplate(answer_style="gsm8k"))
    assert splits.pass_rate_filter is data.difficulty_filter and splits.feed.flat_epochs == 3
    assert splits.feed.curriculum is None
    plain = QAData(path=str(FIXTURES / "gsm8k"), answer_type="integer", answer_pattern=r"####\s*(.+?)\s*$",
                   train_size=8, test_size=4).load(PROMPT)
    assert plain.feed is None and plain.pass_rate_filter is None
    for name in ("gsm8k", "finqa", "jsonl", "reasoning_gym"):
        wrong = "data.difficulty_filter.min_correct=-1"
        cfg = compose([f"data={name}", "data.path=x", wrong] if name != "reasoning_gym" else [wrong])
        with pytest.raises(ConfigError, match=r"'data.difficulty_filter.min_correct' must be >= 0, got -1."):
            build_pipeline(cfg)


@pytest.mark.parametrize("setting", ["samples=2", "flat_epochs=1"])
def test_a_stream_refuses_the_filters_before_anything_loads(setting):
    cfg = compose(["data=gsm8k", f"data.path={FIXTURES / 'gsm8k'}", "data.streaming=true",
                   f"data.difficulty_filter.{setting}"])
    with pytest.raises(ConfigError, match=r"data.difficulty_filter .* a stream \(data.streaming=true\) cannot give"):
        build_pipeline(cfg)
