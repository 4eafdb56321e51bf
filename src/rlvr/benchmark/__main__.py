"""Benchmark models on reasoning tasks: ``python -m rlvr.benchmark models=[A,B] tasks=[chain_sum,leg_counting]``.

Models are hub ids, local checkpoints or run directories (LoRA adapters detected). Composes
``conf/benchmark.yaml`` with the command line; writes one JSON per (task, model), ``summary.csv``,
``summary.md`` and ``accuracy.png`` into ``output_dir`` (default: ``benchmarks/<date>/<time>``). A config
mistake prints one message and exits with status 2; a failed job exits with status 1 after the others ran.
"""

import sys

import hydra
from omegaconf import DictConfig

from rlvr.config import ConfigError, register_configs
from rlvr.config.registry import CONF_DIR

register_configs()


@hydra.main(version_base=None, config_path=str(CONF_DIR), config_name="benchmark")
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from rlvr.benchmark import Benchmark

    try:
        bench = Benchmark.from_config(cfg, output_dir=cfg.output_dir or HydraConfig.get().runtime.output_dir)
    except ConfigError as e:
        print(f"Config error: {e}", file=sys.stderr)
        sys.exit(2)
    records = bench.run()
    print(f"[benchmark] results: {bench.output_dir}/summary.md")
    if any(r["error"] for r in records):
        sys.exit(1)


if __name__ == "__main__":
    main()
