"""The training command: ``rlvr-train [group=option ...] [key=value ...]`` (same as ``python run_pipeline.py``).

Hydra composes the shipped config tree (``pkg://rlvr.conf``) with the command line; ``-m`` sweeps, ``--cfg job``
prints the composed config and ``--help`` lists the groups. Every mistake on the command line or in a config
file, Hydra's own included (unknown option, unknown key, bad override, YAML syntax), prints one line
``Config error: ...`` and exits with status 2, before any model loads, and leaves no run directory behind.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from rlvr.config import CONFIG_PATH, one_line, register_resolvers
from rlvr.errors import ConfigError

HYDRA_FILES = {".hydra", "run_pipeline.log"}


def run(cfg: Any) -> dict[str, Any]:
    """The Hydra task: build the pipeline (validating everything first), then run it in Hydra's run directory."""
    from hydra.core.hydra_config import HydraConfig

    from rlvr.orchestration import build_pipeline

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        pipeline = build_pipeline(cfg)
    except ConfigError:
        _discard_if_empty(run_dir)
        raise
    command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
    return pipeline.run(run_dir, overrides=list(hydra_cfg.overrides.task), command=command)


def _discard_if_empty(run_dir: Path) -> None:
    """A run that failed on its config leaves nothing behind (Hydra made the directory before we ran)."""
    if run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= HYDRA_FILES:
        shutil.rmtree(run_dir, ignore_errors=True)


def main() -> None:
    """Console script entry point (``rlvr-train``) and ``run_pipeline.py``'s."""
    import hydra

    register_resolvers()
    # Hydra prints its errors over many lines and exits 1; let them through to us instead, to say them in one.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    app = hydra.main(config_path=CONFIG_PATH, config_name="config", version_base=None)(run)
    try:
        app()
    except ConfigError as e:
        _fail(str(e))
    except Exception as e:  # noqa: BLE001 - only composition errors are turned into one line; others re-raise
        line = one_line(e)
        if line is None:
            raise
        _fail(line)


def _fail(message: str) -> None:
    print(f"Config error: {message}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    main()
