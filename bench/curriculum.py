"""The curriculum against fixed difficulties, with the same step budget (``experiment=curriculum``): fixed easy
(chain_sum level 0, 2 terms), fixed hard (level 2, 4 terms) and the adaptive curriculum (from level 0, up when the
last 4 steps' accuracy passes 60%), each with two seeds, held-out accuracy per level (96 rows each, disjoint from
training) before and after. Each arm is one ``-m`` sweep over the seeds on Hydra's joblib launcher (the jobs
share the cores), as a user would run it.

    python bench/curriculum.py                     # runs the 6 jobs (3 sweeps of 2), then prints the table
    python bench/curriculum.py --read DIR          # only the table, from the sweeps under DIR

Prints one markdown row per job and the mean per arm.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXED = ["data.curriculum.raise_above=1", "data.curriculum.lower_below=0"]  # levels never move
ARMS = {
    "fixed easy (L0)": FIXED,
    "fixed hard (L2)": [*FIXED, "data.curriculum.start={chain_sum: 2}"],
    "curriculum": [],
}
LEVELS = ["chain_sum/L0", "chain_sum/L1", "chain_sum/L2"]


def run(out: Path, seeds: str, jobs: int) -> None:
    for i, (arm, overrides) in enumerate(ARMS.items()):
        start = time.perf_counter()
        cmd = [sys.executable, str(REPO / "run_pipeline.py"), "-m", "experiment=curriculum", f"seed={seeds}",
               *overrides, "hydra/launcher=local", f"hydra.launcher.n_jobs={jobs}", f"hydra.sweep.dir={out / str(i)}",
               "observers=default"]
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        print(f"{arm}: exit {proc.returncode} in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        if proc.returncode:
            print(proc.stderr[-3000:], file=sys.stderr)


def table(out: Path) -> str:
    rows, means = [], {}
    for i, arm in enumerate(ARMS):
        for results in sorted((out / str(i)).glob("*/results.json")):
            r = json.loads(results.read_text())
            seed = next((o.split("=", 1)[1] for o in r["run"]["overrides"] if o.startswith("seed=")), "?")
            base, final = r["baseline"]["per_level"], r["final"]["per_level"]
            curriculum = r.get("curriculum") or {}
            level, top = (curriculum.get(k, {}).get("chain_sum") for k in ("levels", "highest_reached"))
            rows.append(f"| {arm} | {seed} | " + " | ".join(f"{base[lv]:.1%} → {final[lv]:.1%}" for lv in LEVELS)
                        + f" | L{level} (highest L{top}) | {r['run']['wall_time_s'] / 60:.1f} |")
            means.setdefault(arm, []).append(final[LEVELS[-1]] - base[LEVELS[-1]])
    head = ["| arm | seed | L0 (2 terms) | L1 (3 terms) | L2 (4 terms, hardest) | training level at the end "
            "| minutes |", "|---|---|---|---|---|---|---|"]
    tail = ["", "| arm | mean gain at L2 (hardest) | runs |", "|---|---|---|"]
    tail += [f"| {arm} | {sum(g) / len(g):+.1%} | {len(g)} |" for arm, g in means.items()]
    return "\n".join(head + rows + tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "bench_curriculum")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--jobs", type=int, default=2, help="jobs of a sweep run side by side")
    parser.add_argument("--read", type=Path, help="print the table of sweeps already run under this directory")
    args = parser.parse_args()
    if args.read is None:
        run(args.out, args.seeds, args.jobs)
    print(table(args.read or args.out))


if __name__ == "__main__":
    main()
