"""What a rank other than 0 does in a run, in one process: it writes nothing, and the steps that read what rank 0
wrote (a one-stage run's rolled-back samples) do not fail. Under a launcher (FSDP and ZeRO-3 included, since stages
and the gate run on sharded weights) every rank goes through the same steps."""

from __future__ import annotations

from rlvr import distributed
from rlvr.orchestration import build_pipeline
from tests.conftest import compose, tiny_overrides


def test_a_rolled_back_one_stage_run_on_another_rank_writes_nothing(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(distributed, "is_main", lambda: False)
    run_dir = tmp_path / "run"
    cfg = compose(tiny_overrides(tiny_model_dir, run_dir) + ["train.max_steps=1", "pipeline.gate.max_drop=-1"])
    results = build_pipeline(cfg).run(run_dir)
    assert results["run"]["status"] == "success"
    assert results["stages"][0]["gate"]["passed"] is False  # refused, rolled back
    assert not (run_dir / "results.json").exists() and not list(run_dir.glob("samples_*"))  # rank 0 writes them
