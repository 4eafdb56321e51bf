"""The preflight against what it predicts: how long it takes next to the run it checks, how close its memory
estimate comes to a real run's peak, and its estimates on paper for models this machine cannot hold.

    python bench/preflight.py speed            # preflight.sample=0, the full preflight, then the run itself
    python bench/preflight.py memory           # a real 3-step run's peak RSS vs the estimate for the same job
    python bench/preflight.py paper            # 0.5B and 7B (Qwen2.5 shapes) under one GPU, FSDP and ZeRO-3

``speed`` and ``memory`` run the embedded default job (``python run_pipeline.py``) in subprocesses, each wrapped
by a process that reports its peak resident memory (the largest of the job's processes). Extra overrides after
``--`` go to every command (``python bench/preflight.py speed -- train.max_steps=10``). ``paper`` needs nothing
but the shapes written below (as in each model's config.json: no hub access).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GIB = 1024**3


def timed(args: list[str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (GiB) of the largest process, and the exit status of ``run_pipeline.py args``."""
    wrapper = ("import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc, file=sys.stderr)")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", wrapper, sys.executable, str(REPO / "run_pipeline.py"), *args],
                          cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    peak_kib, rc = proc.stderr.strip().splitlines()[-1].split()
    return wall, int(peak_kib) * 1024 / GIB, int(rc)


def preflight(out: Path) -> dict:
    """The ``preflight.json`` a preflight wrote into ``out``."""
    return json.loads((out / "preflight.json").read_text())


def speed(extra: list[str]) -> None:
    out = Path(tempfile.mkdtemp(prefix="bench-preflight-"))
    rows = []
    for name, args in (("preflight.sample=0", ["preflight=true", "preflight.sample=0"]),
                       ("preflight (default)", ["preflight=true"]), ("the run", ["save_model=false"])):
        wall, peak, rc = timed([*args, *extra, "observers=none", f"output_dir={out / name.split()[0]}"])
        rows.append((name, wall, peak, rc))
    estimate = preflight(out / "preflight")
    predicted = next(c for c in estimate["checks"] if c["name"] == "time")["figures"]["total_s"]
    run = rows[-1][1]
    print(f"\nThe embedded default job{' with ' + ' '.join(extra) if extra else ''}, one after another "
          f"({time.strftime('%Y-%m-%d')})\n")
    print("| command | wall s | share of the run | peak RSS GiB | exit |")
    print("|---|---|---|---|---|")
    for name, wall, peak, rc in rows:
        print(f"| {name} | {wall:.1f} | {wall / run:.1%} | {peak:.2f} | {rc} |")
    print(f"\nThe preflight predicted the run at {predicted:.0f} s; it took {run:.0f} s "
          f"({predicted / run - 1:+.0%}). Its own time by part: {estimate['phases_s']}")


def memory(extra: list[str]) -> None:
    out = Path(tempfile.mkdtemp(prefix="bench-preflight-"))
    job = ["train.max_steps=3", "train.save_steps=0", "eval.baseline=false", "eval.num_examples=8", "save_model=false",
           "observers=none", *extra]
    wall, peak, rc = timed([*job, f"output_dir={out / 'run'}"])
    timed([*job, "preflight=true", "preflight.sample=0", f"output_dir={out / 'preflight'}"])
    found = next(c for c in preflight(out / "preflight")["checks"] if c["name"] == "memory")["figures"]
    print(f"\nMemory of a 3-step run of the embedded default job ({time.strftime('%Y-%m-%d')}): estimate (preflight, "
          "no weights loaded) against the run's peak resident memory\n")
    print("| | GiB |")
    print("|---|---|")
    for part, gib in found["per_device_gib"].items():
        print(f"| estimate: {part} | {gib:.2f} |")
    print(f"| **estimate: peak** ({found['phase']}) | **{found['peak_gib']:.2f}** |")
    print(f"| **measured: peak RSS of the run** ({wall:.0f} s, exit {rc}) | **{peak:.2f}** |")
    print(f"\nThe estimate is {found['peak_gib'] / peak - 1:+.0%} off the measured peak.")


def qwen(size: str):
    from transformers import Qwen2Config

    if size == "0.5B":
        return Qwen2Config(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                           num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768,
                           tie_word_embeddings=True)
    return Qwen2Config(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                       num_key_value_heads=4, vocab_size=152064, max_position_embeddings=32768,
                       tie_word_embeddings=False)


def paper(extra: list[str]) -> None:
    from rlvr.preflight.memory import Launch, Workload, estimate, shape_of

    launches = [("1 GPU", Launch()), ("FSDP x 8", Launch("fsdp", 8)), ("ZeRO-3 x 8", Launch("deepspeed", 8, 3))]
    print("\nGRPO, bf16, full fine-tuning, AdamW; per device: 8 sequences of 256 prompt + 512 completion tokens per "
          "micro-batch (the rollout decodes the same 8); GiB\n")
    print("| model | checkpointing | launch | weights | gradients | optimizer | activations | KV cache | gathered "
          "| peak |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size in ("0.5B", "7B"):
        shape = shape_of(qwen(size))
        for ckpt in (False, True):
            work = Workload(dtype="bfloat16", micro_batch=8, prompt_tokens=256, completion_tokens=512,
                            logit_tokens=512, fused_head=True, rollout_rows=8, rollout_tokens=768,
                            gradient_checkpointing=ckpt)
            for name, launch in launches:
                e = estimate(shape, work, launch)
                g = {k: v / GIB for k, v in e.parts.items()}
                print(f"| {size} ({shape.params / 1e9:.2f}B) | {'on' if ckpt else 'off'} | {name} | {g['weights']:.1f} "
                      f"| {g['gradients']:.1f} | {g['optimizer']:.1f} | {g['activations']:.1f} | {g['kv_cache']:.2f} "
                      f"| {g['gathered']:.1f} | **{e.peak / GIB:.1f}** |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["speed", "memory", "paper"])
    parser.add_argument("overrides", nargs="*", help="after --: overrides for every command")
    args = parser.parse_args()
    {"speed": speed, "memory": memory, "paper": paper}[args.what](args.overrides)


if __name__ == "__main__":
    main()
