"""Reward functions and the shared scoring in worker processes: a call that hangs, even one spinning in pure Python
with the interpreter lock held, is killed at ``reward.timeout_s``, its samples are masked (or zeroed) and counted,
and the next batch runs in a fresh worker. What cannot be sent to a worker runs in the training process, with a
warning; closing the suite leaves no process behind."""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import time

import pytest

from rlvr.rewards import RewardSuite
from rlvr.scoring import NumberVerifier, Scorer
from tests.unit.rewards.test_suite import TAGS, call_like_trl, suite_of

GENEROUS_S = 30  # a bound on wall time that only a hang that was never cut off exceeds


# --- functions referenced by _target_ (importable by name, so they run in the workers) --------------------------
def spins_on(completions, **_):
    """Pure Python that never ends and never lets go of the interpreter lock, on a sample marked "hang"."""
    if any("hang" in c for c in completions):
        while True:
            pass
    return [1.0] * len(completions)


def sleeps_on(completions, **_):
    if any("hang" in c for c in completions):
        time.sleep(10**6)
    return [1.0] * len(completions)


def dies_on(completions, **_):
    if any("hang" in c for c in completions):
        os._exit(1)  # a crash in C code looks like this from outside
    return [1.0] * len(completions)


def ones(completions, **_):
    return [1.0] * len(completions)


def process_id(completions, **_):
    return [float(os.getpid())] * len(completions)


class SpinningVerifier(NumberVerifier):
    """A verifier whose evaluation explodes on the answer 9, like a symbolic answer too big to evaluate."""

    def __call__(self, answer, row):
        if answer == "9":
            while True:
                pass
        return super().__call__(answer, row)


class BuggyVerifier(NumberVerifier):
    def __call__(self, answer, row):
        raise KeyError("verifier bug")


def _only_here():
    if multiprocessing.parent_process() is not None:
        raise ImportError("not importable in a worker")
    return functools.partial(process_id)


class LoadsOnlyInTheTrainingProcess:
    """Pickles, but cannot be loaded in a worker (like a function defined in an interactive session)."""

    def __call__(self, completions, **_):
        return process_id(completions)

    def __reduce__(self):
        return _only_here, ()


def fn(name, **params):
    """The config node of a plain function defined in this module."""
    return {"_target_": f"{__name__}.{name}", "_partial_": True, **params}


@pytest.fixture
def suites():
    """Suites made by a test, closed after it."""
    made: list[RewardSuite] = []
    yield made
    for suite in made:
        suite.close()


def make(suites, functions, **kwargs) -> RewardSuite:
    suite = suite_of(functions, **kwargs)
    suites.append(suite)
    return suite


SCORER = Scorer(TAGS, NumberVerifier())


# --- hangs are cut off -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("target", "on_error", "failed"), [("spins_on", "mask", None), ("sleeps_on", "zero", 0.0)])
def test_reward_that_hangs_is_killed_and_its_worker_replaced(suites, target, on_error, failed):
    suite = make(suites, {"r": fn(target), "pid": fn("process_id")}, timeout_s=1, on_error=on_error)
    first, _, _ = call_like_trl(suite, SCORER, ["a", "b"], answer=["1"] * 2)
    start = time.monotonic()
    out, _, metrics = call_like_trl(suite, SCORER, ["a", "hang", "b"], answer=["1"] * 3)
    assert time.monotonic() - start < GENEROUS_S
    assert out["r"] == [1.0, failed, 1.0]  # only the hung sample fails: the others are scored one by one
    assert suite.timeouts["r"] == 1 and suite.failures["r"] == 1 and metrics["reward_failures/r"] == 1
    assert out["pid"] == [out["pid"][0]] * 3 and metrics["reward_failures/pid"] == 0  # the other reward is fine

    after, _, _ = call_like_trl(suite, SCORER, ["a", "b"], answer=["1"] * 2)
    assert after["r"] == [1.0, 1.0]  # the suite goes on, in a new worker
    assert len({first["pid"][0], after["pid"][0], float(os.getpid())}) == 3
    with pytest.raises(ProcessLookupError):  # the workers of the hung call were killed, not left running
        os.kill(int(first["pid"][0]), 0)


