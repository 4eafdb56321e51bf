"""The real pipeline, end to end, on the embedded SmolLM2-135M for two steps: the README's command with the
smoke overlay. Checks every artefact a user is promised and that the saved model loads with transformers."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, read_jsonl


@pytest.mark.slow
def test_embedded_pipeline_end_to_end(tmp_path):
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, str(REPO / "run_pipeline.py"), "experiment=smoke", f"output_dir={run_dir}"],
        capture_output=True, text=True, cwd=tmp_path, timeout=900, env=env,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert f"run directory: {run_dir}" in out and "step 2/2" in out and "accuracy" in out

    results = json.loads((run_dir / "results.json").read_text())
    for key in ("baseline", "final"):
        assert results[key]["n"] == 8 and 0.0 <= results[key]["accuracy"] <= 1.0
        assert set(results[key]) >= {"format_rate", "parse_rate", "mean_completion_tokens", "truncation_rate"}
    assert results["baseline"]["parse_rate"] > 0.5, "the embedded model should answer with numbers"
    assert results["train"]["global_step"] == 2
    train_lines = [r for r in read_jsonl(run_dir / "metrics.jsonl") if r["event"] == "train"]
    assert len(train_lines) == 2
    for line in train_lines:
        assert {"loss", "reward", "reward_std", "frac_reward_zero_std", "completions/clipped_ratio",
                "score/parse_rate", "score/unparseable_rate", "rewards/correctness/mean"} <= set(line)
    assert read_jsonl(run_dir / "samples_final.jsonl")[0]["completion"]

    from transformers import AutoModelForCausalLM

    assert not (run_dir / "model").exists()  # a trial saves no 540 MB model (experiment=smoke: save_model=false)
    checkpoint = run_dir / "checkpoints" / "checkpoint-2"  # the last step is a checkpoint, and it loads
    assert (checkpoint / "rlvr_state.json").is_file()
    model = AutoModelForCausalLM.from_pretrained(checkpoint)
    assert model.num_parameters() > 100_000_000
