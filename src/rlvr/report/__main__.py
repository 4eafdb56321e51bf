"""Write the report of a finished (or failed) run: ``python -m rlvr.report RUN_DIR [--samples N]``.

For a training run directory this writes ``RUN_DIR/report.md`` and ``RUN_DIR/plots/*.png``. For a benchmark
directory (``results/*.json``) it rebuilds ``summary.csv``, ``summary.md`` and ``accuracy.png``.
"""

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rlvr.report", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a run directory (run_pipeline.py) or a benchmark directory")
    parser.add_argument("--samples", type=int, default=4, help="completions shown per evaluation (default 4)")
    args = parser.parse_args(argv)
    if not args.run_dir.is_dir():
        print(f"Not a directory: {args.run_dir}", file=sys.stderr)
        return 2
    results = sorted((args.run_dir / "results").glob("*.json"))
    if results and not (args.run_dir / "config.yaml").exists():
        from rlvr.benchmark.runner import write_summary

        paths = write_summary([json.loads(p.read_text()) for p in results], args.run_dir)
        print("\n".join(str(p) for p in paths.values()))
        return 0
    if not any((args.run_dir / f).exists() for f in ("config.yaml", "results.json", "metrics.jsonl")):
        print(f"{args.run_dir} holds no run (config.yaml, results.json or metrics.jsonl).", file=sys.stderr)
        return 2
    from rlvr.report import write_report

    print(write_report(args.run_dir, num_samples=args.samples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
