"""The GRPO step with TRL's generation against rlvr's rollout engine, on the same prompts, model and lengths.

    python bench/rollout.py                 # CPU: the default run's settings (embedded SmolLM2, 16 x 40 tokens)
    python bench/rollout.py --gpu           # GPU: random-init 0.4B-class and 135M shapes, bf16, 128 x 256 tokens

Three trainers, each in its own process (so peak memory is its own), on the same chain_sum prompts and reward:

- **TRL defaults**: plain ``trl.GRPOTrainer`` with ``GRPOConfig``'s defaults for what a user would not touch
  (gradient checkpointing on; bf16 on a GPU);
- **TRL best**: the settings a user who tuned TRL would pick: gradient checkpointing off and, on a GPU,
  ``cache_implementation="static"``;
- **rlvr engine**: rlvr's ``GRPOLoop`` with ``train.rollout=engine`` (and ``rollout_compile`` on a GPU), the
  pipeline's own step (reward suite and callbacks included).

Every run samples with the same settings; ``--pin`` (on by default with ``--gpu``) makes every completion exactly
``--tokens`` long (``min_new_tokens``), so the trainers do the same work whatever they sample. The table gives
seconds per step (steps after the first, which pays compilation and warm-up), completion tokens per second, the
share of the step spent generating, peak memory, and each trainer's speed-up over the two TRL baselines.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from grpo_step import last_number_reward, rows  # noqa: E402  (same prompts and reward as the step benchmark)

# Random-init shapes of the measurements (config fields of the published models).
SHAPES = {
    "qwen2.5-0.5b": dict(model_type="qwen2", hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                         num_attention_heads=14, num_key_value_heads=2, vocab_size=151936,
                         max_position_embeddings=4096, tie_word_embeddings=True, rope_theta=1e6),
    "smollm2-135m": dict(model_type="llama", hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                         num_attention_heads=9, num_key_value_heads=3, vocab_size=49152,
                         max_position_embeddings=4096, tie_word_embeddings=True, rope_theta=1e5),
}
TRAINERS = ("TRL defaults", "TRL best", "rlvr engine")


def load(model: str, dtype, device):
    """The model (a path, an ``embedded://`` name, or ``shape:<name>`` for random weights) and its tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from rlvr.model import embedded

    tok_path = embedded.resolve("embedded://smollm2-135m-instruct")
    if model.startswith("shape:"):
        spec = dict(SHAPES[model.removeprefix("shape:")])
        config = AutoConfig.for_model(spec.pop("model_type"), **spec)
        torch.manual_seed(0)
        net = AutoModelForCausalLM.from_config(config, dtype=dtype)
    else:
        path = embedded.resolve(model) if embedded.is_embedded(model) else model
        net, tok_path = AutoModelForCausalLM.from_pretrained(path, dtype=dtype), path
    tok = AutoTokenizer.from_pretrained(tok_path, padding_side="left")
    return net.to(device), tok


def one(args) -> dict:
    """Run one trainer for ``args.steps`` steps; its figures as a dict."""
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from rlvr.interfaces import TrainInputs
    from rlvr.train import GRPOLoop
    from rlvr.train.trl_bridge import checkpointing

    gpu = torch.cuda.is_available()
    dtype = torch.bfloat16 if gpu else torch.float32
    model, tok = load(args.model[0], dtype, "cuda" if gpu else "cpu")
    data = Dataset.from_list(rows(512))
    gen_kwargs = {"min_new_tokens": args.tokens} if args.pin else None
    sync = torch.cuda.synchronize if gpu else (lambda: None)

    generate_s: list[float] = []
    original = GRPOTrainer._generate

    def timed(self, prompts):  # every trainer's generation step, whatever samples underneath
        sync()
        start = time.perf_counter()
        out = original(self, prompts)
        sync()
        generate_s.append(time.perf_counter() - start)
        return out

    GRPOTrainer._generate = timed
    steps: list[dict] = []

    class Record(TrainerCallback):
        def on_step_begin(self, a, state, control, **kw):
            sync()
            self.start = time.perf_counter()

        def on_step_end(self, a, state, control, **kw):
            sync()
            steps.append({"s": time.perf_counter() - self.start})

        def on_log(self, a, state, control, logs=None, **kw):
            if logs and "completions/mean_length" in logs:
                steps[-1]["length"] = logs["completions/mean_length"]

    common = dict(max_steps=args.steps, per_device_train_batch_size=args.completions,
                  num_generations=args.generations, max_completion_length=args.tokens, learning_rate=1e-6,
                  lr_scheduler_type="constant", beta=0.0, logging_steps=1)
    with tempfile.TemporaryDirectory() as out:
        if args.one == "rlvr engine":
            loop = GRPOLoop(**common, save_steps=0, rollout="engine", rollout_compile=gpu and not args.no_compile,
                            extra={"generation_kwargs": gen_kwargs} if gen_kwargs else {})
            # Our loop builds its own trainer: hand it the recording callback through TRL's trainer class.
            import trl

            base = trl.GRPOTrainer

            class WithRecord(base):
                def __init__(self, *a, **kw):
                    super().__init__(*a, **kw, callbacks=[Record()])

            trl.GRPOTrainer = WithRecord

            class Events:
                def log(self, step, metrics, warnings):
                    pass

                def step_end(self, step, model):
                    pass

            loop.train(TrainInputs(model=model, tokenizer=tok, train=data, scorer=None,
                                   reward_functions=[last_number_reward], reward_weights=[1.0], output_dir=out,
                                   seed=0, events=Events()))
        else:
            best = args.one == "TRL best"
            extra = {**checkpointing(not best)}
            if best and gpu:
                extra["cache_implementation"] = "static"
            cfg = GRPOConfig(output_dir=out, **common, report_to=[], save_strategy="no", use_cpu=not gpu, bf16=gpu,
                             seed=0, disable_tqdm=True, generation_kwargs=gen_kwargs, **extra)
            GRPOTrainer(model=model, reward_funcs=[last_number_reward], args=cfg, train_dataset=data,
                        processing_class=tok, callbacks=[Record()]).train()

    later = slice(1, None) if len(steps) > 1 else slice(None)
    step_s = statistics.mean(s["s"] for s in steps[later])
    tokens = statistics.mean(s.get("length", args.tokens) for s in steps[later]) * args.completions
    if gpu:
        peak = torch.cuda.max_memory_allocated() / 2**30
    else:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    return {"trainer": args.one, "s_per_step": step_s, "tokens_per_s": tokens / step_s,
            "generate_share": statistics.mean(generate_s[later]) / step_s, "peak_gib": peak,
            "mean_length": tokens / args.completions}


def table(results: list[dict], title: str) -> str:
    base = {r["trainer"]: r["s_per_step"] for r in results}
    lines = [f"\n{title}\n", "| trainer | s/step | completion tokens/s | generating | peak memory GiB | mean length | "
             "vs TRL defaults | vs TRL best |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['trainer']} | {r['s_per_step']:.2f} | {r['tokens_per_s']:,.0f} | "
                     f"{r['generate_share']:.0%} | {r['peak_gib']:.2f} | {r['mean_length']:.1f} | "
                     f"{base['TRL defaults'] / r['s_per_step']:.2f}x | {base['TRL best'] / r['s_per_step']:.2f}x |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gpu", action="store_true", help="the issue's GPU sizes: both shapes, 128 x 256 tokens")
    p.add_argument("--model", action="append", help="a model (path, embedded://..., shape:<name>); repeatable")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--completions", type=int, default=None, help="completions per step")
    p.add_argument("--generations", type=int, default=16, help="completions per prompt")
    p.add_argument("--tokens", type=int, default=None, help="max completion tokens")
    p.add_argument("--pin", action="store_true", help="every completion exactly --tokens long")
    p.add_argument("--no-compile", action="store_true", help="the engine without torch.compile on a GPU")
    p.add_argument("--one", choices=TRAINERS, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print("RESULT " + json.dumps(one(args)))
        return
    models = args.model or (["shape:qwen2.5-0.5b", "shape:smollm2-135m"] if args.gpu
                            else ["embedded://smollm2-135m-instruct"])
    steps = args.steps or (4 if args.gpu else 4)
    completions = args.completions or (128 if args.gpu else 16)
    tokens = args.tokens or (256 if args.gpu else 40)
    pin = args.pin or args.gpu
    import torch
    import transformers
    import trl

    device = torch.cuda.get_device_name(0) if args.gpu else f"CPU, {os.cpu_count()} cores"
    versions = f"torch {torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}"
    for model in models:
        results = []
        for trainer in TRAINERS:
            cmd = [sys.executable, __file__, "--one", trainer, "--model", model, "--steps", str(steps),
                   "--completions", str(completions), "--generations", str(args.generations),
                   "--tokens", str(tokens)] + (["--pin"] if pin else []) + (["--no-compile"] if args.no_compile
                                                                              else [])
            done = subprocess.run(cmd, capture_output=True, text=True)
            line = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
            if done.returncode or not line:
                sys.exit(f"{trainer} on {model} failed:\n{done.stderr[-3000:]}")
            results.append(json.loads(line[0].removeprefix("RESULT ")))
        print(table(results, f"{model}: {steps} steps x {completions} completions x {tokens} tokens"
                             f"{' (pinned)' if pin else ''}, {device}; {versions}; {time.strftime('%Y-%m-%d')}"),
              flush=True)


if __name__ == "__main__":
    main()
