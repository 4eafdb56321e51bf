"""Self-improvement at smoke size on the embedded SmolLM2-135M with the real verifier (the tiny-model tests in
``test_self_improvement.py`` cover the kills and resumes): ``train=expert_iteration`` and
``experiment=grpo_self_play``, each two rounds under ``experiment=smoke``'s caps, end to end."""

from __future__ import annotations

import pytest

from rlvr.orchestration import build_pipeline
from tests.conftest import compose


@pytest.mark.slow
def test_expert_iteration_at_smoke_size_on_the_embedded_model(tmp_path):
    cfg = compose(["experiment=smoke", "train=expert_iteration", "observers=none", f"output_dir={tmp_path}"])
    results = build_pipeline(cfg).run(tmp_path)
    assert results["run"]["status"] == "success"
    assert [s["name"] for s in results["stages"]] == ["round1", "round2"]
    assert any(s["train"]["global_step"] == 2 for s in results["stages"])  # a round fine-tuned on verified samples
    assert all(0 <= s["evaluation"]["accuracy"] <= 1 and s["evaluation"]["n"] == 8 for s in results["stages"])


@pytest.mark.slow
def test_grpo_self_play_at_smoke_size_on_the_embedded_model(tmp_path):
    cfg = compose(["experiment=[grpo_self_play,smoke]", "observers=none", f"output_dir={tmp_path}"])
    results = build_pipeline(cfg).run(tmp_path)
    assert results["run"]["status"] == "success"
    assert [s["name"] for s in results["stages"]] == ["round1", "round2"]
    for stage in results["stages"]:  # each round validated (perplexity under the start, self-consistency) and gated
        assert {"ref_perplexity", "self_consistency"} <= set(stage["evaluation"]["extra"]) | set(stage["evaluation"])
        assert "passed" in stage["gate"]
