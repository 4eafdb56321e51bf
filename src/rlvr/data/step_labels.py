"""Step labels without human labels, from the verifier: Math-Shepherd's estimate (Wang et al. 2024, "Math-Shepherd:
Verify and Reinforce LLMs Step-by-step without Human Annotations").

For each problem the policy writes ``solutions`` solutions; each splits into steps at a separator
(:func:`rlvr.scoring.steps.split_steps`). From the prefix that ends with each step but the last, the policy writes
``rollouts`` continuations, and the run's :class:`~rlvr.scoring.Scorer` judges each (prefix and continuation)
against the row's gold. A step is labelled

- ``hard``: 1 when any continuation reaches a correct answer, else 0 (the paper's hard estimation, HE);
- ``soft``: the share of continuations that do (its soft estimation, SE).

The last step's label is the solution's own verdict: its answer is written there.

The cost is ``problems x solutions x (steps - 1) x rollouts`` generations. The labels are cached on disk, one line
per problem, each written and flushed as the problem is done, in a file named by a hash of the settings and the
problems (other settings, another file). Each problem is sampled in batches of its own from a seed made of the run's
seed and its index, so a run killed while labelling picks up at the next problem and ends with the labels an
uninterrupted run makes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from rlvr.data.preferences import sample
from rlvr.files import write_atomic
from rlvr.scoring.steps import split_steps

log = logging.getLogger(__name__)

Estimate = Literal["hard", "soft"]


@dataclass(frozen=True)
class Labelling:
    """How step labels are made (the PRM loop's settings of the same names).

    Args:
        separator: what splits a solution into steps.
        solutions: solutions sampled per problem.
        rollouts: continuations sampled from each step's prefix (Math-Shepherd's N).
        estimate: ``hard`` (any continuation correct) or ``soft`` (the share correct).
        max_new_tokens: tokens per solution, and per continuation.
        temperature: sampling temperature of both.
        batch_size: sequences generated together.
        seed: the run's seed (each problem's sampling is seeded by it and the problem's index).
    """

    separator: str
    solutions: int
    rollouts: int
    estimate: Estimate
    max_new_tokens: int
    temperature: float
    batch_size: int
    seed: int

    def cache_file(self, rows: list[dict[str, Any]]) -> str:
        """The cache's file name: a hash of these settings and of the problems (prompts and gold answers)."""
        problems = [[r["prompt"], str(r["answer"])] for r in rows]
        key = json.dumps([asdict(self), problems], sort_keys=True, default=str)
        return f"step_labels-{hashlib.sha256(key.encode()).hexdigest()[:16]}.jsonl"


def label_steps(model: Any, tokenizer: Any, rows: list[dict[str, Any]], scorer: Any, how: Labelling,
                cache_dir: Path) -> list[dict[str, Any]]:
    """Every sampled solution of ``rows`` with a step: ``{prompt, completion, steps, labels, correct}``. Problems
    already in the cache under ``cache_dir`` are read from it, the others labelled and appended to it."""
    from tqdm.auto import tqdm

    path = Path(cache_dir) / how.cache_file(rows)
    done = read_cache(path)
    if done:
        log.info("[rlvr] step labels: %d of %d problems read from %s", len(done), len(rows), path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as cache, tqdm(total=len(rows), initial=len(done), desc="labelling steps", unit="problem",
                                       file=sys.stderr, leave=None, dynamic_ncols=True) as bar:
        for i in range(len(done), len(rows)):
            record = {"problem": i, "solutions": label_problem(model, tokenizer, rows[i], scorer, how, index=i)}
            cache.write(json.dumps(record) + "\n")
            cache.flush()
            os.fsync(cache.fileno())  # a kill loses at most the problem being labelled
            done.append(record)
            bar.update(1)
    solutions = [{"prompt": rows[r["problem"]]["prompt"], **s} for r in done for s in r["solutions"] if s["steps"]]
    log.info("[rlvr] %s", summary(solutions, len(rows), how))
    return solutions


def label_problem(model: Any, tokenizer: Any, row: dict[str, Any], scorer: Any, how: Labelling,
                  index: int) -> list[dict[str, Any]]:
    """The labelled solutions of one problem: ``{completion, steps, labels, correct}`` each."""
    seed = how.seed * 1_000_003 + index
    settings = {"max_new_tokens": how.max_new_tokens, "temperature": how.temperature, "top_p": 1.0,
                "batch_size": how.batch_size, "progress": False}
    texts = sample(model, tokenizer, [row["prompt"]], k=how.solutions, seed=seed, **settings)
    solutions = [{"completion": t, "steps": split_steps(t, how.separator), "correct": scorer(t, row).correct}
                 for t in texts]
    prefixes = [(j, "".join(s["steps"][: t + 1])) for j, s in enumerate(solutions) for t in range(len(s["steps"]) - 1)]
    continued = sample(model, tokenizer, [row["prompt"]] * len(prefixes), k=how.rollouts, seed=seed + 1,
                       prefixes=[p for _, p in prefixes], **settings) if prefixes else []
    for s in solutions:
        s["labels"] = []
    for n, (j, prefix) in enumerate(prefixes):
        hits = [scorer(prefix + c, row).correct for c in continued[n * how.rollouts : (n + 1) * how.rollouts]]
        solutions[j]["labels"].append(float(any(hits)) if how.estimate == "hard" else sum(hits) / len(hits))
    for s in solutions:
        if s["steps"]:
            s["labels"].append(float(s["correct"]))  # the last step: the solution's own answer
    return solutions


def read_cache(path: Path) -> list[dict[str, Any]]:
    """The problems labelled so far, in order. A line cut short by a kill is dropped from the file."""
    if not path.is_file():
        return []
    text = path.read_text()
    complete, _, partial = text.rpartition("\n")
    if partial:
        write_atomic(path, complete + "\n" if complete else "")
    return [json.loads(line) for line in complete.splitlines() if line.strip()]


def summary(solutions: list[dict[str, Any]], problems: int, how: Labelling) -> str:
    """One line: how many solutions and steps were labelled, and what the labels say beyond the outcome."""
    steps = [x for s in solutions for x in s["labels"]]
    in_wrong = [x for s in solutions if not s["correct"] for x in s["labels"][:-1]]
    accuracy = sum(s["correct"] for s in solutions) / max(1, len(solutions))
    good = sum(steps) / max(1, len(steps))
    return (f"step labels ({how.estimate}, {how.rollouts} rollouts per step): {len(solutions)} solutions of "
            f"{problems} problems, {len(steps)} steps; solution accuracy {accuracy:.0%}, mean step label {good:.2f}; "
            f"{sum(x > 0 for x in in_wrong)} of {len(in_wrong)} steps before the end of a wrong solution can still "
            "reach a correct answer")
