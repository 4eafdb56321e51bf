"""The training command: ``rlvr-train [group=option ...] [key=value ...]`` (same as ``python run_pipeline.py``).

Hydra composes the shipped config tree (``pkg://rlvr.conf``) with the command line; ``-m`` sweeps, ``--cfg job``
prints the composed config and ``--help`` lists the groups. Every mistake on the command line or in a config
file, Hydra's own included (unknown option, unknown key, bad override, YAML syntax), prints one line
``Config error: ...`` and exits with status 2, before any model loads, and leaves no run directory behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Any, Iterator

from omegaconf import OmegaConf

from rlvr import devices, distributed, preflight
from rlvr.config import CONFIG_PATH, exit_on_config_error, fail, open_overrides, register_resolvers
from rlvr.errors import ConfigError, DiskFull, Stopped
from rlvr.orchestration import build_pipeline, record_failure
from rlvr.report import sweep as sweep_summary
from rlvr.train.checkpoints import StopOnSignal

HYDRA_FILES = {".hydra", "run_pipeline.log"}
_config_errors: list[str] = []  # one line per job that stopped on a config mistake (Hydra would print more)
_stopped: list[tuple[Stopped, str]] = []  # runs that saved a checkpoint and stopped on a signal, with how to resume
_disk_full: list[str] = []  # runs that stopped on a full disk, one line each (what could not be written, what is kept)
_preflight_failed: list[str] = []  # run directories whose preflight (preflight=true) had a failing check


def run(cfg: Any) -> dict[str, Any] | None:
    """The Hydra task: build the pipeline (validating everything first), then run it in Hydra's run directory;
    with ``preflight=true``, check it instead (:mod:`rlvr.preflight`: the table, ``preflight.json``, no training).

    A ConfigError, found while building or while loading (a missing data file), ends the job quietly and is
    reported by :func:`main` as one line, and so is a full disk (:class:`rlvr.errors.DiskFull`, exit status 1);
    anything else is a bug and keeps its traceback. In a sweep (``-m``) a
    job that fails, for whatever reason, is recorded in its ``results.json`` and the others go on; the sweep's
    summary lists it and the command exits 1. SIGTERM or SIGINT stop the job with its work kept
    (:class:`rlvr.train.checkpoints.StopOnSignal`); a Ray task so stopped ends its process, for Ray to retry it.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    logging.captureWarnings(True)  # library warnings go to run_pipeline.log too, and through the progress bar
    _quiet_library_progress_bars()
    if not distributed.is_main():
        _quiet_other_ranks()
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    overrides = [o.removeprefix("++") for o in hydra_cfg.overrides.task]
    command = " ".join([Path(sys.argv[0]).name, *(a.removeprefix("++") for a in sys.argv[1:])])
    sweep = hydra_cfg.mode == RunMode.MULTIRUN
    launcher = str(hydra_cfg.launcher.get("_target_", "")) if sweep else ""
    if sweep:
        _share_the_machine(hydra_cfg)
    try:
        with StopOnSignal(at_once=True, run_dir=str(run_dir)), _registered_job():
            try:
                if _stop_requested():  # the machine is going away: a job that has not started waits for the next
                    raise Stopped("SIGTERM", None, str(run_dir))
                cfg, checks = preflight.split(cfg)
                if checks is not None:
                    if not preflight.run(cfg, checks, run_dir).passed:
                        _preflight_failed.append(str(run_dir))
                    return None
                return build_pipeline(cfg).run(run_dir, overrides=overrides, command=command)
            except Stopped:
                raise
            except Exception as e:
                if not sweep:
                    raise
                # One job of a sweep failed (a config mistake in its values too): its results.json says why, the
                # summary lists it, the other jobs go on, and the command exits 1 naming it.
                logging.getLogger("rlvr").error("[rlvr] job %s FAILED: %s", run_dir, record_failure(run_dir, e))
                return None
    except ConfigError as e:
        _discard_if_empty(run_dir)
        _config_errors.append(str(e))
        return None
    except Stopped as e:
        again = [a for a in command.split() if not a.startswith(("output_dir=", "resume="))]
        _stopped.append((e, " ".join([*again, f"output_dir={run_dir}"])))
        if "ray" in launcher and e.signal is not None:  # its machine is going: the Ray task ends its worker
            # process, so that Ray runs it again on a machine that stays, where it resumes
            logging.getLogger("rlvr").warning("[rlvr] job %s %s; its Ray worker exits so that Ray retries it.",
                                              run_dir, e)
            logging.shutdown()
            os._exit(128 + (e.signal or signal.SIGTERM))
        return None
    except DiskFull as e:  # not a bug: said in one line, without a traceback
        _disk_full.append(str(e))
        return None


