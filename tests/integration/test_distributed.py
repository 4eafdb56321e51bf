"""Two processes over gloo on CPU (``torchrun --nproc_per_node 2``; ``accelerate launch --cpu`` would start one):
the pipeline runs as one job across both ranks.

- Both ranks train (world size 2 is recorded, and each rank wrote its RNG state into the checkpoint).
- One run directory, though neither rank was given ``output_dir``; one ``results.json``; one metrics record per
  step; rank 0 alone writes the log.
- Evaluation is sharded across the ranks and gathered, and training splits each global batch across them: with
  (near-)greedy sampling, the per-step rewards, completion lengths and every evaluation completion equal a
  single-process run with the same global batch (to 1e-6). With real sampling each rank draws its own samples,
  so the runs agree only in distribution.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MULTIPROCESS, REPO, read_jsonl
from tests.integration.test_resume import env

pytestmark = MULTIPROCESS

SETTINGS = [
    "model.dtype=float32", "data.train_size=16", "data.test_size=6", "eval.batch_size=4", "train.max_steps=2",
    "train.num_generations=4", "train.max_completion_length=8", "train.temperature=1e-4", "train.save_steps=2",
    "observers=none", "+observers.jsonl={_target_: rlvr.observers.JsonlObserver}",
]


def launch(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=cwd,
                          env={**env(), "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def runs(tiny_model_dir, tmp_path_factory) -> tuple[Path, Path]:
    where = tmp_path_factory.mktemp("ddp")
    model = f"model.name_or_path={tiny_model_dir}"
    launch([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            str(REPO / "run_pipeline.py"), model, *SETTINGS, "train.per_device_train_batch_size=4"], cwd=where)
    (two,) = list((where / "outputs").glob("*/*"))  # one run directory, chosen by rank 0
    single = where / "single"
    launch([sys.executable, str(REPO / "run_pipeline.py"), model, *SETTINGS, "train.per_device_train_batch_size=8",
            f"output_dir={single}"], cwd=where)
    return two, single


def test_both_ranks_train_into_one_run_directory(runs):
    two, _ = runs
    results = json.loads((two / "results.json").read_text())
    assert results["run"]["world_size"] == 2 and results["run"]["status"] == "success"
    assert results["train"]["global_step"] == 2
    checkpoint = two / "checkpoints" / "checkpoint-2"
    assert (checkpoint / "rng_state_0.pth").is_file() and (checkpoint / "rng_state_1.pth").is_file()
    assert (checkpoint / "rlvr_state.json").is_file() and (two / "model" / "model.safetensors").is_file()
    records = read_jsonl(two / "metrics.jsonl")
    assert [r["step"] for r in records if r["event"] == "train"] == [1, 2]
    assert [r["event"] for r in records].count("pipeline_start") == 1
    log = (two / "run_pipeline.log").read_text()
    assert log.count("parameters trainable") == 1  # rank 0 alone writes the log (both loaded the model)


def test_metrics_and_sharded_evaluation_match_one_process_with_the_same_global_batch(runs):
    two, single = runs
    mine = [r for r in read_jsonl(two / "metrics.jsonl") if r["event"] == "train"]
    theirs = [r for r in read_jsonl(single / "metrics.jsonl") if r["event"] == "train"]
    for a, b in zip(mine, theirs, strict=True):
        for key in ("reward", "completions/mean_length", "score/parse_rate"):
            assert a[key] == pytest.approx(b[key], abs=1e-6), key
    for name in ("baseline", "final"):
        ours, ref = read_jsonl(two / f"samples_{name}.jsonl"), read_jsonl(single / f"samples_{name}.jsonl")
        assert len(ours) == 6 and [s["completion"] for s in ours] == [s["completion"] for s in ref]
        a, b = (json.loads((d / "results.json").read_text())[name] for d in (two, single))
        assert a["n"] == b["n"] == 6 and a["accuracy"] == b["accuracy"]
        assert a["mean_completion_tokens"] == pytest.approx(b["mean_completion_tokens"], abs=1e-6)
