"""A curriculum run (with flat prompts skipped) survives a kill: killed after its first checkpoint and rerun, it
continues at the same levels, from the same verdicts, on the same rows, and ends with the weights, per-step records
and results of a run that never stopped.

The tiny random model answers nothing right, so the levels only fall: the run starts at level 2 and, with a window
of one step and ``lower_below=0.5``, moves down before steps 2 and 3; a resumed run that lost the state would start
again at level 2. ``prompt_code`` pays a number read from each row's question, so its logged mean names the rows a
step trained on; ``half_flat`` gives half of the prompts flat groups, which ``flat_epochs=1`` then skips.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zlib

from tests.conftest import REPO, read_jsonl, tiny_overrides
from tests.faults.ledger import LEDGER, Expected
from tests.integration.test_resume import env, logged_step, run, wait_for, weights

HERE = "tests.integration.test_curriculum_resume"


def prompt_code(completions, question, **_):
    """The same value for every completion of a question: a code of the question (the rows a step used)."""
    return [zlib.crc32(q.encode()) % 1000 / 1000 for q in question]


def half_flat(completions, question, **_):
    """Distinct characters of each completion for half of the questions, 0 for the other half (flat groups)."""
    return [float(len(set(c))) if zlib.crc32(q.encode()) % 2 else 0.0 for c, q in zip(completions, question)]


def command(model_dir, run_dir) -> list[str]:
    overrides = [o for o in tiny_overrides(model_dir, run_dir) if not o.startswith(("train.max_steps", "observers",
                                                                                     "data.train_size"))]
    return [sys.executable, str(REPO / "run_pipeline.py"), *overrides, "train.max_steps=6", "train.save_steps=2",
            "data.train_size=4", "observers=none", "+observers.jsonl={_target_: rlvr.observers.JsonlObserver}",
            "reward.functions.correctness=null",
            f"+reward.functions.code={{_target_: {HERE}.prompt_code, _partial_: true}}",
            f"+reward.functions.half_flat={{_target_: {HERE}.half_flat, _partial_: true}}",
            "data.curriculum.attributes={chain_sum: {num_terms: [0, 2]}}", "data.curriculum.start={chain_sum: 2}",
            "data.curriculum.window=1", "data.curriculum.lower_below=0.5", "data.difficulty_filter.flat_epochs=1"]


def records(run_dir) -> list[dict]:
    keep = ("step", "rewards/code/mean", "rewards/half_flat/mean", "curriculum/level/chain_sum",
            "flat_prompts/skipped", "flat_prompts/replaced")
    return [{k: r.get(k) for k in keep} for r in read_jsonl(run_dir / "metrics.jsonl") if r["event"] == "train"]


def test_killed_curriculum_run_resumes_at_the_same_levels_on_the_same_rows(tiny_model_dir, tmp_path):
    reference = tmp_path / "uninterrupted"
    run(command(tiny_model_dir, reference), env=env())
    expected = records(reference)
    assert [r["curriculum/level/chain_sum"] for r in expected] == [2.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    assert expected[-1]["flat_prompts/skipped"] > 0  # the flat-prompt state is in play too

    run_dir = tmp_path / "killed"
    with LEDGER.trial("SIGKILL in a curriculum run") as trial:
        proc = subprocess.Popen(command(tiny_model_dir, run_dir), env=env(), cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        first = run_dir / "checkpoints" / "checkpoint-2" / "rlvr_state.json"
        wait_for(lambda: first.exists() and logged_step(run_dir, 3), proc)
        proc.kill()
        proc.wait()
        saved = json.loads(first.read_text())["feed"]
        assert saved["curriculum"]["levels"] == {"chain_sum": 1}  # moved once before step 2
        run(command(tiny_model_dir, run_dir), env=env())
        lost = trial.done(run_dir, Expected.of(reference), "killed at step 3, resumed from checkpoint-2")
    assert lost == 0
    assert records(run_dir) == expected
    ours, ref = weights(run_dir), weights(reference)
    assert max((ours[k] - ref[k]).abs().max().item() for k in ref) <= 1e-5
    results, reference_results = (json.loads((d / "results.json").read_text()) for d in (run_dir, reference))
    assert results["train"]["resumed_from_step"] == 2
    assert results["curriculum"] == reference_results["curriculum"]
    assert results["flat_prompts"] == reference_results["flat_prompts"]
    assert [(c["step"], c["from"], c["to"]) for c in results["curriculum"]["changes"]] == [(2, 2, 1), (3, 1, 0)]
    assert set(results["final"]["per_level"]) == {"chain_sum/L0", "chain_sum/L1", "chain_sum/L2"}
