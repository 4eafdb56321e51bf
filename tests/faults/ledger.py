"""The fault-injection suite's own figures, printed at the end of the test session (``tests/conftest.py``):
for each fault, the runs tried, how many of them finished (by themselves, or resumed by rerunning the same
command), and the records they lost.

**Records lost** counts what a run under a fault (resumed if it stopped) lacks next to an uninterrupted run of the
same config, in three kinds of record:

- *metrics lines*: each training step 1..``max_steps`` and each evaluation (baseline, during training, final)
  whose record in ``metrics.jsonl`` is missing or written more than once (a repeated record no longer says which
  of its values is the run's);
- *samples*: the lines of each ``samples_<name>.jsonl`` the uninterrupted run writes (one per held-out question
  and evaluation) that are missing;
- *results rows*: the rows ``baseline``, ``train`` and ``final`` of ``results.json``, each of its
  ``during_training`` evaluations, and ``run.status == "success"``, each one missing counting 1.

A sample masked or scored 0 because its reward failed is not lost: it is written, and counted where the run
counts reward failures (``reward_failures/<name>``). Nor is a step whose update a non-finite loss skipped: it is
logged, and counted in ``nonfinite/skipped_steps``.
"""

from __future__ import annotations

import json
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

ROWS = ("baseline", "train", "final")


@dataclass
class Expected:
    """What an uninterrupted run writes: ``steps`` training steps, and per evaluation (by name: ``baseline``,
    ``step_<k>``, ``final``) the lines of its samples file."""

    steps: int
    evaluations: dict[str, int]

    @classmethod
    def of(cls, run_dir: Path) -> "Expected":
        """Read from an uninterrupted run's directory."""
        results = json.loads((run_dir / "results.json").read_text())
        names = [r["name"] for r in _records(run_dir) if r.get("event") == "eval"]
        return cls(steps=results["train"]["global_step"],
                   evaluations={name: _lines(run_dir / f"samples_{name}.jsonl") for name in names})

    @classmethod
    def shaped(cls, steps: int, test_size: int, eval_steps: int = 0) -> "Expected":
        """Derived from the config: ``steps`` training steps, ``test_size`` held-out questions per evaluation
        (baseline, every ``eval_steps`` before the last step, final)."""
        during = [f"step_{k}" for k in range(eval_steps, steps, eval_steps)] if eval_steps else []
        return cls(steps=steps, evaluations={name: test_size for name in ["baseline", *during, "final"]})


def lost_records(run_dir: Path, expected: Expected) -> int:
    """The records ``run_dir`` lacks next to ``expected`` (see the module's docstring)."""
    records = _records(run_dir)
    steps = Counter(r["step"] for r in records if r.get("event") == "train")
    evaluations = Counter(r["name"] for r in records if r.get("event") == "eval")
    lost = sum(1 for step in range(1, expected.steps + 1) if steps[step] != 1)
    lost += sum(1 for name in expected.evaluations if evaluations[name] != 1)
    for name, n in expected.evaluations.items():
        path = run_dir / f"samples_{name}.jsonl"
        lost += max(0, n - (_lines(path) if path.is_file() else 0))
    path = run_dir / "results.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    lost += sum(1 for row in ROWS if row not in results)
    during = sum(1 for name in expected.evaluations if name.startswith("step_"))
    lost += max(0, during - len(results.get("during_training", [])))
    lost += results.get("run", {}).get("status") != "success"
    return lost


def _records(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def _lines(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if line.strip())


@dataclass
class Trial:
    fault: str
    finished: bool = False
    lost: int | None = None  # None until the run's records are counted
    outcome: str = ""

    def done(self, run_dir: Path, expected: Expected, outcome: str = "") -> int:
        """The run finished (by itself or resumed): count what it lost; returns that count."""
        self.finished, self.lost, self.outcome = True, lost_records(run_dir, expected), outcome
        return self.lost


@dataclass
class Ledger:
    trials: list[Trial] = field(default_factory=list)

    @contextmanager
    def trial(self, fault: str) -> Iterator[Trial]:
        """One run under ``fault``: tried when entered, finished once :meth:`Trial.done` says so."""
        trial = Trial(fault)
        self.trials.append(trial)
        yield trial

    def table(self) -> list[str]:
        """The summary's lines: one row per fault, then the totals."""
        faults: dict[str, list[Trial]] = {}
        for t in self.trials:
            faults.setdefault(t.fault, []).append(t)
        rows = [(fault, str(len(ts)), str(sum(t.finished for t in ts)), _lost(ts),
                 "; ".join(dict.fromkeys(t.outcome for t in ts if t.outcome))) for fault, ts in faults.items()]
        rows.append(("total", str(len(self.trials)), str(sum(t.finished for t in self.trials)), _lost(self.trials),
                     ""))
        head = ("fault", "runs tried", "finished/resumed", "records lost", "outcome")
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
        line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)) + ("  " + r[4] if r[4] else "")  # noqa: E731
        return [line(head), line(tuple("-" * w for w in widths) + ("",)), *map(line, rows)]


def _lost(trials: list[Trial]) -> str:
    """The records lost by these trials; ``?`` when one never got as far as counting them."""
    if any(t.lost is None for t in trials):
        return "?"
    return str(sum(t.lost for t in trials))


LEDGER = Ledger()
