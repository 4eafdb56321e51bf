"""Multi-stage pipelines (``pipeline.stages``) and the regression gate.

- ``experiment=sft_then_grpo`` on a tiny model: each stage writes ``stages/<i>-<name>/`` with its checkpoints,
  evaluation samples, weights and done-marker; steps count on across stages; results.json and report.md show the
  stages side by side; the second stage starts from the first one's model.
- Killed for real (SIGKILL) between the stages and inside the second one: the rerun skips the finished stage and
  ends with the same weights and per-step rewards as an uninterrupted run.
- A forced regression on the embedded model (a stage that scrambles the weights): the gate rolls the stage back
  bit for bit, records why, and continues or stops as configured.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
from pathlib import Path

import pytest
import torch

from rlvr.interfaces import TrainInputs, TrainResult
from rlvr.orchestration import build_pipeline
from tests.conftest import REPO, compose, read_jsonl
from tests.integration.test_resume import VARIETY, env, logged_step, run, wait_for, weights

SFT_STEPS, GRPO_STEPS = 2, 4


def stage_overrides(model_dir: Path, run_dir: Path) -> list[str]:
    grpo = "pipeline.stages.grpo"
    return [
        "experiment=sft_then_grpo", f"model.name_or_path={model_dir}", "model.dtype=float32",
        "data.train_size=16", "data.test_size=4", "eval.batch_size=4", f"output_dir={run_dir}",
        f"pipeline.stages.sft.max_steps={SFT_STEPS}", "pipeline.stages.sft.per_device_train_batch_size=4",
        "pipeline.stages.sft.save_steps=2", "pipeline.stages.sft.learning_rate=1e-2",
        f"{grpo}.max_steps={GRPO_STEPS}", f"{grpo}.per_device_train_batch_size=4", f"{grpo}.num_generations=4",
        f"{grpo}.max_completion_length=8", f"{grpo}.learning_rate=1e-2", f"{grpo}.save_steps=2",
        "observers=none", "+observers.jsonl={_target_: rlvr.observers.JsonlObserver}", VARIETY,
    ]


def command(model_dir: Path, run_dir: Path) -> list[str]:
    return [__import__("sys").executable, str(REPO / "run_pipeline.py"), *stage_overrides(model_dir, run_dir)]


@pytest.fixture(scope="module")
def two_stages(tiny_model_dir, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("two_stages")
    run(command(tiny_model_dir, run_dir) + ["+observers.report={_target_: rlvr.observers.ReportObserver}"],
        env=env())
    return run_dir


def test_each_stage_writes_its_directory_and_results_show_them_side_by_side(two_stages):
    sft, grpo = two_stages / "stages" / "1-sft", two_stages / "stages" / "2-grpo"
    for stage, steps in ((sft, SFT_STEPS), (grpo, GRPO_STEPS)):
        marker = json.loads((stage / "stage.json").read_text())
        assert marker["kept"] and marker["train"]["global_step"] == steps
        assert (stage / "weights.safetensors").is_file() and (stage / "checkpoints" / f"checkpoint-{steps}").is_dir()
        assert read_jsonl(stage / f"samples_{stage.name.split('-')[1]}.jsonl")
    results = json.loads((two_stages / "results.json").read_text())
    assert [s["name"] for s in results["stages"]] == ["sft", "grpo"]
    assert results["stages"][1]["step_offset"] == SFT_STEPS
    assert results["stages"][0]["gate"]["compared_with"] == "baseline"
    assert results["stages"][1]["gate"]["compared_with"] == "sft"
    assert results["final"]["from"] == "grpo" and results["final"]["accuracy"] == results["stages"][1][
        "evaluation"]["accuracy"]
    assert "train" not in results  # one-stage runs keep `train`; staged runs have a record per stage

    train = [r for r in read_jsonl(two_stages / "metrics.jsonl") if r["event"] == "train"]
    assert [(r["step"], r["stage"]) for r in train] == [(1, "sft"), (2, "sft"), (3, "grpo"), (4, "grpo"),
                                                        (5, "grpo"), (6, "grpo")]
    report = (two_stages / "report.md").read_text()
    assert "## Stages" in report and "| | baseline | 1. sft | 2. grpo |" in report

    # GRPO started from SFT's model: the last SFT checkpoint's weights are the stage-1 weights
    sft_weights = weights_file(sft / "weights.safetensors")
    sft_checkpoint = weights_file(sft / "checkpoints" / f"checkpoint-{SFT_STEPS}" / "model.safetensors")
    assert all(torch.equal(sft_weights[k], sft_checkpoint[k]) for k in sft_weights)
    assert any(not torch.equal(sft_weights[k], weights(two_stages)[k]) for k in sft_weights)


def weights_file(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(path)


def assert_same_as(resumed: Path, reference: Path) -> None:
    mine = [r for r in read_jsonl(resumed / "metrics.jsonl") if r["event"] == "train"]
    theirs = [r for r in read_jsonl(reference / "metrics.jsonl") if r["event"] == "train"]
    assert [r["step"] for r in mine] == list(range(1, SFT_STEPS + GRPO_STEPS + 1))  # each step once
    for a, b in zip(mine, theirs):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5)
        if "reward" in b:
            assert a["reward"] == pytest.approx(b["reward"], abs=1e-5)
    ours, ref = weights(resumed), weights(reference)
    assert max((ours[k] - ref[k]).abs().max().item() for k in ref) <= 1e-5
    assert json.loads((resumed / "results.json").read_text())["run"]["status"] == "success"


def test_sigkill_between_stages_skips_the_finished_one(tiny_model_dir, tmp_path, two_stages):
    run_dir = tmp_path / "run"
    marker = run_dir / "stages" / "1-sft" / "stage.json"
    proc = subprocess.Popen(command(tiny_model_dir, run_dir), env=env(), cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(marker.exists, proc)
    proc.kill()
    proc.wait()
    before = marker.read_text()

    run(command(tiny_model_dir, run_dir), env=env())
    assert marker.read_text() == before  # not trained again
    assert_same_as(run_dir, two_stages)


def test_sigkill_inside_the_second_stage_resumes_there(tiny_model_dir, tmp_path, two_stages):
    run_dir = tmp_path / "run"
    # a random kill point; RLVR_TEST_KILL_STEP=N tries one again
    step = int(os.environ.get("RLVR_TEST_KILL_STEP")
               or random.Random().randint(SFT_STEPS + 2, SFT_STEPS + GRPO_STEPS - 1))
    first = run_dir / "stages" / "2-grpo" / "checkpoints" / "checkpoint-2" / "rlvr_state.json"
    proc = subprocess.Popen(command(tiny_model_dir, run_dir), env=env(), cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:  # the kill point is random: a failure names it, so it can be tried again
        wait_for(lambda: first.exists() and logged_step(run_dir, step), proc)  # after GRPO's first checkpoint
        proc.kill()
        proc.wait()

        run(command(tiny_model_dir, run_dir), env=env())
        assert_same_as(run_dir, two_stages)
        results = json.loads((run_dir / "results.json").read_text())
        assert results["stages"][1]["train"]["resumed_from_step"] == 2
        assert results["run"]["resumed_from"].endswith("stages/2-grpo/checkpoints/checkpoint-2")
    except AssertionError as err:
        raise AssertionError(f"killed after step {step} (RLVR_TEST_KILL_STEP={step} tries it again): {err}") from None


# --- the regression gate ----------------------------------------------------------------------------------------


class Scramble:
    """A training loop that ruins the model (noise on every weight): a regression the gate must catch."""

    def __init__(self, max_steps: int = 1, noise: float = 0.5):
        self._max_steps, self.noise = max_steps, noise

    @property
    def max_steps(self) -> int:
        return self._max_steps

    def train(self, inputs: TrainInputs) -> TrainResult:
        generator = torch.Generator().manual_seed(inputs.seed)
        with torch.no_grad():
            for p in inputs.model.parameters():
                p.add_(torch.randn(p.shape, generator=generator) * self.noise)
        inputs.events.log(1, {"loss": 0.0}, [])
        return TrainResult(inputs.model, 1, 0.0, [{"loss": 0.0, "step": 1}])


class Untouched(Scramble):
    """A training loop that leaves the model as it is (so the next stage's start can be compared exactly)."""

    def train(self, inputs: TrainInputs) -> TrainResult:
        inputs.events.log(1, {"loss": 0.0}, [])
        return TrainResult(inputs.model, 1, 0.0, [{"loss": 0.0, "step": 1}])


HERE = "tests.integration.test_stages"


def gated_pipeline(run_dir: Path, on_regression: str):
    cfg = compose([
        "~train", f"+pipeline.stages.scramble={{_target_: {HERE}.Scramble}}",
        f"+pipeline.stages.keep={{_target_: {HERE}.Untouched}}", "pipeline.gate.max_drop=0.1",
        f"pipeline.gate.on_regression={on_regression}", "data.test_size=8", "data.train_size=16",
        "eval.max_new_tokens=24", "save_model=false", "observers=none", f"output_dir={run_dir}",
        "+observers.report={_target_: rlvr.observers.ReportObserver}",
    ])
    return build_pipeline(cfg)


@pytest.mark.slow
@pytest.mark.parametrize("on_regression", ["continue", "stop"])
def test_the_gate_rolls_a_regression_back(tmp_path, on_regression):
    pipeline = gated_pipeline(tmp_path, on_regression)
    seen = {}
    original = pipeline.train

    def train(ctx, stage, model, *args):  # the weights each stage starts from
        seen[stage.name] = {k: v.detach().clone() for k, v in model.named_parameters()}
        return original(ctx, stage, model, *args)

    pipeline.train = train
    results = pipeline.run(tmp_path)

    assert results["baseline"]["accuracy"] > 0.25, "the embedded model answers some chain_sum questions"
    scrambled = results["stages"][0]
    assert not scrambled["kept"] and not scrambled["gate"]["passed"]
    assert scrambled["evaluation"]["accuracy"] < results["baseline"]["accuracy"] - 0.1
    reason = scrambled["gate"]["reason"]
    assert "accuracy fell" in reason and "pipeline.gate.max_drop=0.1" in reason
    assert not (tmp_path / "stages" / "1-scramble" / "weights.safetensors").exists()
    assert json.loads((tmp_path / "stages" / "1-scramble" / "stage.json").read_text())["kept"] is False
    assert results["final"]["accuracy"] == results["baseline"]["accuracy"]
    report = (tmp_path / "report.md").read_text()
    assert "**rolled back**: accuracy fell" in report
    if on_regression == "continue":  # the next stage starts from the model before the refused one, bit for bit
        assert all(torch.equal(seen["scramble"][k], v) for k, v in seen["keep"].items())
        assert results["stages"][1]["kept"] and results["final"]["from"] == "keep"
    else:
        assert "keep" not in seen and scrambled["stopped_pipeline"]
        assert results["stages"][1]["skipped"] and results["final"]["from"] == "baseline"
        assert "skipped: the gate stopped the pipeline" in report
    assert results["run"]["status"] == "success"
