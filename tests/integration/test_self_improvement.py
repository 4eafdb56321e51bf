"""Self-improvement through the real pipeline on a tiny model, each run interrupted and resumed:

- ``train=expert_iteration`` (with ``train.refine``), two rounds: each round a stage (``stages/<i>-round<r>/``)
  that samples, verifies, refines the prompts it failed and fine-tunes on what was correct, with its own
  evaluation and gate verdict; interrupted inside the second round, the rerun skips the first and ends with the
  weights and per-step losses of a run never stopped;
- ``experiment=grpo_self_play``: GRPO rounds each followed by the validator (perplexity under the starting model,
  self-consistency) and the gate; a round the validator flags is rolled back and the next starts from the weights
  before it; interrupted inside the round after a rollback, the rerun ends as the uninterrupted run;
- ``train=dpo train.preferences=refine`` with ``eval=refine``: DPO on the refined correct answer over the original
  wrong one, evaluated with accuracy after each critique-and-refine round; interrupted after its first checkpoint,
  the rerun ends as the uninterrupted run.

Each interruption raises in this process right after a checkpoint is complete, leaving the run directory as a
kill there would (a real SIGKILL of a staged run, between and inside stages, is ``test_stages.py``'s; a subprocess
per run would cost these tests two interpreter starts each). A random tiny
model almost never states the right sum, so these runs use :class:`AnyNumberData`: chain_sum where any number
read counts as correct (about one sample in ten), a stand-in for a task the model solves sometimes. The embedded
model with the real verifier is the README's measurement (a test of it would take minutes on CPU).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

import rlvr.train.checkpoints as checkpoints
from rlvr.data import ReasoningGymData
from rlvr.orchestration import build_pipeline
from rlvr.scoring.verifiers import ReasoningGymVerifier
from tests.conftest import compose, read_jsonl
from tests.integration.test_resume import VARIETY, weights

HERE = "tests.integration.test_self_improvement"


class AnyNumberVerifier(ReasoningGymVerifier):
    """Full marks for any number read (the reading is the real one: a reply that states no number is unparseable)."""

    def __call__(self, answer, row):
        return 1.0

    def __reduce__(self):
        return AnyNumberVerifier, ()


class AnyNumberData(ReasoningGymData):
    """chain_sum, scored by :class:`AnyNumberVerifier`."""

    @property
    def verifier(self) -> AnyNumberVerifier:
        return AnyNumberVerifier()


class Interrupted(Exception):
    """Raised where a test interrupts a run."""


def tiny(model_dir: Path, run_dir: Path) -> list[str]:
    return [f"model.name_or_path={model_dir}", "model.dtype=float32", f"data._target_={HERE}.AnyNumberData",
            "data.train_size=16", "data.test_size=4", "eval.batch_size=4", "observers=none",
            "+observers.jsonl={_target_: rlvr.observers.JsonlObserver}", f"output_dir={run_dir}",
            "train.max_steps=2", "train.save_steps=1", "train.per_device_train_batch_size=4",
            "train.max_completion_length=8"]


def expert_iteration(model_dir: Path, run_dir: Path) -> list[str]:
    return ["train=expert_iteration", *tiny(model_dir, run_dir), "train.rounds=2", "train.learning_rate=1e-2",
            "train.samples_per_prompt=4", "train.sample_prompts=8", "train.refine.feedback=verifier",
            "pipeline.gate.max_drop=1"]


def self_play(model_dir: Path, run_dir: Path) -> list[str]:
    """Two GRPO rounds; the limit on ref_perplexity refuses the first (its perplexity rises by about 1.4)."""
    return ["experiment=grpo_self_play", *tiny(model_dir, run_dir), "train.rounds=2", "train.num_generations=4",
            "train.learning_rate=0.1", "eval.k=2", VARIETY, "pipeline.gate.max_increase.ref_perplexity=0.5",
            "pipeline.gate.max_decrease.self_consistency=1"]


def refine_dpo(model_dir: Path, run_dir: Path) -> list[str]:
    return ["train=dpo", "eval=refine", *tiny(model_dir, run_dir), "train.preferences=refine",
            "train.sample_prompts=16", "train.refine.rounds=2", "train.refine.feedback=verifier",
            "train.refine.critique_tokens=8", "train.learning_rate=1e-2", "eval.refine.critique_tokens=8"]


def in_process(overrides: list[str], run_dir: Path, starts: dict | None = None) -> dict:
    """The pipeline run in this process; ``starts`` collects the weights each stage starts from."""
    pipeline = build_pipeline(compose(overrides))
    if starts is not None:
        original = pipeline.train

        def train(ctx, stage, model, *args):
            starts[stage.name] = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return original(ctx, stage, model, *args)

        pipeline.train = train
    return pipeline.run(run_dir)


def interrupted_after(monkeypatch, checkpoint: Path, overrides: list[str], run_dir: Path) -> dict:
    """Run, interrupted right after ``checkpoint`` is complete; then run again (resumed); returns its results."""
    complete = checkpoints.complete

    def then_interrupt(written, root, step, *args):
        final = complete(written, root, step, *args)
        if final == checkpoint:
            raise Interrupted(final)
        return final

    monkeypatch.setattr(checkpoints, "complete", then_interrupt)
    with pytest.raises(Interrupted):
        in_process(overrides, run_dir)
    assert json.loads((run_dir / "results.json").read_text())["run"]["status"] == "failed"
    monkeypatch.undo()
    return in_process(overrides, run_dir)


def train_records(run_dir: Path) -> list[dict]:
    return [r for r in read_jsonl(run_dir / "metrics.jsonl") if r["event"] == "train"]


def assert_same(resumed: Path, reference: Path, key: str, steps: list[int]) -> None:
    mine, theirs = train_records(resumed), train_records(reference)
    assert [r["step"] for r in mine] == [r["step"] for r in theirs] == steps  # each step once
    assert [r[key] for r in mine] == pytest.approx([r[key] for r in theirs], abs=1e-5)
    ours, ref = weights(resumed), weights(reference)
    assert max((ours[k] - ref[k]).abs().max().item() for k in ref) <= 1e-5
    assert json.loads((resumed / "results.json").read_text())["run"]["status"] == "success"


def weights_of(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(path)


# --- expert iteration ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def iterated(tiny_model_dir, tmp_path_factory) -> tuple[Path, str]:
    run_dir = tmp_path_factory.mktemp("expert_iteration")
    handler, logger = ListHandler(), logging.getLogger("rlvr")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        in_process(expert_iteration(tiny_model_dir, run_dir), run_dir)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return run_dir, "\n".join(handler.lines)


class ListHandler(logging.Handler):
    """Keeps the messages logged."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def test_expert_iteration_rounds_are_stages_that_learn_from_verified_samples(iterated, tiny_model_dir):
    run_dir, log = iterated
    results = json.loads((run_dir / "results.json").read_text())
    assert [s["name"] for s in results["stages"]] == ["round1", "round2"]
    for stage, offset in zip(results["stages"], (0, 2)):
        assert stage["kept"] and stage["train"]["global_step"] == 2 and stage["step_offset"] == offset
        assert stage["gate"]["passed"] and stage["evaluation"]["n"] == 4
        assert (Path(stage["dir"]) / "stage.json").is_file() and (Path(stage["dir"]) / "weights.safetensors").is_file()
    assert results["stages"][0]["gate"]["compared_with"] == "baseline"
    assert results["stages"][1]["gate"]["compared_with"] == "round1" and results["final"]["from"] == "round2"
    assert [(r["step"], r["stage"]) for r in train_records(run_dir)] == [
        (1, "round1"), (2, "round1"), (3, "round2"), (4, "round2")]
    said = [line for line in log.splitlines() if line.startswith("[rlvr] expert iteration:")]
    assert len(said) == 2 and all("32 samples of 8 prompts" in line and "refined answers" in line for line in said)
    start = weights_of(tiny_model_dir / "model.safetensors")
    assert any(not torch.equal(start[k], v) for k, v in weights(run_dir).items())  # the rounds trained


