"""A Hydra sweep (`-m`) runs one pipeline per value, each in its own directory with its own results."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO


def test_multirun_sweep_writes_one_run_per_value(tiny_model_dir, tmp_path):
    sweep = tmp_path / "sweep"
    proc = subprocess.run(
        [sys.executable, str(REPO / "run_pipeline.py"), "-m", f"model.name_or_path={tiny_model_dir}",
         "data.train_size=16", "data.test_size=4", "train.max_steps=1", "train.per_device_train_batch_size=4",
         "train.num_generations=4", "train.max_completion_length=8", "train.learning_rate=1e-3,1e-2",
         "observers=none", f"hydra.sweep.dir={sweep}"],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert [p.name for p in runs] == ["0", "1"]
    rates = []
    for run in runs:
        assert json.loads((run / "results.json").read_text())["train"]["global_step"] == 1
        rates.append(float((run / "config.yaml").read_text().split("learning_rate:")[1].split()[0]))
    assert rates == [1e-3, 1e-2]
