"""Train a model with RLVR: ``python run_pipeline.py [group=option ...] [key=value ...]``.

Composes ``conf/config.yaml`` with the command line, builds the PipelineOrchestrator and runs it. A config
mistake prints one clear message (no traceback) and exits with status 2.
"""

import sys

import hydra
from omegaconf import DictConfig

from rlvr.config import ConfigError, register_configs

register_configs()


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from rlvr.orchestration import PipelineOrchestrator

    try:
        orchestrator = PipelineOrchestrator(cfg, run_dir=cfg.output_dir or HydraConfig.get().runtime.output_dir)
        orchestrator.run()
    except ConfigError as e:  # a user mistake found while building or loading (a missing file, a field)
        print(f"Config error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