def test_expert_iteration_interrupted_inside_a_round_resumes_there(iterated, tiny_model_dir, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    checkpoint = run_dir / "stages" / "2-round2" / "checkpoints" / "checkpoint-1"
    results = interrupted_after(monkeypatch, checkpoint, expert_iteration(tiny_model_dir, run_dir), run_dir)
    assert results["stages"][1]["train"]["resumed_from_step"] == 1
    assert_same(run_dir, iterated[0], "loss", [1, 2, 3, 4])  # each step logged once: round 1 not trained again


# --- GRPO with self-play -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def played(tiny_model_dir, tmp_path_factory) -> tuple[Path, dict]:
    run_dir, starts = tmp_path_factory.mktemp("self_play"), {}
    in_process(self_play(tiny_model_dir, run_dir), run_dir, starts)
    return run_dir, starts


def test_grpo_self_play_validates_every_round_and_rolls_back_the_flagged(played, tiny_model_dir):
    run_dir, starts = played
    results = json.loads((run_dir / "results.json").read_text())
    assert results["baseline"]["extra"]["ref_perplexity"] > 1 and "self_consistency" in results["baseline"]["extra"]
    first, second = results["stages"]
    for stage in (first, second):
        assert set(stage["gate"]["changes"]) == {"repetition_rate", "ref_perplexity", "self_consistency"}
        assert stage["evaluation"]["extra"]["ref_perplexity"] > 1 and stage["gate"]["compared_with"] == "baseline"
    assert not first["kept"] and first["gate"]["reason"].startswith("ref_perplexity rose")
    assert "pipeline.gate.max_increase.ref_perplexity=0.5" in first["gate"]["reason"]
    assert all(torch.equal(starts["round1"][k], v) for k, v in starts["round2"].items())  # rolled back to the start
    assert results["final"]["from"] == ("round2" if second["kept"] else "baseline")
    samples = read_jsonl(run_dir / "stages" / "2-round2" / "samples_round2.jsonl")
    assert all(s["ref_perplexity"] > 1 for s in samples)


def test_grpo_self_play_interrupted_after_a_rollback_resumes_there(played, tiny_model_dir, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    checkpoint = run_dir / "stages" / "2-round2" / "checkpoints" / "checkpoint-1"
    results = interrupted_after(monkeypatch, checkpoint, self_play(tiny_model_dir, run_dir), run_dir)
    assert results["stages"][1]["train"]["resumed_from_step"] == 1 and not results["stages"][0]["kept"]
    assert_same(run_dir, played[0], "reward", [1, 2, 3, 4])


# --- preference pairs and evaluation by critique and refinement ----------------------------------------------------
@pytest.fixture(scope="module")
def refined(tiny_model_dir, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("refine_dpo")
    in_process(refine_dpo(tiny_model_dir, run_dir), run_dir)
    return run_dir


def test_dpo_on_refined_pairs_evaluated_round_by_round(refined, tiny_model_dir):
    results = json.loads((refined / "results.json").read_text())
    assert results["train"]["global_step"] == 2
    for name in ("baseline", "final"):
        extra = results[name]["extra"]
        measured = {"refine_accuracy_1", "refine_accuracy_2", "refine_wrong_to_right", "refine_right_to_wrong"}
        assert measured <= extra.keys()
        assert all(0 <= extra[k] <= 1 for k in ("refine_accuracy_1", "refine_accuracy_2"))
        samples = read_jsonl(refined / f"samples_{name}.jsonl")
        assert all(len(s["refined"]) == 2 and {"critique", "answer", "status"} <= set(s["refined"][0]) for s in samples)
    start = weights_of(tiny_model_dir / "model.safetensors")
    assert any(not torch.equal(start[k], v) for k, v in weights(refined).items())


def test_dpo_on_refined_pairs_interrupted_resumes(refined, tiny_model_dir, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    results = interrupted_after(monkeypatch, run_dir / "checkpoints" / "checkpoint-1",
                                refine_dpo(tiny_model_dir, run_dir), run_dir)
    assert results["train"]["resumed_from_step"] == 1
    assert results["final"]["extra"]["refine_accuracy_2"] == json.loads(
        (refined / "results.json").read_text())["final"]["extra"]["refine_accuracy_2"]
    assert_same(run_dir, refined, "loss", [1, 2])
