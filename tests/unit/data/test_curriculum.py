"""data.curriculum: levels from reasoning-gym's own curricula, moved by scripted verdicts; rows and held-out sets per
level; a mixture with a level per task; the state a resumed run needs; config errors in one line, before loading."""

from __future__ import annotations

import json

import pytest

from rlvr.data import PromptTemplate, ReasoningGymData
from rlvr.data.curriculum import Curriculum, CurriculumSettings, TaskLevels, plan
from rlvr.data.reasoning_gym import check_task_params
from rlvr.errors import ConfigError
from rlvr.orchestration import build_pipeline
from tests.conftest import compose

ONE_DIGIT = {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1}


def fake_rows(task, params, size, seed, level):
    """Rows that say where they come from (no reasoning-gym generation): the unit tests of the level logic."""
    return [{"prompt": [{"role": "user", "content": f"{level} {seed} {i}"}], "question": f"{level}:{seed}:{i}",
             "answer": "0", "task": task, "entry": json.dumps(params), "level": level} for i in range(size)]


def curriculum(window=2, raise_above=0.7, lower_below=0.2, ranges=None, tasks=("chain_sum",), start=None):
    settings = CurriculumSettings(attributes={t: dict(ranges or {"num_terms": [0, 3]}) for t in tasks},
                                  start=dict(start or {}), raise_above=raise_above, lower_below=lower_below,
                                  window=window)
    levels = plan(settings, {t: ONE_DIGIT for t in tasks}, check_task_params)
    return Curriculum(settings, levels, fake_rows)


def verdicts(cur, step, task, right, n=8):
    """One step of ``n`` completions of ``task``, ``right`` of them correct."""
    cur.observe(step, [{"task": task}] * n, [True] * right + [False] * (n - right))


def test_levels_follow_a_scripted_accuracy_sequence():
    """Window 2, up above 0.7, down below 0.2: a move needs two steps of verdicts at the current level."""
    cur = curriculum()
    script = [8, 8, 8, 8, 1, 1, 0, 0, 4, 8, 8, 8]  # correct of 8 at steps 1..12
    levels = []
    for step, right in enumerate(script, start=1):
        cur.decide(step)
        levels.append(cur.tasks["chain_sum"].level)
        verdicts(cur, step, "chain_sum", right)
    assert levels == [0, 0, 1, 1, 2, 2, 1, 1, 0, 0, 1, 1]
    # before step 3: steps 1-2 at 100% > 0.7, up; before 5: steps 3-4, up; before 7: steps 5-6 at 12.5% < 0.2,
    # down; before 9: steps 7-8 at 0%, down; before 11: steps 9-10 at 75%, up
    assert [(c["step"], c["from"], c["to"]) for c in cur.changes] == [(3, 0, 1), (5, 1, 2), (7, 2, 1), (9, 1, 0),
                                                                    (11, 0, 1)]
    assert cur.changes[2]["accuracy"] == pytest.approx(2 / 16) and cur.changes[2]["params"] == {
        "min_terms": 3, "max_terms": 3}
    assert cur.metrics() == {"curriculum/level/chain_sum": 1.0, "curriculum/accuracy/chain_sum": 1.0}


def test_levels_stop_at_the_ends_of_the_range_and_decide_once_per_step():
    cur = curriculum(window=1, ranges={"num_terms": [0, 1]})
    for step in range(1, 5):
        verdicts(cur, step, "chain_sum", 8)
        cur.decide(step + 1)
        cur.decide(step + 1)  # a refill round of the same step decides nothing again
    assert cur.tasks["chain_sum"].level == 1 and len(cur.changes) == 1
    cur = curriculum(window=1)
    verdicts(cur, 1, "chain_sum", 0)
    assert cur.decide(2) == [] and cur.tasks["chain_sum"].level == 0  # below 0.2 at the lowest level


def test_never_moves_with_the_thresholds_at_their_ends():
    """raise_above 1 and lower_below 0: the fixed-difficulty arms of the comparison."""
    cur = curriculum(window=1, raise_above=1.0, lower_below=0.0, start={"chain_sum": 2})
    for step in range(1, 6):
        verdicts(cur, step, "chain_sum", 8 if step % 2 else 0)
        cur.decide(step + 1)
    assert cur.tasks["chain_sum"].level == 2 and cur.changes == []


