"""Seconds per GRPO step: plain TRL against rlvr's GRPOLoop, same model, data, reward and settings.

    python bench/grpo_step.py                     # embedded SmolLM2, 4 steps x 16 completions x 40 tokens
    python bench/grpo_step.py --steps 6 --model Qwen/Qwen2.5-0.5B-Instruct

rlvr wraps TRL's GRPOTrainer; this shows what the wrapping costs (rewards scored in a thread with a timeout,
callbacks, diagnostics) and is the baseline the fast-rollout work is measured against. Both runs use the
same seed and the same chain_sum prompts, so their completions (and lengths) match step for step; the table
prints the mean step time and the mean completion length so a difference in lengths cannot pass as speed.
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time


def rows(n: int) -> list[dict]:
    import reasoning_gym

    ds = reasoning_gym.create_dataset("chain_sum", size=n, seed=1, min_terms=2, max_terms=2, min_digits=1,
                                      max_digits=1)
    system = "Solve the problem. Give the final answer as a number on the last line."
    return [{"prompt": [{"role": "system", "content": system}, {"role": "user", "content": e["question"]}],
             "answer": e["answer"]} for e in ds]


def last_number_reward(completions, answer, **_):
    out = []
    for c, a in zip(completions, answer):
        nums = re.findall(r"-?\d+", c[0]["content"] if isinstance(c, list) else c)
        out.append(float(bool(nums) and nums[-1] == a))
    return out


class StepTimes:
    def __init__(self):
        self.times, self.lengths = [], []

    def __call__(self, step, metrics, warnings=()):
        self.times.append(metrics["step_time"])
        self.lengths.append(metrics["completions/mean_length"])


def plain_trl(model_path: str, data, args, out_dir: str) -> StepTimes:
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    rec = StepTimes()

    class Cb(TrainerCallback):
        def on_log(self, a, state, control, logs=None, **kw):
            if logs and "step_time" in logs:
                rec(state.global_step, logs)

    tok = AutoTokenizer.from_pretrained(model_path, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(model_path)
    cfg = GRPOConfig(output_dir=out_dir, max_steps=args.steps, per_device_train_batch_size=args.generations,
                     num_generations=args.generations, max_completion_length=args.tokens, learning_rate=2e-5,
                     lr_scheduler_type="constant", beta=0.0, logging_steps=1, report_to=[], save_strategy="no",
                     use_cpu=args.cpu, bf16=False, seed=0, disable_tqdm=True, **checkpointing(False))
    GRPOTrainer(model=model, reward_funcs=[last_number_reward], args=cfg, train_dataset=data,
                processing_class=tok, callbacks=[Cb()]).train()
    return rec


def checkpointing(on: bool) -> dict:
    from rlvr.train.trl_bridge import checkpointing as arg

    return arg(on)


def rlvr_loop(model_path: str, data, args, out_dir: str) -> StepTimes:
    from rlvr.interfaces import Rewards, TrainInputs
    from rlvr.model import HFModel
    from rlvr.train import GRPOLoop

    rec = StepTimes()
    model, tok = HFModel(name_or_path=model_path, dtype="float32").load()
    loop = GRPOLoop(max_steps=args.steps, per_device_train_batch_size=args.generations,
                    num_generations=args.generations, max_completion_length=args.tokens, save_steps=0)

    class Events:  # the TrainEvents the orchestrator would pass
        def log(self, step, metrics, warnings):
            rec(step, metrics)

        def step_end(self, step, model):
            pass

    rewards = Rewards({"last_number": last_number_reward}, {"last_number": 1.0})
    loop.train(TrainInputs(model=model, tokenizer=tok, train=data, scorer=None, rewards=rewards, output_dir=out_dir,
                           seed=0, events=Events()))
    return rec


def main() -> None:
    import torch
    from datasets import Dataset

    from rlvr.model import embedded

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="embedded://smollm2-135m-instruct")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--generations", type=int, default=16)
    p.add_argument("--tokens", type=int, default=40)
    args = p.parse_args()
    args.cpu = not torch.cuda.is_available()
    path = embedded.resolve(args.model) if embedded.is_embedded(args.model) else args.model
    data = Dataset.from_list(rows(256))
    results = {}
    for name, fn in (("plain TRL GRPOTrainer", plain_trl), ("rlvr GRPOLoop", rlvr_loop)):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            rec = fn(path, data, args, tmp)
            results[name] = (rec, time.perf_counter() - start)
    device = torch.cuda.get_device_name(0) if not args.cpu else f"CPU ({torch.get_num_threads()} threads)"
    print(f"\nGRPO step, {args.steps} steps x {args.generations} completions x {args.tokens} tokens, {device}\n")
    print("| trainer | mean s/step | steps 2..n s/step | mean completion tokens | wall s |")
    print("|---|---|---|---|---|")
    for name, (rec, wall) in results.items():
        later = rec.times[1:] or rec.times
        print(f"| {name} | {statistics.mean(rec.times):.2f} | {statistics.mean(later):.2f} | "
              f"{statistics.mean(rec.lengths):.1f} | {wall:.1f} |")


if __name__ == "__main__":
    main()
