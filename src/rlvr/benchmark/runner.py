"""Models x tasks as a Hydra multirun of the evaluation-only pipeline:
``python -m rlvr.benchmark models=[A,B] tasks=[chain_sum,leg_counting] data.test_size=48``.

:func:`main` composes ``conf/benchmark.yaml`` with the command line once, builds every job's pipeline (which
validates its config; nothing loads), then runs the ``hydra.main`` app in multirun mode over the models' and
tasks' labels (``benchmark.model``, ``benchmark.task``). Each job (:func:`run_job`) applies its model and task to
the config and runs ``build_pipeline(...).run(job_dir)``: data -> model -> scorer -> evaluation, writing
``results.json`` and ``samples_eval.jsonl`` in ``<output_dir>/<model>/<task>/``. Hydra's launcher runs the jobs
(in turn by default); the ``SweepSummary`` callback writes ``summary.csv``, ``summary.md`` and ``accuracy.png`` at
the sweep root.

A config mistake prints one line ``Config error: ...`` and exits with status 2 before any job starts. A job that
fails (a model that does not exist, a task that breaks) is recorded in its ``results.json`` (``run.status:
failed``, ``run.error``) and in the summary; the others run, and the command exits with status 1.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from rlvr.benchmark.jobs import Compose, Model, Task, find, job_config, models, tasks
from rlvr.config import CONFIG_PATH, exit_on_config_error, load_config, open_overrides, register_resolvers
from rlvr.errors import ConfigError
from rlvr.orchestration import build_pipeline, record_failure
from rlvr.report import sweep as sweep_summary

log = logging.getLogger(__name__)
# Flags after which Hydra only prints (help, the config): passed through as they are, nothing runs.
_PRINT_ONLY = ("--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i", "--shell-completion", "-sc")
_failed: list[str] = []  # one line per job that failed, in this process (the default launcher runs them here)


def sweep_overrides(cfg: DictConfig, compose: Compose | None = None) -> list[str]:
    """Check every job's config (``build_pipeline`` validates and constructs; nothing loads), then return the
    overrides that sweep the models' and tasks' labels (model-major, in the order listed). ``compose`` makes a
    task's data option (:func:`rlvr.benchmark.jobs.job_config`)."""
    model_list, task_list = models(cfg.models), tasks(cfg.tasks)
    for model in model_list:
        for task in task_list:
            try:
                build_pipeline(job_config(cfg, model, task, compose=compose))
            except ConfigError as e:
                raise ConfigError(f"{e} (model {model.label}, task {task.label})") from None
    return [f"++benchmark.model={','.join(_quoted(m.label) for m in model_list)}",
            f"++benchmark.task={','.join(_quoted(t.label) for t in task_list)}"]


def run_job(cfg: DictConfig) -> dict[str, Any] | None:
    """The Hydra task of one job: its model and task applied to the pipeline config, then the pipeline run in
    the job's directory. A failure is recorded in the job's ``results.json`` and does not stop the sweep."""
    from hydra import compose
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.get()
    job_dir = Path(hydra_cfg.runtime.output_dir)
    overrides = [o.removeprefix("++") for o in hydra_cfg.overrides.task]
    asked = [a.removeprefix("++") for a in sys.argv[1:] if a != "--multirun" and not a.startswith("++benchmark.")]
    model, task = find(cfg)

    def with_task(extra: list[str]) -> DictConfig:  # the app's own search path: a user's --config-dir too
        return compose(config_name="benchmark", overrides=[*hydra_cfg.overrides.task, *open_overrides(extra)])

    try:
        results = build_pipeline(job_config(cfg, model, task, str(job_dir), compose=with_task)).run(
            job_dir, overrides=overrides, command=" ".join(["python -m rlvr.benchmark", *asked]))
    except Exception as e:  # noqa: BLE001 - one broken model or task must not stop the others
        _record_failure(job_dir, model, task, e)
        return None
    result = results["eval"]
    log.info("[benchmark] %s x %s: accuracy %.1f%% (n=%d) in %.1f s", model.label, task.label,
             100 * result["accuracy"], result["n"], results["run"]["wall_time_s"])
    return results


def _record_failure(job_dir: Path, model: Model, task: Task, error: Exception) -> None:
    line = record_failure(job_dir, error)
    _failed.append(f"{model.label} x {task.label}: {line}")
    log.error("[benchmark] %s x %s FAILED: %s", model.label, task.label, line)


def _quoted(label: str) -> str:
    """A label as a quoted Hydra override value (never read as a number, a boolean or null)."""
    return "'" + label.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _config_dir(args: list[str]) -> str | None:
    """``--config-dir DIR`` (or ``-cd DIR``, ``--config-dir=DIR``): the user's config tree, searched first."""
    for i, arg in enumerate(args):
        if arg in ("--config-dir", "-cd") and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--config-dir="):
            return arg.split("=", 1)[1]
    return None


def main(argv: list[str] | None = None) -> None:
    """``python -m rlvr.benchmark [key=value ...]``: the benchmark as a Hydra multirun (see the module docstring)."""
    import hydra

    register_resolvers()
    _failed.clear()
    args = open_overrides(list(sys.argv[1:] if argv is None else argv))
    app = hydra.main(config_path=CONFIG_PATH, config_name="benchmark", version_base=None)(run_job)

    def sweep() -> None:
        if any(a.split("=", 1)[0] in _PRINT_ONLY for a in args):
            sys.argv[1:] = args
            app()
            return
        config_dir = _config_dir(args)
        overrides = [a for a in args if not a.startswith("-") and a != config_dir]
        labels = sweep_overrides(load_config(overrides, config_name="benchmark", config_dir=config_dir),
                                 lambda extra: load_config([*overrides, *extra], config_name="benchmark",
                                                           config_dir=config_dir))
        sys.argv[1:] = ["--multirun", *[a for a in args if a not in ("-m", "--multirun")], *labels]
        app()

    exit_on_config_error(sweep)
    failed = _failed or sweep_summary.failed  # jobs under a parallel launcher fail in other processes
    if failed:
        print(f"[benchmark] {len(failed)} job(s) failed (see summary.md):", *failed, sep="\n  ", file=sys.stderr)
        sys.exit(1)

