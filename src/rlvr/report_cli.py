"""Write the report of a finished (or failed) run: ``rlvr-report RUN_DIR [--samples N]`` (or
``python -m rlvr.report_cli``). The command line of :mod:`rlvr.report`, which is a library.

For a training run directory this writes ``RUN_DIR/report.md`` and ``RUN_DIR/plots/*.png``. For a sweep's root
directory (a benchmark's ``output_dir``; Hydra wrote ``multirun.yaml`` there) it rebuilds ``summary.csv``,
``summary.md`` and ``accuracy.png`` from the jobs' ``results.json`` (:mod:`rlvr.report.sweep`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rlvr.report.run_report import write_report
from rlvr.report.sweep import is_sweep, summarize


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rlvr-report", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a run directory, or a sweep's (a benchmark's output_dir)")
    parser.add_argument("--samples", type=int, default=4, help="completions shown per evaluation (default 4)")
    args = parser.parse_args(argv)
    if not args.run_dir.is_dir():
        print(f"Not a directory: {args.run_dir}", file=sys.stderr)
        return 2
    if is_sweep(args.run_dir):
        print("\n".join(str(p) for p in summarize(args.run_dir).values()))
        return 0
    if not any((args.run_dir / f).exists() for f in ("config.yaml", "results.json", "metrics.jsonl")):
        print(f"{args.run_dir} holds no run (config.yaml, results.json or metrics.jsonl).", file=sys.stderr)
        return 2
    print(write_report(args.run_dir, num_samples=args.samples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
