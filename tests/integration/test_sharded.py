"""FSDP2 and DeepSpeed ZeRO-2/ZeRO-3 across two CPU processes, launched as the README says
(``accelerate launch --config_file launch/<config>.yaml --num_processes 2 run_pipeline.py ...``; on CPU accelerate
would fall back to DDP, so :func:`rlvr.distributed.trainer_arguments` sets its state up: the sharding itself is
accelerate's, torch's and DeepSpeed's own code).

For each config, ``experiment=sft_then_grpo`` on the tiny model with the regression gate refusing every stage (so
the rollback runs on sharded weights), killed (SIGKILL, the whole process group) right after the GRPO stage's
first checkpoint and started again with the same command; compared with one uninterrupted process with the same
global batch:

- both ranks trained (world size 2), and the checkpoints are sharded (FSDP: ``pytorch_model_fsdp_0/`` and
  ``optimizer_0/``, one file per rank; ZeRO: every rank's optimizer partition, with ZeRO-3 its weights too);
- the rerun resumed from that sharded checkpoint, and every step is logged once;
- SFT (deterministic data) logs the same per-step loss and gradient norm within 1e-5 relative: float32 sums in
  another order (measured 2026-12-04: loss 1.0e-7 relative for FSDP2 and ZeRO-3, gradient norm up to 3.1e-7);
- GRPO with near-greedy sampling (each rank draws its own samples; temperature 1e-4 makes them the argmax) logs
  the same per-step rewards and completion lengths within 1e-6 (measured: equal), and every evaluation (the
  baseline, after SFT, after GRPO) generates the same completions as one process, so the trained sharded weights
  are the one-process run's;
- both stages rolled back, the saved model is the starting model bit for bit (restored shard by shard, gathered).

GRPO's groups are flat here (identical near-greedy completions, zero advantages), so its update is zero in both
runs; SFT is what checks that sharded training computes the one-process update.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from safetensors.torch import load_file

from tests.conftest import MULTIPROCESS, REPO, read_jsonl
from tests.integration.test_resume import env, wait_for

pytestmark = MULTIPROCESS

SFT_STEPS, GRPO_STEPS = 2, 2


def overrides(model_dir: Path, run_dir: Path, processes: int) -> list[str]:
    """The same global batch for any number of processes: SFT 4 completions a step, GRPO 2 prompts x 4."""
    sft, grpo = "pipeline.stages.sft", "pipeline.stages.grpo"
    return [
        "experiment=sft_then_grpo", f"model.name_or_path={model_dir}", "model.dtype=float32", "data.train_size=16",
        "data.test_size=4", "eval.batch_size=4", f"output_dir={run_dir}", "pipeline.gate.max_drop=-1",
        f"{sft}.max_steps={SFT_STEPS}", f"{sft}.per_device_train_batch_size={4 // processes}", f"{sft}.save_steps=2",
        f"{sft}.learning_rate=1e-2", f"{grpo}.max_steps={GRPO_STEPS}",
        f"{grpo}.per_device_train_batch_size={8 // processes}",
        f"{grpo}.num_generations=4", f"{grpo}.max_completion_length=8", f"{grpo}.learning_rate=1e-2",
        f"{grpo}.save_steps=1", f"{grpo}.temperature=1e-4",
        "observers=none", "+observers.jsonl={_target_: rlvr.observers.JsonlObserver}",
    ]


def launch(config: str, model_dir: Path, run_dir: Path) -> list[str]:
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
            str(REPO / "launch" / f"{config}.yaml"), "--num_processes", "2", str(REPO / "run_pipeline.py"),
            *overrides(model_dir, run_dir, 2)]


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the launcher and every process under it (any that already ended are passed over)."""
    try:
        processes = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        processes = []
    for process in processes:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    proc.wait()