def test_every_sample_hanging_fails_every_sample(suites):
    suite = make(suites, {"r": fn("spins_on")}, timeout_s=1)
    start = time.monotonic()
    out, _, metrics = call_like_trl(suite, SCORER, ["hang"] * 3, answer=["1"] * 3)
    assert time.monotonic() - start < GENEROUS_S
    assert out["r"] == [None] * 3 and metrics["reward_failures/r"] == 3 and suite.timeouts["r"] == 3


def test_worker_that_dies_fails_only_its_sample(suites):
    suite = make(suites, {"r": fn("dies_on")}, timeout_s=5)
    out, _, metrics = call_like_trl(suite, SCORER, ["a", "hang", "b"], answer=["1"] * 3)
    assert out["r"] == [1.0, None, 1.0] and metrics["reward_failures/r"] == 1
    assert call_like_trl(suite, SCORER, ["a"], answer=["1"])[0]["r"] == [1.0]


def test_scoring_that_hangs_is_killed_and_its_samples_fail_in_every_reward(suites, caplog):
    suite = make(suites, {"c": {"_target_": "rlvr.rewards.Correctness"}, "r": fn("ones")}, timeout_s=1)
    scorer = Scorer(TAGS, SpinningVerifier())
    texts = ["<answer>1</answer>", "<answer>9</answer>", "<answer>2</answer>"]
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="rlvr.rewards"):
        out, _, metrics = call_like_trl(suite, scorer, texts, answer=["1"] * 3)
    assert time.monotonic() - start < GENEROUS_S
    assert out["c"] == [1.0, None, 0.0]
    assert out["r"] == [1.0, None, 1.0]  # failed even where the reward does not read the score
    assert metrics["score/failed_rate"] == pytest.approx(1 / 3) and metrics["score/accuracy"] == pytest.approx(1 / 3)
    assert metrics["reward_failures/c"] == metrics["reward_failures/r"] == 1
    assert suite.score_failures == 1 and suite.failures == {"c": 1, "r": 1}
    assert "scoring failed on sample 1" in caplog.text

    again, _, metrics = call_like_trl(suite, scorer, texts[:1], answer=["1"])
    assert again == {"c": [1.0], "r": [1.0]} and metrics["score/failed_rate"] == 0.0


# --- where things run ------------------------------------------------------------------------------------------
def test_rewards_and_scoring_run_in_workers_and_close_leaves_no_process(suites):
    suite = make(suites, {"pid": fn("process_id")})
    pid = int(call_like_trl(suite, SCORER, ["a"], answer=["1"])[0]["pid"][0])
    assert pid != os.getpid() and pid in {p.pid for p in multiprocessing.active_children()}
    suite.close()
    assert pid not in {p.pid for p in multiprocessing.active_children()}
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    again = int(call_like_trl(suite, SCORER, ["a"], answer=["1"])[0]["pid"][0])  # a later call starts new workers
    assert again not in (pid, os.getpid())


def reward_worker_pids() -> list[int]:
    """In a fresh suite with process isolation: the process ids its reward calls ran in, and this process's."""
    suite = suite_of({"pid": fn("process_id")})
    try:
        return [int(call_like_trl(suite, SCORER, ["a"], answer=["1"])[0]["pid"][0]), os.getpid()]
    finally:
        suite.close()


def test_rewards_run_in_workers_inside_a_job_of_the_joblib_launcher():
    """hydra/launcher=local runs each job in a loky worker (joblib): its reward workers start there too (they died
    at start, and the rewards ran in threads of the training process, with a warning)."""
    from joblib import Parallel, delayed

    ((worker, job),) = Parallel(n_jobs=2, backend="loky")(delayed(reward_worker_pids)() for _ in range(1))
    assert job != os.getpid() and worker not in (job, os.getpid())


