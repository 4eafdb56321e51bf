"""Control runs (``control=random_reward|format_only``): what the verifier teaches, told apart from what training
teaches anyway. The coin flips have the batch's accuracy, carry no information about correctness and are the same
when a resumed run flips them again; format_only keeps the format rewards; the sweep summary and the real run's
report say how much of the gain the verifier explains."""

from __future__ import annotations

import random

from rlvr.interfaces import Score
from rlvr.report.sweep import write_summary
from rlvr.rewards import Correctness, LengthShaping, RewardSuite, StrictFormat
from rlvr.scoring import NumberVerifier, Scorer
from rlvr.scoring.formats import AnswerFormat
from tests.conftest import build_group, compose
from tests.unit.report.test_sweep import evaluation, job

FMT = AnswerFormat(answer_tag="answer", fallback_last_number=False)


def batch(n: int, accuracy: float, seed: int = 0) -> tuple[list[str], list[Score], dict]:
    rng = random.Random(seed)
    right = [rng.random() < accuracy for _ in range(n)]
    texts = [f"<answer>{7 if r else 8}</answer> #{i}" for i, r in enumerate(right)]
    scorer = Scorer(FMT, NumberVerifier())
    columns = {"answer": ["7"] * n}
    return texts, [scorer(t, {"answer": "7"}) for t in texts], columns


def test_random_reward_is_a_coin_at_the_batch_accuracy_independent_of_correctness():
    suite = RewardSuite({"correctness": Correctness(), "format": StrictFormat()}, isolation="thread",
                        control="random_reward")
    texts, scores, columns = batch(4000, 0.3)
    scorer = Scorer(FMT, NumberVerifier())
    paid = suite.call("correctness", texts, scores, scorer, columns, step=5)
    truth = [s.correct for s in scores]
    mean = sum(paid) / len(paid)
    assert abs(mean - sum(truth) / len(truth)) < 0.03  # the same mean reward
    right = [p for p, t in zip(paid, truth) if t]
    wrong = [p for p, t in zip(paid, truth) if not t]
    assert abs(sum(right) / len(right) - sum(wrong) / len(wrong)) < 0.05  # no information about correctness
    assert suite.call("correctness", texts, scores, scorer, columns, step=5) == paid  # a resume flips the same coins
    assert suite.call("correctness", texts, scores, scorer, columns, step=6) != paid  # another step, other coins
    # format is not a correctness reward: untouched
    assert suite.call("format", texts, scores, scorer, columns, step=5) == [0.0] * len(texts)
    suite.close()


def test_without_a_control_the_verdict_is_paid():
    suite = RewardSuite({"correctness": Correctness()}, isolation="thread")
    texts, scores, columns = batch(200, 0.5)
    assert suite.call("correctness", texts, scores, Scorer(FMT, NumberVerifier()), columns) == [
        1.0 if s.correct else 0.0 for s in scores]
    suite.close()


def test_format_only_keeps_the_format_rewards_or_the_prompts_exact_format():
    kept = RewardSuite({"correctness": Correctness(), "format": StrictFormat(), "length": LengthShaping()},
                       weights={"format": 0.2}, isolation="thread", control="format_only")
    assert list(kept.functions) == ["format"] and kept.weights == {"format": 0.2}
    added = RewardSuite({"correctness": Correctness()}, isolation="thread", control="format_only")
    assert list(added.functions) == ["format"] and isinstance(added.functions["format"], StrictFormat)


def test_the_control_group_sets_the_reward_control():
    for option in ("none", "random_reward", "format_only"):
        suite = build_group(compose([f"control={option}"]), "reward")
        assert suite.control == option


def test_the_summary_and_the_real_runs_report_say_what_the_verifier_explains(tmp_path):
    for num, (control, final) in enumerate([("none", 0.75), ("random_reward", 0.5), ("format_only", 0.55)]):
        d = job(tmp_path, num, [f"control={control}"], {
            "baseline": evaluation(0.45), "final": evaluation(final), "run": {"status": "success"}})
        (d / "report.md").write_text("# Run\n")
    write_summary(tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    assert "## Controls" in summary and "The real run gains +30.0 points held-out" in summary
    assert "| random_reward | +5.0 points | 83% |" in summary and "| format_only | +10.0 points | 67% |" in summary
    report = (tmp_path / "0" / "report.md").read_text()
    assert "share of the real gain the verifier explains" in report and "| format_only | +10.0 points | 67% |" in report
    assert "Controls" not in (tmp_path / "1" / "report.md").read_text()


def test_a_control_that_loses_accuracy_leaves_all_of_the_gain_to_the_verifier(tmp_path):
    """Measured on the default recipe: random rewards took the model from 45.8% to 14.6% while the real run gained 31
    points; "200% explained" would read as an error."""
    for num, (control, final) in enumerate([("none", 0.77), ("random_reward", 0.15)]):
        job(tmp_path, num, [f"control={control}"], {
            "baseline": evaluation(0.45), "final": evaluation(final), "run": {"status": "success"}})
    write_summary(tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    assert "| random_reward | -30.0 points | all (the control lost 30.0 points) |" in summary
