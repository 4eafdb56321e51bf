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


def test_a_prm_run_killed_while_labelling_resumes_from_its_cached_labels(prm_run, tiny_model_dir, tmp_path):
    """SIGKILL as soon as the first problem's labels are on disk: the rerun (resume=auto, the same command) reads
    every problem labelled before the kill from the cache instead of sampling it again, labels the rest once, and
    ends with the weights of the uninterrupted run."""
    import re
    import subprocess
    import sys

    from safetensors.torch import load_file

    from tests.conftest import REPO
    from tests.integration.test_resume import env, run, wait_for

    reference, _ = prm_run
    run_dir = tmp_path / "run"
    shrunk = [o for o in tiny_overrides(tiny_model_dir, run_dir) if not o.startswith("train.num_generations")]
    command = [sys.executable, str(REPO / "run_pipeline.py"), *shrunk, "train=prm", "train.label_prompts=4",
               "train.solutions_per_prompt=2", "train.rollouts=2", "train.step_separator=' '", "eval.n=4"]

    def labelled() -> list[str]:
        return [line for path in (run_dir / "checkpoints").glob("step_labels-*.jsonl")
                for line in path.read_text().splitlines(keepends=True) if line.endswith("\n")]

    proc = subprocess.Popen(command, env=env(), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: run_dir.joinpath("checkpoints").is_dir() and labelled(), proc)
    proc.kill()
    proc.wait()
    before = labelled()

    again = run(command, env=env())
    found = re.search(r"step labels: (\d+) of 4 problems read from", again.stdout + again.stderr)
    assert found and int(found.group(1)) == len(before), (len(before), (again.stdout + again.stderr)[-2000:])
    after = labelled()
    assert len(after) == 4 and after[: len(before)] == before  # each problem labelled once, the first ones kept
    (theirs_cache,) = (reference / "checkpoints").glob("step_labels-*.jsonl")
    assert "".join(after) == theirs_cache.read_text()  # the same labels as the uninterrupted run
    ours = load_file(run_dir / "model" / "model.safetensors")
    theirs = load_file(reference / "model" / "model.safetensors")
    assert max((ours[k] - theirs[k]).abs().max().item() for k in theirs) <= 1e-5
    assert json.loads((run_dir / "results.json").read_text())["run"]["status"] == "success"