def test_a_level_is_reasoning_gyms_attribute_levels_moved_by_its_own_api():
    levels = TaskLevels("chain_sum", {"num_terms": (1, 4), "num_digits": (0, 1)}, ONE_DIGIT)
    assert levels.top == 3
    assert levels.params(0) == {"min_terms": 3, "max_terms": 3, "min_digits": 1, "max_digits": 1}
    assert levels.params(2) == {"min_terms": 5, "max_terms": 5, "min_digits": 2, "max_digits": 2}  # digits capped
    assert levels.move(up=True) and levels.move(up=True) and levels.level == 2
    assert {a: levels.curriculum.get_attr_level(a) for a in levels.ranges} == {"num_terms": 3, "num_digits": 1}
    assert levels.move(up=False) and levels.curriculum.get_attr_level("num_digits") == 1  # min(0 + 1, 1)
    assert not TaskLevels("chain_sum", {"num_terms": (0, 0)}, ONE_DIGIT).move(up=True)
    inclusive = TaskLevels("chain_sum", {"num_terms": (0, 3)}, ONE_DIGIT, mode="inclusive")
    assert inclusive.params(3)["min_terms"] == 2 and inclusive.params(3)["max_terms"] == 5


def test_a_mixture_moves_each_task_on_its_own_verdicts():
    cur = curriculum(window=2, tasks=("chain_sum", "basic_arithmetic"))
    for step in (1, 2):
        verdicts(cur, step, "chain_sum", 8)
        verdicts(cur, step, "basic_arithmetic", 3)
    cur.decide(3)
    assert {t: lv.level for t, lv in cur.tasks.items()} == {"chain_sum": 1, "basic_arithmetic": 0}
    rows = [{"task": "chain_sum", "slot": 0}, {"task": "basic_arithmetic", "slot": 0}]
    cur.training_rows(["chain_sum", "basic_arithmetic"], seed=1)
    assert [cur.row(r)["level"] for r in rows] == ["chain_sum/L1", "basic_arithmetic/L0"]


def test_rows_of_a_slot_follow_the_level_and_never_a_held_out_question():
    data = ReasoningGymData(task="chain_sum", params={"chain_sum": ONE_DIGIT}, train_size=60, test_size=30,
                            curriculum={"attributes": {"chain_sum": {"num_terms": [0, 2]}}, "eval_size": 40})
    splits = data.load(PromptTemplate())
    test = splits.test.to_list()
    assert [r["level"] for r in test[:6]] == ["chain_sum/L0", "chain_sum/L1", "chain_sum/L2"] * 2  # interleaved
    assert splits.stats["test_rows/chain_sum/L2"] == 40 and len(splits.train) == 60
    assert {len(r["question"].split("+")) + len(r["question"].split("-")) - 1
            for r in test if r["level"] == "chain_sum/L2"} == {4}  # four terms at level 2
    cur = splits.feed.curriculum
    held_out = {r["question"] for r in test}
    slot = splits.train[7]
    seen = []
    for level in range(3):
        cur.tasks["chain_sum"].place(level)
        row = splits.feed.rows(1, [slot] * 4, 4, splits.train, seed=0)[0]
        assert row["level"] == f"chain_sum/L{level}" and row["slot"] == 7
        seen.append(row["question"])
        assert all(r["question"] not in held_out for r in cur.pool("chain_sum"))
    assert len(set(seen)) == 3
    again = ReasoningGymData(task="chain_sum", params={"chain_sum": ONE_DIGIT}, train_size=60, test_size=30,
                             curriculum={"attributes": {"chain_sum": {"num_terms": [0, 2]}}, "eval_size": 40})
    other = again.load(PromptTemplate()).feed.curriculum
    other.tasks["chain_sum"].place(2)
    assert other.row(slot)["question"] == seen[2]  # the same rows in another process: a resumed run's


def test_state_round_trip_restores_levels_windows_and_moves():
    cur = curriculum(window=3)
    for step, right in enumerate([8, 8, 8, 7, 8], start=1):
        cur.decide(step)
        verdicts(cur, step, "chain_sum", right)
    state = json.loads(json.dumps(cur.state_dict()))  # it travels in rlvr_state.json
    fresh = curriculum(window=3)
    fresh.load_state_dict(state)
    assert fresh.state_dict() == cur.state_dict()
    assert fresh.tasks["chain_sum"].curriculum.get_attr_level("num_terms") == 1
    verdicts(cur, 6, "chain_sum", 8)
    verdicts(fresh, 6, "chain_sum", 8)
    assert cur.decide(7) == fresh.decide(7) != []


