"""What a run records, typed: results.json as the stages fill it, a stage's record through its done-marker, and
the run's config given to the orchestrator at construction (an argument, never a setting)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlvr.errors import ConfigError
from rlvr.orchestration import build_pipeline
from rlvr.orchestration.results import Results, RunRecord, StageRecord, TrainSummary, samples_path
from rlvr.orchestration.stages import Stage
from tests.conftest import compose


def record(**run) -> RunRecord:
    return RunRecord(command=None, overrides=[], run_dir="r", resumed_from=None, world_size=1,
                     cuda_visible_devices=None, threads=1, **run)


def test_results_json_holds_only_what_was_measured():
    results = Results(record())
    assert set(results.to_json()) == {"run", "during_training", "artifacts"}
    assert "status" not in results.to_json()["run"] and results.to_json()["run"]["resumed_from"] is None
    results.baseline, results.train = {"name": "baseline", "accuracy": 0.5}, TrainSummary(2, 1.5)
    results.run.status = "success"
    out = json.loads(json.dumps(results.to_json()))
    assert out["train"] == {"global_step": 2, "runtime_s": 1.5, "resumed_from_step": None}
    assert out["baseline"]["accuracy"] == 0.5 and out["run"]["status"] == "success" and "final" not in out


def test_a_resumed_run_keeps_what_still_holds():
    previous = {"baseline": {"name": "baseline"}, "data": {"train_rows": 3}, "final": {"name": "final"},
                "during_training": [{"name": "step_2", "step": 2}, {"name": "step_4", "step": 4}],
                "artifacts": {"config": "c"}, "run": {"status": "stopped"}}
    resumed = Results.resumed(record(), previous, step=3)
    assert resumed.final is None and resumed.run.status is None  # measured again
    assert [e["name"] for e in resumed.during_training] == ["step_2"]  # cut back to the checkpoint's step
    assert (resumed.baseline, resumed.data, resumed.artifacts) == ({"name": "baseline"}, {"train_rows": 3},
                                                                   {"config": "c"})
    assert Results.resumed(record(), previous, step=None).during_training == []  # a fresh run


def test_a_stage_record_comes_back_from_its_marker(tmp_path):
    staged = Stage(1, "sft", loop=None, dir=tmp_path / "stages" / "1-sft", offset=0)
    done = StageRecord(1, "sft", str(staged.dir), 0, TrainSummary(2, 3.0, 1), [{"loss": 0.1, "step": 2}],
                       {"name": "sft", "accuracy": 0.5}, {"passed": False, "reason": "fell"}, kept=False,
                       stopped_pipeline=True)
    assert staged.record() is None
    staged.finish(done, model=None)  # refused: no weights, only the marker
    assert staged.record() == done and not staged.weights.exists()
    plain = Stage(1, "train", loop=None, dir=tmp_path, offset=0, staged=False)
    plain.finish(done, model=None)
    assert plain.record() is None and not (tmp_path / "stage.json").exists()  # its checkpoints say where it is
    assert (plain.events, plain.samples) == (("train", "final_eval"), samples_path(tmp_path, "final"))
    assert (staged.events, staged.samples) == (("train:sft", "eval:sft"), staged.dir / "samples_sft.jsonl")


def test_the_runs_config_is_given_at_construction_and_is_no_setting(tmp_path):
    judge = "{_target_: tests.unit.test_secrets.judge, _partial_: true, api_key: sk-secret-123456}"
    pipeline = build_pipeline(compose([f"output_dir={tmp_path}", f"+reward.functions.judge={judge}"]))
    assert pipeline.config["output_dir"] == str(tmp_path)
    assert pipeline.config["reward"]["functions"]["judge"]["api_key"] == "<redacted>"
    assert "sk-secret-123456" in pipeline.secrets  # scrubbed from every file the run writes
    with pytest.raises(ConfigError, match="Unknown key 'config'"):
        build_pipeline(compose(["config.seed=1"]))


def test_a_sample_file_is_named_after_its_evaluation():
    assert samples_path(Path("run"), "baseline") == Path("run/samples_baseline.jsonl")
