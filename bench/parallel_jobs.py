"""Jobs side by side on CPU, with and without sharing the cores: two smoke-sized jobs (``experiment=smoke``, seeds
0 and 1) run at once by the local launcher (``hydra/launcher=local hydra.launcher.n_jobs=2``), twice:

- ``shared``: as rlvr runs them, each job on ``cores / 2`` threads (``rlvr.devices.share_cores``);
- ``a thread per core``: ``OMP_NUM_THREADS=<cores>`` set by hand, so each job starts torch with a thread per
  core, as every process does by default, and the two jobs oversubscribe the cores.

    python bench/parallel_jobs.py                                    # the embedded model
    python bench/parallel_jobs.py --rounds 2                         # A B, then B A: load drifts even out
    python bench/parallel_jobs.py model.name_or_path=/path/to/model  # any overrides, given to both sweeps

Prints, per sweep: threads per job, each job's wall time and training time (from its ``results.json``), the
sweep's wall time and the machine's load average before it. On a machine other processes share, the figures
move with their load: say so with them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def sweep(root: Path, overrides: list[str], threads: int | None) -> tuple[float, list[dict]]:
    """Run the two jobs at once; returns the sweep's wall seconds and each job's results."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    command = [sys.executable, str(REPO / "run_pipeline.py"), "-m", "experiment=smoke", "seed=0,1",
               "hydra/launcher=local", "hydra.launcher.n_jobs=2", "observers=none", f"hydra.sweep.dir={root}",
               *overrides]
    started = time.perf_counter()
    proc = subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"the sweep failed:\n{proc.stderr[-3000:]}")
    return wall, [json.loads((root / job / "results.json").read_text()) for job in ("0", "1")]


def main() -> None:
    import argparse

    from rlvr.devices import cores

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="each round runs both modes; odd rounds reversed")
    args, overrides = parser.parse_known_args()
    modes = [("a thread per core", cores()), ("shared", None)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            for mode, threads in modes if i % 2 == 0 else modes[::-1]:
                load = os.getloadavg()[0]
                wall, jobs = sweep(Path(tmp) / f"{i}-{mode.replace(' ', '_')}", overrides, threads)
                rows.append((mode, jobs, wall, load))
    print(f"\n{cores()} cores, 2 jobs at once (experiment=smoke, seeds 0 and 1) {' '.join(overrides)}\n")
    print("| mode | threads per job | job wall s | job training s | sweep wall s | load before |")
    print("|---|---|---|---|---|---|")
    for mode, jobs, wall, load in rows:
        threads = ", ".join(str(j["run"]["threads"]) for j in jobs)
        job_wall = ", ".join(f"{j['run']['wall_time_s']:.1f}" for j in jobs)
        training = ", ".join(f"{j['train']['runtime_s']:.1f}" for j in jobs)
        print(f"| {mode} | {threads} | {job_wall} | {training} | {wall:.1f} | {load:.1f} |")


if __name__ == "__main__":
    main()
