"""Streamed training data (``data.streaming=true``) and the TensorBoard observer survive a kill: the pipeline runs
in a subprocess on a tiny model, is killed with SIGKILL after a checkpoint, and the same command resumes it.

The stream is small on purpose: 5 training rows a pass in blocks of 3 (``data.train_size=5``,
``data.shuffle_buffer=3``), 2 prompts a step, 4 steps: the run crosses a block and a pass, and the kill lands after
step 3, so the resumed run starts from checkpoint-2, one row into the second block. A reward that is the length of
the question makes each step's mean reward a fingerprint of the prompts it trained on: the resumed run's rewards,
losses and final weights equal the uninterrupted run's, so it trained on exactly the same rows in the same order.
TensorBoard's reader shows each step once. SFT resumes the same way (its loss per step is the fingerprint).

Under ``torchrun --nproc_per_node 2`` (gloo on CPU) each rank trains on its slice of every global batch: with
near-greedy sampling the per-step rewards and the prompts' fingerprints equal a one-process run with the same global
batch, and the checkpoint records the same stream position.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import FIXTURES, MULTIPROCESS, REPO, read_jsonl
from tests.faults.ledger import LEDGER, Expected
from tests.integration.test_distributed import launch
from tests.integration.test_resume import env, logged_step, run, train_records, wait_for, weights

QUESTION = "+reward.functions.question={_target_: tests.integration.test_streaming.question_length, _partial_: true}"
VARIETY = "+reward.functions.variety={_target_: tests.unit.orchestration.test_orchestrator.variety, _partial_: true}"


def question_length(completions, question, **_):
    """The length of each completion's question: a step's mean says which prompts it trained on."""
    return [float(len(q)) for q in question]


def command(model_dir: Path, run_dir: Path, train: str) -> list[str]:
    settings = {"grpo": ["train.per_device_train_batch_size=8", "train.num_generations=4",
                         "train.max_completion_length=8", QUESTION, VARIETY],
                "sft": ["train=sft", "train.per_device_train_batch_size=2"]}[train]
    return [sys.executable, str(REPO / "run_pipeline.py"), f"model.name_or_path={model_dir}", "model.dtype=float32",
            "data=gsm8k", f"data.path={FIXTURES / 'gsm8k'}", "data.streaming=true", "data.test_size=4",
            "data.train_size=5", "data.shuffle_buffer=3", "train.max_steps=4", "train.save_steps=2",
            "train.learning_rate=1e-2", "eval.batch_size=4", *settings, "observers=none",
            "+observers.jsonl={_target_: rlvr.observers.JsonlObserver}",
            "+observers.tensorboard={_target_: rlvr.observers.TensorBoardObserver}", f"output_dir={run_dir}"]


@pytest.fixture(scope="module", params=["grpo", "sft"])
def uninterrupted(request, tiny_model_dir, tmp_path_factory) -> tuple[str, Path]:
    run_dir = tmp_path_factory.mktemp(f"uninterrupted-{request.param}")
    run(command(tiny_model_dir, run_dir, request.param), env=env())
    return request.param, run_dir


def test_a_streamed_run_killed_after_a_checkpoint_resumes_on_the_same_rows(tiny_model_dir, tmp_path, uninterrupted):
    train, reference = uninterrupted
    run_dir = tmp_path / "run"
    with LEDGER.trial(f"SIGKILL, streamed data ({train})") as trial:
        proc = subprocess.Popen(command(tiny_model_dir, run_dir, train), env=env(), cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        first = run_dir / "checkpoints" / "checkpoint-2" / "rlvr_state.json"
        wait_for(lambda: first.exists() and logged_step(run_dir, 3), proc)
        proc.kill()
        proc.wait()
        assert (run_dir / "checkpoints" / "checkpoint-2" / "data_state.json").is_file()
        run(command(tiny_model_dir, run_dir, train), env=env())
        lost = trial.done(run_dir, Expected.of(reference), "killed at step 3, resumed")
    assert lost == 0
    mine, theirs = train_records(run_dir), train_records(reference)
    assert [r["step"] for r in mine] == [1, 2, 3, 4]
    fingerprint = "rewards/question/mean" if train == "grpo" else "loss"
    assert len({r[fingerprint] for r in theirs}) > 1  # the steps trained on different rows
    for a, b in zip(mine, theirs, strict=True):
        assert a[fingerprint] == pytest.approx(b[fingerprint], abs=1e-5)
        assert a.get("reward") == pytest.approx(b.get("reward"), abs=1e-5)
    ours, ref = weights(run_dir), weights(reference)
    assert max((ours[k] - ref[k]).abs().max().item() for k in ref) <= 1e-5
    results = read_jsonl(run_dir / "metrics.jsonl")
    assert [r for r in results if r["event"] == "pipeline_start"][-1]["resume_step"] == 2

    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3, 4]  # step 3 of the killed run purged
    assert [round(e.value, 5) for e in events.Scalars("train/loss")] == [round(r["loss"], 5) for r in theirs]
    assert [e.step for e in events.Scalars("eval/accuracy")] == [0, 4]  # baseline, final



@MULTIPROCESS
def test_two_processes_share_each_global_batch_of_the_stream(tiny_model_dir, tmp_path):
    settings = [f"model.name_or_path={tiny_model_dir}", "model.dtype=float32", "data=gsm8k",
                f"data.path={FIXTURES / 'gsm8k'}", "data.streaming=true", "data.test_size=4", "data.shuffle_buffer=3",
                "train.max_steps=2", "train.save_steps=2", "train.num_generations=4", "train.max_completion_length=8",
                "train.temperature=1e-4", "eval.batch_size=4", QUESTION, "observers=none",
                "+observers.jsonl={_target_: rlvr.observers.JsonlObserver}"]
    two, one = tmp_path / "two", tmp_path / "one"
    launch([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            str(REPO / "run_pipeline.py"), *settings, "train.per_device_train_batch_size=4", f"output_dir={two}"],
           cwd=tmp_path)
    launch([sys.executable, str(REPO / "run_pipeline.py"), *settings, "train.per_device_train_batch_size=8",
            f"output_dir={one}"], cwd=tmp_path)
    assert json.loads((two / "results.json").read_text())["run"]["world_size"] == 2
    mine, theirs = train_records(two), train_records(one)
    for a, b in zip(mine, theirs, strict=True):
        for key in ("rewards/question/mean", "reward", "completions/mean_length"):
            assert a[key] == pytest.approx(b[key], abs=1e-6), key
    state = [json.loads((d / "checkpoints" / "checkpoint-2" / "data_state.json").read_text()) for d in (two, one)]
    assert state[0] == state[1] and state[0]["index"] == 4  # 2 steps of 2 prompts


@pytest.mark.slow
def test_embedded_model_smoke_run_streams_and_writes_tensorboard(tmp_path):
    """The README's smoke run on the embedded SmolLM2-135M, GSM8K rows streamed from the committed files, with
    TensorBoard beside the default observers."""
    run_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, str(REPO / "run_pipeline.py"), "experiment=smoke", "data=gsm8k",
                           f"data.path={FIXTURES / 'gsm8k'}", "data.streaming=true", "data.test_size=4",
                           "observers=tensorboard", f"output_dir={run_dir}"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=900, env=env())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["data"]["streaming"] and results["data"]["test_rows"] == 4 and results["final"]["n"] == 4
    assert results["train"]["global_step"] == 2 and results["run"]["status"] == "success"
    assert json.loads((run_dir / "checkpoints" / "checkpoint-2" / "data_state.json").read_text())["index"] == 2

    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    assert [e.step for e in events.Scalars("train/reward")] == [1, 2]
    assert [e.step for e in events.Scalars("eval/accuracy")] == [0, 2]
    assert events.Scalars("eval/accuracy")[-1].value == pytest.approx(results["final"]["accuracy"])
    (table,) = events.Tensors("samples/final/text_summary")
    assert table.tensor_proto.string_val[0].decode().startswith("| question | gold | completion | extracted |")
