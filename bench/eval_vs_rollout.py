"""Evaluation generation vs training rollout generation: throughput on the same model and device.

    python bench/eval_vs_rollout.py                                    # embedded SmolLM2, CPU or the first GPU
    python bench/eval_vs_rollout.py --model Qwen/Qwen2.5-0.5B-Instruct --prompts 32 --generations 8 --batch 64

All three paths produce the same number of completions in generate() calls of ``--batch`` sequences:

- ``trl rollout``: TRL's own ``GRPOTrainer._generate`` (the code path training takes), ``--batch / --generations``
  prompts x ``--generations`` samples per call, built from our ``GRPOLoop`` settings;
- ``eval sampled``: ``Evaluator.generate`` with k = ``--generations`` samples per prompt (pass@k / maj@k);
- ``eval greedy``: ``Evaluator.generate`` over ``prompts x generations`` distinct questions, greedy.

Compare ``seconds`` (the same number of completions, budget and batch size): evaluation should not take
longer than rollouts. ``tokens/s`` counts completion tokens up to and including EOS, so a path whose
completions end sooner (greedy) shows fewer tokens/s for the same wall time.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from typing import Any, Callable


def timed(fn: Callable[[], list[int]], device: Any, repeats: int) -> tuple[float, list[int]]:
    """Median seconds of ``repeats`` runs after one warm-up, and the completion lengths of the last run."""
    import torch

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    fn()  # warm-up: first-call allocations and kernel selection
    times, lengths = [], []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        lengths = fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times), lengths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded://smollm2-135m-instruct")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    parser.add_argument("--task", default="chain_sum")
    parser.add_argument("--prompts", type=int, default=8, help="distinct prompts for the sampled paths")
    parser.add_argument("--generations", type=int, default=4, help="completions per prompt (GRPO group, eval k)")
    parser.add_argument("--batch", type=int, default=16, help="sequences per generate() call, all paths")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.batch % args.generations:
        parser.error("--batch must be a multiple of --generations (whole GRPO groups per call)")

    import torch
    from datasets import Dataset
    from trl import GRPOTrainer

    from rlvr.data import PromptTemplate, ReasoningGymData
    from rlvr.evaluation import Evaluator
    from rlvr.model import HFModel
    from rlvr.train import GRPOLoop
    from rlvr.train.trl_bridge import model_args

    torch.manual_seed(0)
    model, tok = HFModel(name_or_path=args.model, dtype=args.dtype).load()
    device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    model.to(device)
    n_seq = args.prompts * args.generations
    rows = ReasoningGymData(task=args.task, train_size=16, test_size=n_seq).load(PromptTemplate()).test
    distinct = list(rows["prompt"])
    sampled_prompts = distinct[: args.prompts]
    per_call = args.batch // args.generations

    loop = GRPOLoop(max_steps=1, per_device_train_batch_size=args.batch, num_generations=args.generations,
                    max_completion_length=args.max_new_tokens, temperature=1.0)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = GRPOTrainer(model=model, reward_funcs=[lambda completions, **_: [0.0] * len(completions)],
                              args=loop.config(tmp, seed=0, reward_weights=None, **model_args(model)),
                              train_dataset=Dataset.from_list([{"prompt": p} for p in distinct]), processing_class=tok)

        def rollout() -> list[int]:
            model.train()  # as during training
            lengths = []
            for i in range(0, args.prompts, per_call):
                group = [p for p in sampled_prompts[i : i + per_call] for _ in range(args.generations)]
                lengths += [len(ids) for ids in trainer._generate(group)[1]]
            return lengths

        sampled_eval = Evaluator(batch_size=args.batch, max_new_tokens=args.max_new_tokens, k=args.generations)
        greedy_eval = Evaluator(batch_size=args.batch, max_new_tokens=args.max_new_tokens)
        paths = {
            "trl rollout (GRPOTrainer._generate)": rollout,
            f"eval sampled (k={args.generations})": lambda: [
                n for _, n, _ in sampled_eval.generate(model, tok, sampled_prompts, num_samples=args.generations)],
            "eval greedy": lambda: [n for _, n, _ in greedy_eval.generate(model, tok, distinct)],
        }
        results = {name: timed(fn, device, args.repeats) for name, fn in paths.items()}

    print(f"\nmodel {args.model} | device {device} ({torch.get_num_threads()} threads) | dtype "
          f"{next(model.parameters()).dtype} | {n_seq} completions/path, {args.batch} per call, "
          f"max_new_tokens {args.max_new_tokens}, median of {args.repeats}\n")
    header = f"{'path':<38} {'seconds':>8} {'seq/s':>8} {'tokens/s':>9} {'mean len':>9} {'vs rollout':>10}"
    print(header + "\n" + "-" * len(header))
    base = None
    for name, (seconds, lengths) in results.items():
        tps = sum(lengths) / seconds
        base = base or tps
        print(f"{name:<38} {seconds:>8.2f} {len(lengths) / seconds:>8.2f} {tps:>9.1f} "
              f"{statistics.mean(lengths):>9.1f} {tps / base:>9.2f}x")


if __name__ == "__main__":
    main()