BAD = [
    (["data.curriculum.attributes={chain_sum: {num_term: [0, 2]}}"],
     "Unknown attribute 'data.curriculum.attributes.chain_sum.num_term' of reasoning-gym's chain_sum curriculum. "
     "Did you mean 'num_terms'?"),
    (["data.curriculum.attributes={chain_sum: {num_terms: [0, 11]}}"],
     "'data.curriculum.attributes.chain_sum.num_terms' must be [lowest, highest] with 0 <= lowest <= highest <= 10"),
    (["data.curriculum.attributes={chain_sum: {num_terms: [3, 1]}}"],
     "'data.curriculum.attributes.chain_sum.num_terms' must be [lowest, highest]"),
    (["data.curriculum.attributes={chain_sum: {num_terms: 3}}"],
     "'data.curriculum.attributes.chain_sum.num_terms' must be a list, got 3."),
    (["data.curriculum.attributes={leg_counting: {num_animals: [0, 2]}}"],
     "data.curriculum.attributes.leg_counting: 'leg_counting' is not a task of this run (tasks: chain_sum)."),
    (["data.task=gsm_symbolic", "data.curriculum.attributes={gsm_symbolic: {}}"],
     "data.curriculum.attributes.gsm_symbolic: reasoning-gym has no curriculum for task 'gsm_symbolic'"),
    (["data.curriculum.attributes={chain_sum: {num_terms: [0, 2]}}", "data.curriculum.start={chain_sum: 3}"],
     "data.curriculum.start.chain_sum=3 is outside the levels of chain_sum: 0..2"),
    (["data.curriculum.attributes={chain_sum: {num_terms: [0, 2]}}", "data.curriculum.lower_below=0.9"],
     "data.curriculum.lower_below (0.9) must be below data.curriculum.raise_above (0.8)"),
    (["data.curriculum.raise_above=1.5"], "'data.curriculum.raise_above' must be in [0, 1], got 1.5."),
    (["data.curriculum.window=0"], "'data.curriculum.window' must be >= 1, got 0."),
    (["data.curriculum.range_mode=last_k"], "Invalid value 'last_k' for 'data.curriculum.range_mode'."),
    (["data.curriculum.levels={chain_sum: 1}"], "Unknown key 'data.curriculum.levels'."),
    (["data.curriculum.attributes={chain_sum: {num_terms: [0, 2]}}", "data.difficulty_filter.samples=4"],
     "data.difficulty_filter.samples measures pass rates on fixed training rows, and data.curriculum generates"),
    # data.streaming reads records from files (QAData); reasoning-gym generates its rows, the curriculum refills them:
    # the two never meet, whichever side asks for the other.
    (["experiment=curriculum", "data.streaming=true"], "Unknown key 'data.streaming' for rlvr.data.ReasoningGymData."),
    (["data=jsonl", "data.path=x", "data.streaming=true",
      "+data.curriculum={attributes: {chain_sum: {num_terms: [0, 2]}}}"],
     "Unknown key 'data.curriculum' for rlvr.data.QAData."),
]


@pytest.mark.parametrize(("overrides", "message"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_a_bad_curriculum_is_refused_in_one_line_before_anything_loads(overrides, message, monkeypatch):
    def no_generation(*args, **kwargs):
        raise AssertionError("generated data before refusing the config")

    monkeypatch.setattr("reasoning_gym.create_dataset", no_generation)
    with pytest.raises(ConfigError) as error:
        build_pipeline(compose(overrides))
    text = str(error.value)
    assert text.startswith(message) and "\n" not in text.strip()


def test_the_experiment_composes_and_every_arm_builds():
    for extra in ([], ["data.curriculum.raise_above=1", "data.curriculum.lower_below=0"],
                  ["data.curriculum.raise_above=1", "data.curriculum.lower_below=0",
                   "data.curriculum.start={chain_sum: 2}"]):
        data = build_pipeline(compose(["experiment=curriculum", *extra])).data
        assert data.curriculum.attributes == {"chain_sum": {"num_terms": [0, 2]}} and data.test_size == 96