def _share_the_machine(hydra_cfg: Any) -> None:
    """Jobs a launcher runs side by side share the machine: a joblib worker claims its share of the GPUs, and
    every job its share of the CPU cores (joblib: cores / n_jobs; Ray: the CPUs its task reserved)."""
    launcher = str(hydra_cfg.launcher.get("_target_", ""))
    if "joblib" in launcher:
        n_jobs = int(hydra_cfg.launcher.n_jobs)
        devices.claim(n_jobs, Path(hydra_cfg.sweep.dir) / ".devices")
        devices.share_cores(devices.cores() // devices.concurrent_jobs(n_jobs))
    elif "ray" in launcher:
        devices.share_cores(int(OmegaConf.select(hydra_cfg.launcher, "ray.remote.num_cpus") or 1))  # a task: 1 CPU


def _quiet_library_progress_bars() -> None:
    """transformers draws a bar for every weight load and checkpoint write ("Writing model shards"); ours show
    the stages, the training steps and the evaluations."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()


def _quiet_other_ranks() -> None:
    """Under a launcher, rank 0 prints and keeps ``run_pipeline.log``; the other ranks only say what goes wrong
    (on the console, never into rank 0's log file)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler):
            root.removeHandler(handler)
            handler.close()
    for name in ("", "rlvr"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _one_run_dir(argv: list[str]) -> list[str]:
    """Under a launcher every rank must write into one run directory, but each would pick its own
    ``outputs/<date>/<time>``: rank 0's choice is given to all as ``output_dir=`` (unless one is set)."""
    if not distributed.launched() or any(a.startswith(("output_dir=", "++output_dir=")) for a in argv):
        return argv
    if any(a in ("-m", "--multirun") for a in argv):
        fail("A launcher (torchrun, accelerate launch) runs one job across its processes: a -m sweep cannot run "
             "inside it; sweep with a Hydra launcher instead (see the README).")
    import time

    return [*argv, "output_dir=" + distributed.agree(time.strftime("outputs/%Y-%m-%d/%H-%M-%S"))]


@contextlib.contextmanager
def _registered_job() -> Iterator[None]:
    """With ``RLVR_JOBS_DIR`` set (in the image for cloud machines), the job's process is listed there while it
    runs, so that the container's entry (infrastructure/scripts/run.sh) sends the machine's stop signal to every
    job: a sweep's worker processes, each rank of a launcher, a Ray task, none of which is its child."""
    jobs = os.environ.get("RLVR_JOBS_DIR")
    if not jobs:
        yield
        return
    entry = Path(jobs) / str(os.getpid())
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.touch()
    try:
        yield
    finally:
        entry.unlink(missing_ok=True)


def _stop_requested() -> bool:
    """Whether run.sh was told to stop (``$RLVR_JOBS_DIR/stop``): then a job that has not started yet (the next
    one of a sweep, a Ray task retried on this machine) does not start."""
    jobs = os.environ.get("RLVR_JOBS_DIR")
    return bool(jobs) and (Path(jobs) / "stop").exists()


def _discard_if_empty(run_dir: Path) -> None:
    """A run that failed on its config leaves nothing behind (Hydra made the directory before we ran)."""
    if run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= HYDRA_FILES:
        shutil.rmtree(run_dir, ignore_errors=True)
        for parent in run_dir.parents:  # outputs/<date>/ that only held this run
            if parent == Path.cwd() or not parent.is_dir() or any(parent.iterdir()):
                break
            parent.rmdir()


def main() -> None:
    """Console script entry point (``rlvr-train``) and ``run_pipeline.py``'s."""
    import hydra

    register_resolvers()
    started = distributed.init()  # under torchrun / accelerate launch: join the process group first
    sys.argv[1:] = open_overrides(_one_run_dir(sys.argv[1:]))
    try:
        exit_on_config_error(hydra.main(config_path=CONFIG_PATH, config_name="config", version_base=None)(run))
    finally:
        if started:
            distributed.shutdown()
    if _config_errors:
        fail(_config_errors[0])
    if sweep_summary.failed:
        print(f"[rlvr] {len(sweep_summary.failed)} job(s) of the sweep failed (see summary.md):",
              *sweep_summary.failed, sep="\n  ", file=sys.stderr)
        sys.exit(1)
    if _disk_full:
        print(f"[rlvr] {_disk_full[0]}", file=sys.stderr)
        sys.exit(1)
    if _preflight_failed:
        sys.exit(1)
    if _stopped:
        stop, again = _stopped[0]
        where = (f"at step {stop.step} after saving a checkpoint" if stop.step is not None
                 else "outside training (the latest checkpoint is kept)")
        print(f"[rlvr] Stopped by {stop.reason} {where}. Resume with: {again}", file=sys.stderr)
        sys.exit(128 + stop.signal if stop.signal is not None else 1)



if __name__ == "__main__":
    main()
