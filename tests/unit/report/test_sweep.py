"""The sweep summary (rlvr.report.sweep): one row per job from results.json and .hydra/overrides.yaml, a failed
or unfinished job as a row with its error, a training sweep read from its final evaluation, and the rebuild
through ``python -m rlvr.report_cli SWEEP_DIR``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from omegaconf import OmegaConf

from rlvr.report.sweep import SweepSummary, sweep_rows, write_summary
from rlvr.report_cli import main as report_main

KEYS = {"benchmark.model": "model", "benchmark.task": "task"}


def evaluation(accuracy: float, **extra: float) -> dict:
    return {"name": "eval", "accuracy": accuracy, "n": 4, "format_rate": 1.0, "parse_rate": 1.0,
            "mean_completion_tokens": 7.5, "truncation_rate": 0.0, "per_task": {}, "step": None,
            "extra": {"generation_s": 0.5, "generated_tokens_per_s": 60.0, **extra}}


def job(sweep: Path, num: int, overrides: list[str], results: dict | None) -> Path:
    """A job directory as Hydra and the pipeline leave it."""
    d = sweep / str(num)
    (d / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(overrides), d / ".hydra" / "overrides.yaml")
    OmegaConf.save(OmegaConf.create({"hydra": {"job": {"num": num}}}), d / ".hydra" / "hydra.yaml")
    if results is not None:
        (d / "results.json").write_text(json.dumps(results))
    return d


def benchmark_sweep(sweep: Path) -> Path:
    common = ["++data.test_size=4"]
    job(sweep, 0, [*common, "++benchmark.model='a'", "++benchmark.task='chain_sum'"],
        {"eval": evaluation(0.5, **{"pass@8": 0.75, "maj@8": 0.5, "k": 8}),
         "run": {"status": "success", "wall_time_s": 3.2}})
    job(sweep, 1, [*common, "++benchmark.model='a'", "++benchmark.task='legs'"],
        {"eval": evaluation(0.25), "run": {"status": "success", "wall_time_s": 2.0}})
    job(sweep, 2, [*common, "++benchmark.model='b'", "++benchmark.task='chain_sum'"],
        {"run": {"status": "failed", "error": "OSError: no such model", "wall_time_s": 0.1}})
    job(sweep, 3, [*common, "++benchmark.model='b'", "++benchmark.task='legs'"], None)  # killed before it wrote
    OmegaConf.save(OmegaConf.create({"hydra": {"callbacks": {"summary": {
        "_target_": "rlvr.report.sweep.SweepSummary", "keys": KEYS, "title": "Benchmark"}}}}), sweep / "multirun.yaml")
    return sweep


def test_one_row_per_job_in_job_order_with_failures(tmp_path):
    rows = sweep_rows(benchmark_sweep(tmp_path), KEYS)
    assert [(r["model"], r["task"], r["status"]) for r in rows] == [
        ("a", "chain_sum", "success"), ("a", "legs", "success"), ("b", "chain_sum", "failed"), ("b", "legs", "failed")]
    assert rows[0]["accuracy"] == 0.5 and rows[0]["pass@8"] == 0.75 and rows[0]["maj@8"] == 0.5
    assert "k" not in rows[0] and "generation_s" not in rows[0]  # timing and k are not results
    assert rows[0]["seconds"] == 3.2 and rows[0]["tokens_per_s"] == 60.0
    assert rows[2]["error"] == "OSError: no such model" and rows[2]["accuracy"] is None
    assert "no results.json" in rows[3]["error"]


def test_summary_files(tmp_path):
    sweep = benchmark_sweep(tmp_path)
    paths = write_summary(sweep, KEYS, title="Benchmark")
    with paths["csv"].open() as f:
        rows = list(csv.DictReader(f))
    assert [r["model"] for r in rows] == ["a", "a", "b", "b"]
    assert {"model", "task", "n", "accuracy", "pass@8", "maj@8", "seconds", "status", "error"} <= set(rows[0])
    md = paths["markdown"].read_text()
    assert md.startswith("# Benchmark\n") and "4 jobs, 2 succeeded" in md
    assert "| model | chain_sum | legs | mean |" in md
    assert "| a | 0.500 | 0.250 | 0.375 |" in md and "| b | failed | failed | - |" in md
    assert "OSError: no such model" in md
    assert paths["plot"].read_bytes().startswith(b"\x89PNG")


def test_callback_writes_at_the_sweep_root(tmp_path):
    sweep = benchmark_sweep(tmp_path / "sweep")
    SweepSummary(KEYS, "Benchmark").on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}}))
    assert {"summary.csv", "summary.md", "accuracy.png"} <= {p.name for p in sweep.iterdir()}


def test_training_sweep_reads_the_final_evaluation_and_the_swept_key(tmp_path):
    """No keys given: the overrides that differ between jobs are the columns (a later training sweep)."""
    for i, (lr, accuracy) in enumerate((("1e-5", 0.2), ("1e-4", 0.3))):
        job(tmp_path, i, ["++train.max_steps=50", f"++train.learning_rate={lr}"],
            {"baseline": evaluation(0.1), "final": evaluation(accuracy), "run": {"status": "success"}})
    rows = sweep_rows(tmp_path)
    assert [(r["train.learning_rate"], r["accuracy"]) for r in rows] == [("1e-05", 0.2), ("0.0001", 0.3)]
    assert "train.max_steps" not in rows[0]
    md = write_summary(tmp_path)["markdown"].read_text()
    assert "| train.learning_rate | accuracy | mean |" in md


def test_report_command_rebuilds_a_sweep_summary(tmp_path, capsys):
    sweep = benchmark_sweep(tmp_path)
    assert report_main([str(sweep)]) == 0
    assert str(sweep / "summary.md") in capsys.readouterr().out
    assert "| a | 0.500 | 0.250 | 0.375 |" in (sweep / "summary.md").read_text()  # the callback's keys and title
