"""Benchmark models on reasoning tasks: ``python -m rlvr.benchmark models=[A,B] tasks=[chain_sum,leg_counting]``.

A Hydra multirun of the evaluation-only pipeline over models x tasks (:mod:`rlvr.benchmark.runner`); the summary
(``summary.csv``, ``summary.md``, ``accuracy.png``) lands at the sweep root, ``output_dir`` (default
``benchmarks/<date>/<time>``). A config mistake prints one line and exits with status 2; a failed job is recorded
in the summary and the command exits with status 1 after the others ran.
"""

from rlvr.benchmark.runner import main

if __name__ == "__main__":
    main()
