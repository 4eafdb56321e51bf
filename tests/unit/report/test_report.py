"""Plots render as real PNGs; the run report puts how it ran, config, curves, baseline vs final and the questions
training changed on one page, from the observer at the end of a run and from ``python -m rlvr.report_cli RUN_DIR``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlvr.config import load_config, validate, with_defaults
from rlvr.observers import Observers
from rlvr.observers.report import ReportObserver
from rlvr.report import plot_benchmark, plot_training_curves, write_report
from rlvr.report_cli import main as report_main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path, min_bytes: int = 5000) -> None:
    import matplotlib.image

    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > min_bytes
    height, width = matplotlib.image.imread(path).shape[:2]
    assert width > 300 and height > 200


def _eval(name, step, acc, per_task=None, extra=None):
    return {"name": name, "accuracy": acc, "n": 8, "format_rate": 0.5, "parse_rate": 0.75, "mean_completion_tokens": 20.0,
            "truncation_rate": 0.125, "per_task": per_task or {"chain_sum": acc}, "extra": extra or {}, "step": step}


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """A run directory as the pipeline leaves it (config, results, metrics, samples)."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("model:\n  name_or_path: embedded://smollm2-135m-instruct\ndata:\n  task: chain_sum\n")
    base = _eval("baseline", None, 0.25, {"chain_sum": 0.5, "leg_counting": 0.0}, {"pass@4": 0.5, "generation_s": 1.0})
    final = _eval("final", 6, 0.625, {"chain_sum": 0.75, "leg_counting": 0.5}, {"pass@4": 0.875, "generation_s": 1.0})
    mid = _eval("step_3", 3, 0.5)
    results = {"baseline": base, "final": final, "during_training": [mid], "train": {"global_step": 6, "runtime_s": 12.0},
               "data": {"train_rows": 100, "test_rows": 8}}
    (run / "results.json").write_text(json.dumps(results))
    lines = [{"event": "pipeline_start"}, {"event": "eval", **base}]
    lines += [{"event": "train", "step": s, "reward": 0.1 * s, "reward_std": 0.05, "score/accuracy": 0.1 * s} for s in range(1, 7)]
    lines += [{"event": "eval", **mid}, {"event": "eval", **final}, {"event": "pipeline_end", "status": "success"}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    for name in ("baseline", "final"):
        (run / f"samples_{name}.jsonl").write_text(json.dumps(
            {"question": "What is 3 + 4?", "gold": "7", "completion": f"{name} says 7", "extracted": "7",
             "status": "correct"}) + "\n")
    return run


def test_benchmark_plot_is_a_png(tmp_path):
    rows = [{"model": m, "task": t, "accuracy": a} for m, t, a in
            [("base", "chain_sum", 0.2), ("base", "leg_counting", 0.1), ("trained", "chain_sum", 0.7),
             ("trained", "leg_counting", 0.3)]]
    assert plot_benchmark(rows, tmp_path / "acc.png")
    assert_png(tmp_path / "acc.png")
    assert not plot_benchmark([{"model": "m", "task": "t", "accuracy": None}], tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()


def test_training_curves_are_a_png(tmp_path, run_dir):
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert plot_training_curves(records, tmp_path / "curves.png", final_step=6)
    assert_png(tmp_path / "curves.png")
    assert not plot_training_curves([{"event": "pipeline_start"}], tmp_path / "empty.png")


def test_report_holds_config_curves_comparison_and_samples(run_dir):
    path = write_report(run_dir)
    text = path.read_text()
    assert path == run_dir / "report.md"
    assert "**status:** success" in text and "embedded://smollm2-135m-instruct" in text
    assert "| accuracy | 0.250 | 0.625 | +0.375 |" in text
    assert "| pass@4 | 0.500 | 0.875 | +0.375 |" in text and "generation_s" not in text
    assert "| leg_counting | 0.000 | 0.500 |" in text
    assert "| step_3 | 3 | 50.0% |" in text
    assert "baseline says 7" in text and "final says 7" in text
    assert "```yaml\nmodel:" in text
    for image in ("plots/training_curves.png", "plots/baseline_vs_final.png"):
        assert f"]({image})" in text
        assert_png(run_dir / image)


def test_report_of_a_run_that_failed_before_training(tmp_path):
    run = tmp_path / "failed"
    run.mkdir()
    (run / "metrics.jsonl").write_text(json.dumps({"event": "pipeline_end", "status": "failed"}) + "\n")
    text = write_report(run).read_text()
    assert "**status:** failed" in text and "No evaluation was recorded." in text and "config.yaml is missing." in text


def test_report_command(run_dir, capsys):
    assert report_main([str(run_dir), "--samples", "1"]) == 0
    assert (run_dir / "report.md").exists() and str(run_dir / "report.md") in capsys.readouterr().out
    assert report_main([str(run_dir / "nope")]) == 2



def test_report_observer_writes_at_pipeline_end(run_dir):
    observer = ReportObserver(filename="my_report.md", num_samples=1)
    observers = Observers([observer])
    observers.notify("on_pipeline_start", config={}, run_dir=str(run_dir))
    results = json.loads((run_dir / "results.json").read_text())
    observers.notify("on_pipeline_end", status="success", error=None, results=results)
    assert not observers.disabled
    assert observer.path == run_dir / "my_report.md" and "| accuracy | 0.250 | 0.625 |" in observer.path.read_text()


def test_default_observers_include_the_report():
    cfg = load_config([])
    validate(with_defaults(cfg))
    assert cfg.observers.report._target_ == "rlvr.observers.ReportObserver"


def test_overview_shows_command_overrides_and_wall_time(run_dir):
    results = json.loads((run_dir / "results.json").read_text())
    results["run"] = {"overrides": ["train.max_steps=100", "data.task=letter_counting"],
                      "command": "run_pipeline.py train.max_steps=100 data.task=letter_counting",
                      "started_at": "2026-11-23T20:39:14", "wall_time_s": 588.4}
    text = write_report(run_dir, results=results).read_text()
    assert "**command:** `run_pipeline.py train.max_steps=100 data.task=letter_counting`" in text
    assert "**overrides:** `train.max_steps=100` `data.task=letter_counting`" in text
    assert "**started:** 2026-11-23T20:39:14 | **wall time:** 9 min 48 s" in text
    results["run"] = {"overrides": [], "command": "run_pipeline.py", "wall_time_s": 42.0}
    text = write_report(run_dir, results=results).read_text()
    assert "**overrides:** none (the defaults)" in text and "**wall time:** 42.0 s" in text
    assert "**started:**" not in text


def test_overview_of_an_older_run_without_run_info(run_dir):
    text = write_report(run_dir).read_text()  # the fixture's results.json has no "run"
    assert "**status:** success" in text and "**command:**" not in text and "**wall time:**" not in text


def _sample(question, status, completion):
    return {"question": question, "gold": "7", "completion": completion, "status": status,
            "extracted": "7" if status == "correct" else "5"}


def test_samples_show_questions_that_changed_verdict_first(run_dir):
    verdicts = {"q0": ("correct", "correct"), "q1": ("wrong", "wrong"), "q2": ("wrong", "correct"),
                "q3": ("correct", "wrong"), "q4": ("unparseable", "correct"), "q5": ("wrong", "wrong")}
    baseline = [_sample(q, b, f"{q} before") for q, (b, _) in verdicts.items()]
    baseline[4]["correct_of_8"] = 3  # eval.k=8 also sampled
    # In another order: matched by question, not position.
    final = [_sample(q, f, f"{q} after") for q, (_, f) in reversed(verdicts.items())]
    for name, rows in (("baseline", baseline), ("final", final)):
        (run_dir / f"samples_{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = write_report(run_dir, num_samples=3).read_text()
    assert "6 questions matched between baseline and final: **2 fixed** by training" in text
    assert "**1 broken**" in text and "3 unchanged" in text
    shown = [q for q in verdicts if f"**Q:** {q}  " in text]
    assert shown == ["q2", "q3", "q4"]
    assert text.index("**Q:** q2") < text.index("**Q:** q4") < text.index("**Q:** q3")  # fixed, then broken
    q4 = text[text.index("**Q:** q4"):text.index("**Q:** q3")]
    assert "baseline: **unparseable**, extracted `5` · 3/8 sampled correct" in q4 and "q4 before" in q4
    assert "final: **correct**, extracted `7`" in q4 and "q4 after" in q4
    assert "fixed by training (wrong → correct)" in text and "broken by training (correct → wrong)" in text


def test_samples_fall_back_to_the_first_questions_when_nothing_changed(run_dir):
    for name in ("baseline", "final"):
        rows = [_sample(f"q{i}", "correct", f"{name} {i}") for i in range(6)]
        (run_dir / f"samples_{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = write_report(run_dir, num_samples=2).read_text()
    assert "**0 fixed**" in text and "6 unchanged" in text
    assert "**Q:** q0" in text and "**Q:** q1" in text and "**Q:** q2" not in text
    (run_dir / "samples_final.jsonl").unlink()  # only one evaluation: its first completions
    text = write_report(run_dir, num_samples=2).read_text()
    assert "### baseline" in text and "baseline 1" in text and "baseline 2" not in text
