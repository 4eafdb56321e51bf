"""``preflight=true`` on the command line: the same overrides as a run, one table, ``preflight.json`` in the run
directory, exit 0 when no check fails and 1 otherwise, 2 for a mistake in its settings; and in a ``-m`` sweep,
every job checked and the sweep's time and cost summed in ``summary.md``."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO

PRICES = f"preflight.prices={REPO / 'infrastructure' / 'aws' / 'prices.yaml'}"


def command(tiny_model_dir, *args: str) -> list[str]:
    return [sys.executable, str(REPO / "run_pipeline.py"), f"model.name_or_path={tiny_model_dir}", "data.train_size=16",
            "data.test_size=4", "train.max_steps=2", "train.per_device_train_batch_size=4", "train.num_generations=4",
            "train.max_completion_length=8", "eval.batch_size=4", "observers=none", "preflight=true", PRICES, *args]


def test_exit_status_table_and_preflight_json(tiny_model_dir, tmp_path):
    proc = subprocess.run(command(tiny_model_dir, "preflight.sample=1", f"output_dir={tmp_path / 'a'}"),
                          capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 1, proc.stderr[-3000:]  # a random model: no readable answer, flat groups
    assert "FAIL flat_groups: " in proc.stdout and "FAIL: " in proc.stdout and "Traceback" not in proc.stderr
    saved = json.loads((tmp_path / "a" / "preflight.json").read_text())
    assert saved["passed"] is False and not (tmp_path / "a" / "results.json").exists()
    proc = subprocess.run(command(tiny_model_dir, "preflight.sample=0", f"output_dir={tmp_path / 'b'}"),
                          capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "PASS: every check passed" in proc.stdout
    assert json.loads((tmp_path / "b" / "preflight.json").read_text())["passed"] is True


def test_a_mistake_in_its_settings_is_one_line_and_exit_2(tiny_model_dir, tmp_path):
    proc = subprocess.run(command(tiny_model_dir, "preflight.smaple=0"), capture_output=True, text=True, cwd=tmp_path,
                          timeout=600)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and lines == ["Config error: Unknown key 'preflight.smaple' for "
                                              "rlvr.preflight.PreflightSettings. Did you mean 'sample'?"]
    assert not (tmp_path / "outputs").exists()


def test_every_job_of_a_sweep_is_checked_and_the_sweep_summed(tiny_model_dir, tmp_path):
    sweep = tmp_path / "sweep"
    args = command(tiny_model_dir, "preflight.sample=1", "preflight.min_parse_rate=0", "preflight.max_flat_groups=1",
                   "preflight.max_truncated_completions=1", "train.max_steps=2,4", f"hydra.sweep.dir={sweep}")
    proc = subprocess.run([*args[:2], "-m", *args[2:]],
                          capture_output=True, text=True, cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    jobs = [json.loads((sweep / n / "preflight.json").read_text()) for n in ("0", "1")]
    assert all(j["passed"] for j in jobs)
    summary = (sweep / "summary.md").read_text()
    assert "2 jobs checked, 2 passed." in summary and "The sweep would take" in summary and "g5.xlarge" in summary
    minutes = sum(next(c for c in j["checks"] if c["name"] == "time")["figures"]["total_s"] for j in jobs) / 60
    said = float(summary.split("The sweep would take ")[1].split(" min of runs")[0])
    assert abs(said - minutes) < 0.1 and "min of runs (2 jobs estimated) and cost under $0.01" in summary
    assert "| train.max_steps | preflight |" in summary