def run(cmd: list[str], cwd: Path) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=cwd,
                          env={**env(), "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]


def train_records(run_dir: Path) -> list[dict]:
    return [r for r in read_jsonl(run_dir / "metrics.jsonl") if r["event"] == "train"]


def completions(run_dir: Path, name: str) -> list[str]:
    (path,) = run_dir.glob(f"**/samples_{name}.jsonl")
    return [s["completion"] for s in read_jsonl(path)]


@pytest.fixture(scope="module")
def one_process(tiny_model_dir, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("one-process") / "run"
    run([sys.executable, str(REPO / "run_pipeline.py"), *overrides(tiny_model_dir, run_dir, 1)], cwd=run_dir.parent)
    return run_dir


@pytest.mark.parametrize("config", ["fsdp", "zero2", "zero3"])
def test_two_processes_sharded_killed_and_resumed_match_one_process(config, tiny_model_dir, tmp_path, one_process):
    run_dir = tmp_path / "run"
    first = run_dir / "stages" / "2-grpo" / "checkpoints" / "checkpoint-1" / "rlvr_state.json"
    log = tmp_path / "first.log"
    with log.open("w") as out:
        proc = subprocess.Popen(launch(config, tiny_model_dir, run_dir), cwd=tmp_path,
                                env={**env(), "OMP_NUM_THREADS": "1"}, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(first.exists, proc, timeout=600)
    except AssertionError as err:
        raise AssertionError(f"{err}\n{log.read_text()[-4000:]}") from None
    finally:  # the launcher and both ranks (torchrun starts the ranks in sessions of their own)
        kill_tree(proc)
    assert not (run_dir / "stages" / "2-grpo" / "stage.json").exists()  # killed inside the stage

    run(launch(config, tiny_model_dir, run_dir), cwd=tmp_path)  # the same command again
    results = json.loads((run_dir / "results.json").read_text())
    assert results["run"]["world_size"] == 2 and results["run"]["status"] == "success"
    assert results["run"]["resumed_from"].endswith("stages/2-grpo/checkpoints/checkpoint-1")
    assert [s["train"]["global_step"] for s in results["stages"]] == [SFT_STEPS, GRPO_STEPS]
    assert [s["kept"] for s in results["stages"]] == [False, False]  # the gate refused both: rolled back

    checkpoint = run_dir / "stages" / "2-grpo" / "checkpoints" / "checkpoint-2"
    files = {str(p.relative_to(checkpoint)) for p in checkpoint.rglob("*") if p.is_file()}
    assert {"rng_state_0.pth", "rng_state_1.pth"} <= files
    if config == "fsdp":  # each rank wrote its shard of the weights and of the optimizer state
        assert {f"{d}/__{r}_0.distcp" for d in ("pytorch_model_fsdp_0", "optimizer_0") for r in (0, 1)} <= files
        assert "model.safetensors" not in files
    else:
        partitions = {f"global_step{GRPO_STEPS}/bf16_zero_pp_rank_{r}_mp_rank_00_optim_states.pt" for r in (0, 1)} | {
            f"global_step{GRPO_STEPS}/zero_pp_rank_{r}_mp_rank_00_optim_states.pt" for r in (0, 1)}
        assert len(partitions & files) == 2, sorted(files)
        if config == "zero3":
            assert f"global_step{GRPO_STEPS}/zero_pp_rank_1_mp_rank_00_model_states.pt" in files

    mine, theirs = train_records(run_dir), train_records(one_process)
    assert [r["step"] for r in mine] == list(range(1, SFT_STEPS + GRPO_STEPS + 1))  # each step once
    for a, b in zip(mine[:SFT_STEPS], theirs[:SFT_STEPS], strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5) and a["grad_norm"] == pytest.approx(b["grad_norm"],
                                                                                                  rel=1e-5)
    for a, b in zip(mine[SFT_STEPS:], theirs[SFT_STEPS:], strict=True):
        for key in ("reward", "completions/mean_length"):
            assert a[key] == pytest.approx(b[key], abs=1e-6), key
    for name in ("baseline", "sft", "grpo"):
        assert completions(run_dir, name) == completions(one_process, name), name

    base, saved = load_file(tiny_model_dir / "model.safetensors"), load_file(run_dir / "model" / "model.safetensors")
    assert all(saved[k].equal(v) for k, v in base.items())  # every stage rolled back, exactly
