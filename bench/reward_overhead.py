"""What isolating the rewards costs: ms per completion of the default run's reward setup, called as TRL calls it.

    python bench/reward_overhead.py                                  # the default config's rewards and verifier
    python bench/reward_overhead.py reward=verifier_format_length prompts=xml_tags --batches 50

The pipeline is built from the default config (with any overrides given), as ``python run_pipeline.py`` builds
it: its reward suite, prompt format and the data's verifier (reasoning-gym ``chain_sum``). Each batch is one
prompt's group of ``--group`` completions (the default run's 16) of about 40 tokens, a mix of right, wrong and
unreadable answers, handed to every reward function exactly as ``GRPOTrainer`` does (conversational
completions, prompts, completion ids, the dataset's columns), so a batch is scored once and every function is
called once. Rows:

- ``direct``: the scorer and the functions called in this thread, no isolation (what the work itself costs);
- ``thread``: ``reward.isolation=thread``, a thread per call (the suite before worker processes);
- ``process``: ``reward.isolation=process`` (the default), one round trip to a worker process per call.

``first call`` includes starting the worker processes; the other columns are over ``--batches`` batches after it.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, Callable

COMPLETIONS = [
    "Adding the numbers from left to right gives {gold}, so the final answer is {gold}.",
    "First I add the first two numbers, then the third one. The result of the whole sum is {wrong}.",
    "I need to add these numbers together carefully. I am not sure how to combine them here.",
    "Step by step: the running total after each term ends at {gold}. Therefore the answer is {gold}.",
]


def batches(rows: list[dict[str, Any]], group: int) -> list[dict[str, Any]]:
    """One batch per row: ``group`` completions of its prompt, with the keyword arguments TRL passes."""
    out = []
    for row in rows:
        gold = str(row["answer"])
        wrong = str(int(gold) + 1) if gold.lstrip("-").isdigit() else gold + "1"
        texts = [COMPLETIONS[i % len(COMPLETIONS)].format(gold=gold, wrong=wrong) for i in range(group)]
        columns = {k: [v] * group for k, v in row.items() if k != "prompt"}
        out.append({"prompts": [row["prompt"]] * group, "texts": texts,
                    "completion_ids": [list(range(40))] * group, **columns})
    return out


def trl_call(functions: list[Callable], batch: dict[str, Any]) -> None:
    """Every reward function on one batch, as GRPOTrainer._calculate_rewards calls them (a new completions list
    per batch, so the suite scores it once)."""
    completions = [[{"role": "assistant", "content": t}] for t in batch["texts"]]
    kwargs = {k: v for k, v in batch.items() if k != "texts"}
    for fn in functions:
        fn(completions=completions, trainer_state=None, log_metric=lambda *_: None, log_extra=lambda **_: None,
           **kwargs)


def direct_call(suite: Any, scorer: Any, batch: dict[str, Any]) -> None:
    """The same work with no isolation: score the batch, then call each function, in this thread."""
    columns = {k: v for k, v in batch.items() if k not in ("prompts", "texts", "completion_ids")}
    scores = scorer.score_batch(batch["texts"], columns)
    for fn in suite.functions.values():
        fn(batch["texts"], scores=scores, answer_format=scorer.fmt, prompts=batch["prompts"],
           completion_ids=batch["completion_ids"], **columns)


def measure(call: Callable[[dict[str, Any]], None], data: list[dict[str, Any]]) -> tuple[float, list[float]]:
    """Milliseconds of the first call, and of each call after it."""
    start = time.perf_counter()
    call(data[0])
    first = (time.perf_counter() - start) * 1000
    times = []
    for batch in data[1:]:
        start = time.perf_counter()
        call(batch)
        times.append((time.perf_counter() - start) * 1000)
    return first, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="config overrides, as for run_pipeline.py")
    parser.add_argument("--group", type=int, default=16, help="completions per batch (the default run's 16)")
    parser.add_argument("--batches", type=int, default=30, help="batches timed after the first call")
    args = parser.parse_args()

    from rlvr.config import load_config
    from rlvr.orchestration import build_pipeline
    from rlvr.scoring import Scorer

    def pipeline(isolation: str) -> Any:
        overrides = ["data.train_size=64", "data.test_size=8", f"reward.isolation={isolation}", *args.overrides]
        return build_pipeline(load_config(overrides))

    base = pipeline("thread")
    rows = list(base.data.load(base.prompts).train)
    data = batches([rows[i % len(rows)] for i in range(args.batches + 1)], args.group)
    scorer = Scorer(base.prompts.answer_format, base.data.verifier)

    results = {"direct": measure(lambda b: direct_call(base.reward, scorer, b), data)}
    for isolation in ("thread", "process"):
        suite = pipeline(isolation).reward
        functions, _ = suite.trl_functions(scorer)
        results[isolation] = measure(lambda b, fs=functions: trl_call(fs, b), data)
        suite.close()

    names = ", ".join(f"{n} x{w:g}" for n, w in base.reward.weights.items())
    print(f"\nrewards: {names} | verifier: {type(base.data.verifier).__name__} | {args.group} completions per batch, "
          f"{args.batches} batches after the first | workers: {base.reward.workers}\n")
    header = (f"{'isolation':<10} {'first call ms':>14} {'ms/batch median':>16} {'ms/batch max':>13} "
              f"{'ms/completion':>14} {'vs direct':>10}")
    print(header + "\n" + "-" * len(header))
    floor = statistics.median(results["direct"][1])
    for name, (first, times) in results.items():
        median = statistics.median(times)
        print(f"{name:<10} {first:>14.1f} {median:>16.2f} {max(times):>13.2f} {median / args.group:>14.3f} "
              f"{median - floor:>+9.2f}ms")


if __name__ == "__main__":
    main()
