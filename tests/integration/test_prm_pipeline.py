"""A process reward model end to end on a tiny model, as a user runs it: train=prm (Math-Shepherd labels from the
verifier, the PRM trained and evaluated by best-of-N), then a policy loop rewarded by the verifier and the PRM
(reward=verifier_prm pointing at the first run's model/), logging the PRM's reward and failures. And train=prm at
smoke size on the embedded SmolLM2-135M."""

from __future__ import annotations

import json

import pytest

from rlvr.orchestration import build_pipeline
from tests.conftest import compose, tiny_overrides


@pytest.fixture(scope="module")
def prm_run(tiny_model_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("prm")
    shrunk = [o for o in tiny_overrides(tiny_model_dir, run) if not o.startswith("train.num_generations")]
    cfg = compose([*shrunk, "train=prm", "train.label_prompts=4", "train.solutions_per_prompt=2", "train.rollouts=2",
                   "train.step_separator=' '", "eval.n=4"])
    return run, build_pipeline(cfg).run(run)


def test_train_prm_labels_trains_and_reranks(prm_run):
    run, results = prm_run
    assert results["run"]["status"] == "success" and results["train"]["global_step"] == 2
    (cache,) = (run / "checkpoints").glob("step_labels-*.jsonl")
    labelled = [json.loads(line) for line in cache.read_text().splitlines()]
    assert [r["problem"] for r in labelled] == [0, 1, 2, 3]
    for solution in (s for r in labelled for s in r["solutions"]):
        assert len(solution["labels"]) == len(solution["steps"])
    assert results["baseline"]["n"] == results["final"]["n"] == 4
    assert set(results["final"]["extra"]) >= {"pass@1", "pass@4", "maj@4"}
    assert json.loads((run / "model" / "config.json").read_text())["architectures"] == ["LlamaForTokenClassification"]


@pytest.mark.parametrize("train", ["grpo", "ppo"])
def test_a_policy_loop_is_rewarded_by_the_verifier_and_the_prm(prm_run, tiny_model_dir, tmp_path, train):
    run, _ = prm_run
    overrides = tiny_overrides(tiny_model_dir, tmp_path)
    if train == "ppo":
        overrides = [o for o in overrides if not o.startswith(("train.num_generations", "train.per_device"))]
        overrides += ["train=ppo", "train.prompts_per_step=4", "train.mini_batch_size=2"]
    cfg = compose([*overrides, "reward=verifier_prm", f"reward.functions.prm.path={run / 'model'}",
                   "reward.weights.prm=0.5", "reward.isolation=thread"])
    results = build_pipeline(cfg).run(tmp_path)
    assert results["run"]["status"] == "success" and results["train"]["global_step"] == 2
    for step in results["train_history"]:
        assert 0 < step["rewards/prm/mean"] < 1 and step["reward_failures/prm"] == 0


@pytest.mark.slow
def test_train_prm_at_smoke_size_on_the_embedded_model(tmp_path):
    from transformers import AutoModelForTokenClassification

    """experiment=smoke's sizes (its GRPO settings are no settings of train=prm): 2 steps, 16-token completions."""
    cfg = compose(["train=prm", "train.max_steps=2", "train.per_device_train_batch_size=4",
                   "train.max_completion_length=16", "data.train_size=32", "data.test_size=4", "train.label_prompts=2",
                   "train.solutions_per_prompt=2", "train.rollouts=2", "train.save_steps=0", "eval.n=2",
                   "observers=none", f"output_dir={tmp_path}"])
    results = build_pipeline(cfg).run(tmp_path)
    assert results["run"]["status"] == "success" and results["train"]["global_step"] == 2
    assert results["final"]["n"] == 4 and 0 <= results["final"]["accuracy"] <= 1
    assert results["final"]["extra"]["pass@1"] == results["baseline"]["accuracy"]  # the same samples, reranked
    (cache,) = (tmp_path / "checkpoints").glob("step_labels-*.jsonl")
    assert len(cache.read_text().splitlines()) == 2
    model = AutoModelForTokenClassification.from_pretrained(tmp_path / "model")
    assert model.num_parameters() > 100_000_000 and model.config.step_separator == "\n"


# Loaded at start-up by the runs of the kill test (a sitecustomize.py on PYTHONPATH): records each problem the run
# labels (RLVR_TEST_LABELLED: a file, one index a line) and opens a window for the kill: labelling problem
# RLVR_TEST_SLOW_PROBLEM, or fsyncing checkpoint RLVR_TEST_SLOW_CHECKPOINT, takes a minute.
HOOKS = '''
import os
import time

import rlvr.data.step_labels as step_labels
import rlvr.files as files

_label_problem, _fsync_tree = step_labels.label_problem, files.fsync_tree


def label_problem(*args, index, **kwargs):
    with open(os.environ["RLVR_TEST_LABELLED"], "a") as log:
        log.write(f"{index}\\n")
    if str(index) == os.environ.get("RLVR_TEST_SLOW_PROBLEM"):
        time.sleep(60)
    return _label_problem(*args, index=index, **kwargs)


def fsync_tree(root):
    slow = os.environ.get("RLVR_TEST_SLOW_CHECKPOINT")
    if slow and str(root).endswith(slow):
        time.sleep(60)
    _fsync_tree(root)


step_labels.label_problem, files.fsync_tree = label_problem, fsync_tree
'''


def test_a_prm_run_killed_while_labelling_then_while_training_resumes_from_its_cached_labels(prm_run, tiny_model_dir,
                                                                                            tmp_path):
    """SIGKILL while labelling (problems 0 and 1 cached, 2 being labelled), then the same command SIGKILLed while
    training (checkpoint-1 complete, checkpoint-2 being written), then the same command to the end (resume=auto):
    every problem is labelled exactly once over the three runs, the second run reads the first's labels from the
    cache, the third reads them all and continues from step 1; the labels and final weights are the uninterrupted
    run's."""
    import re
    import subprocess
    import sys

    from safetensors.torch import load_file

    from tests.conftest import REPO
    from tests.integration.test_resume import env, wait_for

    reference, _ = prm_run
    hooks, run_dir, labelled_log, console = (tmp_path / n for n in ("hooks", "run", "labelled.txt", "console.txt"))
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(HOOKS)
    shrunk = [o for o in tiny_overrides(tiny_model_dir, run_dir) if not o.startswith("train.num_generations")]
    command = [sys.executable, str(REPO / "run_pipeline.py"), *shrunk, "train=prm", "train.label_prompts=4",
               "train.solutions_per_prompt=2", "train.rollouts=2", "train.step_separator=' '", "eval.n=4",
               "train.save_steps=1"]

    def labelled() -> list[str]:
        return [line for path in (run_dir / "checkpoints").glob("step_labels-*.jsonl")
                for line in path.read_text().splitlines(keepends=True) if line.endswith("\n")]

    def start(**hook_env: str) -> subprocess.Popen:
        labelled_log.write_text("")
        with console.open("w") as out:  # a file, not a pipe: nothing blocks a run the test does not read
            return subprocess.Popen(command, env={**env(hooks), "RLVR_TEST_LABELLED": str(labelled_log), **hook_env},
                                    cwd=REPO, stdout=out, stderr=subprocess.STDOUT)

    def kill_when(condition, proc: subprocess.Popen) -> str:
        wait_for(condition, proc)
        proc.kill()
        proc.wait()
        return console.read_text()

    def read_from_cache(output: str) -> int:
        found = re.search(r"step labels: (\d+) of 4 problems read from", output)
        return int(found.group(1)) if found else 0

    # 1. killed while labelling problem 2
    first = start(RLVR_TEST_SLOW_PROBLEM="2")
    kill_when(lambda: labelled_log.read_text() == "0\n1\n2\n", first)
    assert [json.loads(line)["problem"] for line in labelled()] == [0, 1]

    # 2. killed while writing checkpoint-2, after checkpoint-1
    second = start(RLVR_TEST_SLOW_CHECKPOINT="checkpoint-2")
    staging = run_dir / "checkpoints" / ".checkpoint-2.tmp" / "checkpoint-2" / "trainer_state.json"
    output = kill_when(staging.exists, second)
    assert read_from_cache(output) == 2 and labelled_log.read_text() == "2\n3\n", output[-3000:]
    assert (run_dir / "checkpoints" / "checkpoint-1" / "rlvr_state.json").is_file()

    # 3. to the end: nothing labelled again, training continues from checkpoint-1
    third = start()
    third.wait(timeout=600)
    output = console.read_text()
    assert third.returncode == 0, output[-3000:]
    assert read_from_cache(output) == 4 and labelled_log.read_text() == "", output[-3000:]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["run"]["status"] == "success" and results["train"]["resumed_from_step"] == 1
    assert results["train"]["global_step"] == 2
    (theirs_cache,) = (reference / "checkpoints").glob("step_labels-*.jsonl")
    assert "".join(labelled()) == theirs_cache.read_text()  # the same labels as the uninterrupted run
    ours = load_file(run_dir / "model" / "model.safetensors")
    theirs = load_file(reference / "model" / "model.safetensors")
    assert max((ours[k] - theirs[k]).abs().max().item() for k in theirs) <= 1e-5