def test_what_cannot_be_sent_to_a_worker_runs_in_process_with_one_warning(suites, caplog):
    def closure(completions, **_):
        return [float(os.getpid())] * len(completions)

    class LocalVerifier(NumberVerifier):
        pass

    suite = RewardSuite({"closure": closure, "lam": lambda completions, **_: [2.0] * len(completions),
                         "unloadable": LoadsOnlyInTheTrainingProcess(), "pid": functools.partial(process_id)})
    suites.append(suite)
    scorer = Scorer(TAGS, LocalVerifier())
    with caplog.at_level(logging.WARNING, logger="rlvr.rewards"):
        for _ in range(2):
            out, _, _ = call_like_trl(suite, scorer, ["<answer>1</answer>"] * 2, answer=["1"] * 2)
    assert out["closure"] == out["unloadable"] == [float(os.getpid())] * 2 and out["lam"] == [2.0, 2.0]
    assert out["pid"][0] != os.getpid()
    for what in ("reward 'closure'", "reward 'lam'", "the scorer (extraction + verifier)"):
        assert caplog.text.count(f"{what} runs in the training process: it cannot be pickled") == 1
    assert caplog.text.count("reward 'unloadable' runs in the training process: a worker process cannot load it "
                             "(ImportError: not importable in a worker)") == 1


def test_isolation_thread_runs_in_the_training_process(suites):
    suite = make(suites, {"pid": fn("process_id")}, isolation="thread")
    assert call_like_trl(suite, SCORER, ["a"], answer=["1"])[0]["pid"] == [float(os.getpid())]
    assert not suite._pool


def test_worker_warnings_are_logged_by_the_training_process(suites, caplog):
    suite = make(suites, {"c": {"_target_": "rlvr.rewards.Correctness"}})
    with caplog.at_level(logging.WARNING):
        out, _, metrics = call_like_trl(suite, Scorer(TAGS, BuggyVerifier()), ["<answer>1</answer>"], answer=["1"])
    assert out["c"] == [None] and metrics["score/bad_gold_rate"] == 1.0  # a verifier bug: no reward
    assert "verifier BuggyVerifier raised KeyError" in caplog.text and "(in a reward worker)" in caplog.text


def test_worker_killed_between_calls_is_replaced(suites):
    """A worker that dies while idle (the kernel's out-of-memory killer, say) is replaced at the next call."""
    suite = make(suites, {"pid": fn("process_id")}, workers=1)
    pid = int(call_like_trl(suite, SCORER, ["a"], answer=["1"])[0]["pid"][0])
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)  # the pool notices its dead worker
    out, _, metrics = call_like_trl(suite, SCORER, ["a", "b"], answer=["1"] * 2)
    assert out["pid"][0] not in (pid, os.getpid()) and metrics["reward_failures/pid"] == 0


def _alive(pid: int) -> bool:
    """Running (not gone, and not a zombie waiting for a parent that does not reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


TRAINING = """
import functools, time
from rlvr.rewards import RewardSuite
from rlvr.scoring import NumberVerifier, Scorer
from rlvr.scoring.formats import AnswerFormat
from tests.unit.rewards.test_isolation import process_id

if __name__ == "__main__":
    suite = RewardSuite({"pid": functools.partial(process_id)})
    functions = suite.trl_functions(Scorer(AnswerFormat(), NumberVerifier())).functions
    print(int(functions["pid"](prompts=["q"], completions=["1"], answer=["1"])[0]), flush=True)
    time.sleep(600)
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc")
def test_workers_exit_when_the_training_process_is_killed_outright(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(TRAINING)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        pid = int(proc.stdout.readline())
        assert pid != proc.pid and _alive(pid)
    finally:
        proc.kill()  # SIGKILL: no teardown, no atexit
        proc.wait()
    deadline = time.monotonic() + GENEROUS_S
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)


def test_reasoning_gym_verifier_is_unpickled_with_reasoning_gym_imported():
    """So a new worker pays for the import when it starts, not in its first timed call."""
    from rlvr.scoring import ReasoningGymVerifier

    code = ("import pickle, sys; v = pickle.loads(sys.stdin.buffer.read()); "
            "print(type(v).__name__, 'reasoning_gym' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(ReasoningGymVerifier()), capture_output=True,
                         env=env, timeout=120)
    assert out.stdout.split() == [b"ReasoningGymVerifier", b"True"], out.stderr[-2000:]
