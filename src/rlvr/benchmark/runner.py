"""The benchmark: every model x every task on fixed held-out sets, one worker process per visible GPU.

Each (model, task) job uses the training pipeline's own pieces: the data component builds the held-out rows
(fixed by ``data.test_seed``), :class:`~rlvr.data.PromptTemplate` writes the prompt, :class:`~rlvr.rewards.Scorer`
judges and :class:`~rlvr.evaluation.Evaluator` generates in batches. Nothing here generates or scores.

On GPUs, a spawned worker per device gets ``CUDA_VISIBLE_DEVICES`` set to that one device in its environment
before Python starts, so it sees exactly one GPU and always uses ``cuda:0``. Work units (a model with a share
of its tasks) come from a queue, so a worker loads each model once per unit. Without GPUs jobs run one after
another in this process. Run it with ``python -m rlvr.benchmark`` (see ``conf/benchmark.yaml``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import queue
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

from omegaconf import DictConfig, OmegaConf

from rlvr.benchmark.models import ModelSource, load_model, resolve_model, unique_labels
from rlvr.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """One (model, task) evaluation; ``data`` is the data component's config node for the task."""

    model: ModelSource
    task: str
    data: dict[str, Any]

    @property
    def filename(self) -> str:
        return f"{self.task}__{self.model.label}.json"


class Benchmark:
    """Models x tasks, evaluated in parallel across GPUs (sequentially on CPU); writes one JSON per job,
    ``summary.csv``, ``summary.md`` and ``accuracy.png`` into ``output_dir``.

    Args:
        models: hub ids, local checkpoints or run directories; an entry ``{path: ..., label: ...}`` names one.
        tasks: task names (``[chain_sum, leg_counting]``) or mappings ``{task:, params:, mixture:, label:}``; each
            entry replaces those fields of ``data``; ``label`` names it in the tables (default: the task name).
        data: the data component's node (its ``test_size`` and ``test_seed`` fix the held-out sets).
        prompts, model, eval: config nodes of the prompt template, the model loader (dtype, attention; its
            ``name_or_path`` is replaced by each model) and the evaluator.
        output_dir: where the files go.
        devices: ``auto`` (every visible GPU, else CPU), ``cpu``, or a list of GPU indices such as ``[0, 2]``.
        prompt_from_run: ask a run directory's model with the prompt it was trained with (its ``config.yaml``).
    """

    def __init__(
        self,
        models: list[Any],
        tasks: list[Any],
        data: dict[str, Any],
        prompts: dict[str, Any],
        model: dict[str, Any],
        eval: dict[str, Any],  # noqa: A002 - the config group's name
        output_dir: str,
        devices: str | list[int] = "auto",
        prompt_from_run: bool = True,
    ):
        if not models:
            raise ConfigError("models is empty: list at least one hub id, local checkpoint or run directory.")
        if not tasks:
            raise ConfigError("tasks is empty: list at least one task, e.g. tasks=[chain_sum,leg_counting].")
        if not (devices in ("auto", "cpu") or (isinstance(devices, list) and all(isinstance(d, int) for d in devices))):
            raise ConfigError(f"devices must be 'auto', 'cpu' or a list of GPU indices like [0,1]; got {devices!r}.")
        self.sources = unique_labels([_model_source(m, i) for i, m in enumerate(models)])
        self.tasks = _task_nodes(tasks, data)
        self.settings = {"prompts": dict(prompts), "model": dict(model), "eval": dict(eval),
                         "prompt_from_run": prompt_from_run, "output_dir": str(output_dir)}
        self.output_dir, self.devices = Path(output_dir), devices
        self._check_components()

    @classmethod
    def from_config(cls, cfg: DictConfig, output_dir: str | Path | None = None) -> Benchmark:
        """Build from the composed ``conf/benchmark.yaml`` (validated the way the training config is)."""
        from rlvr.config import check_choices, missing_keys

        missing = missing_keys(cfg)
        if missing:
            raise ConfigError(f"These keys must be set: {', '.join(missing)}.")
        check_choices(cfg)
        plain = OmegaConf.to_container(cfg, resolve=True)
        out = output_dir or plain["output_dir"]
        if not out:
            raise ConfigError("output_dir is not set: pass output_dir=PATH.")
        keys = ("models", "tasks", "data", "prompts", "model", "eval", "devices", "prompt_from_run")
        return cls(output_dir=str(out), **{k: plain[k] for k in keys})

    def _check_components(self) -> None:
        """Build the cheap components once here, so a config mistake fails before any worker starts."""
        from hydra.utils import instantiate

        for where in ("prompts", "eval"):
            _build(instantiate, self.settings[where], where)
        for label, node in self.tasks.items():
            _build(instantiate, node, f"tasks.{label}")

    def jobs(self) -> list[Job]:
        """Every (model, task) pair, model-major."""
        return [Job(source, task, node) for source in self.sources for task, node in self.tasks.items()]

    # --- running ---------------------------------------------------------------------------------------------
    def run(self) -> list[dict[str, Any]]:
        """Run every job and write the per-job JSONs and the summary; returns one record per job."""
        (self.output_dir / "results").mkdir(parents=True, exist_ok=True)
        jobs = self.jobs()
        envs = worker_devices(self.devices, os.environ.get("CUDA_VISIBLE_DEVICES"), _gpu_count())
        where = f"{len(envs)} GPU worker(s) ({', '.join(envs)})" if envs else "CPU, sequentially"
        log.info("Benchmark: %d models x %d tasks on %s", len(self.sources), len(self.tasks), where)
        records = self.run_parallel(jobs, envs) if envs else self.run_sequential(jobs)
        write_summary(records, self.output_dir)
        return records

    def run_sequential(self, jobs: list[Job]) -> list[dict[str, Any]]:
        worker = Worker(self.settings, device="cpu")
        records = []
        for i, job in enumerate(jobs):
            records.append(worker.run(job))
            _progress(i + 1, len(jobs), records[-1])
        return records

    def run_parallel(self, jobs: list[Job], envs: list[str]) -> list[dict[str, Any]]:
        """One spawned worker per entry of ``envs`` (its ``CUDA_VISIBLE_DEVICES``), fed from a queue of units."""
        import multiprocessing as mp

        ctx = mp.get_context("spawn")  # a forked child would inherit the parent's CUDA state
        todo, done = ctx.Queue(), ctx.Queue()
        for unit in work_units(jobs, len(envs)):
            todo.put(unit)
        for _ in envs:
            todo.put(None)
        procs = []
        for env in envs:
            with _visible_devices(env):
                proc = ctx.Process(target=_worker_main, args=(env, self.settings, todo, done), name=f"bench-gpu{env}")
                proc.start()
            procs.append(proc)
        by_index = {id_: i for i, id_ in enumerate(_job_id(j) for j in jobs)}
        records: dict[int, dict[str, Any]] = {}
        while len(records) < len(jobs):
            try:
                record = done.get(timeout=5)
            except queue.Empty:
                if not any(p.is_alive() for p in procs):
                    break  # a worker died without reporting (killed, out of memory)
                continue
            records[by_index[(record["model"], record["task"])]] = record
            _progress(len(records), len(jobs), record)
        for proc in procs:
            proc.join(timeout=30)
        for i, job in enumerate(jobs):
            if i not in records:
                records[i] = _failed(job, "worker process died before reporting this job", "")
                _write_record(records[i], self.output_dir / "results" / job.filename)
        return [records[i] for i in range(len(jobs))]


class Worker:
    """Runs jobs on one device, keeping the last model loaded (work units are one model each)."""

    def __init__(self, settings: dict[str, Any], device: str):
        from hydra.utils import instantiate

        self.settings, self.device = settings, device
        self.evaluator = instantiate(settings["eval"], _convert_="object")
        self._loaded: tuple[str | None, Any, Any] = (None, None, None)

    def _model(self, source: ModelSource) -> tuple[Any, Any]:
        if self._loaded[0] != source.spec:
            self._loaded = (None, None, None)  # free the previous model before loading the next
            self._loaded = (source.spec, *load_model(source, self.settings["model"], self.device))
        return self._loaded[1], self._loaded[2]

    def _prompt_node(self, source: ModelSource) -> dict[str, Any]:
        if self.settings["prompt_from_run"] and source.run_config:
            node = OmegaConf.select(OmegaConf.load(source.run_config), "prompts")
            if node is not None:
                return OmegaConf.to_container(node, resolve=True)
        return self.settings["prompts"]

    def run(self, job: Job) -> dict[str, Any]:
        """Evaluate one job; writes its JSON and returns its record (with ``error`` set if it failed)."""
        from hydra.utils import instantiate

        from rlvr.scoring import Scorer

        start = time.perf_counter()
        path = Path(self.settings["output_dir"]) / "results" / job.filename
        try:
            prompt = instantiate(self._prompt_node(job.model), _convert_="object")
            data = instantiate(job.data, _convert_="object")
            test = data.load(prompt).test  # the same rows for every model: fixed by data.test_seed
            model, tokenizer = self._model(job.model)
            result = self.evaluator.evaluate(model, tokenizer, test, Scorer(prompt.answer_format, data.verifier),
                                             name=job.task)
        except Exception as e:  # noqa: BLE001 - one broken model or task must not stop the others
            record = _failed(job, f"{type(e).__name__}: {e}", traceback.format_exc())
        else:
            record = {**_describe(job), "result": result.summary(), "samples": result.samples, "error": None}
        record.update(device=self.device, cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
                      seconds=round(time.perf_counter() - start, 2))
        _write_record(record, path)
        return record


def _worker_main(env: str, settings: dict[str, Any], todo: Any, done: Any) -> None:
    """Entry point of a spawned GPU worker: exactly one device visible, always ``cuda:0``."""
    os.environ["CUDA_VISIBLE_DEVICES"] = env  # already inherited; set again before torch is first imported
    import torch

    logging.basicConfig(level=logging.INFO, format=f"[worker {env}] %(message)s")
    device = "cuda:0" if torch.cuda.is_available() else "cpu"
    if device != "cpu" and torch.cuda.device_count() != 1:
        raise RuntimeError(f"worker for device {env} sees {torch.cuda.device_count()} GPUs, expected 1")
    worker = Worker(settings, device)
    while (unit := todo.get()) is not None:
        for job in unit:
            done.put(worker.run(job))


def worker_devices(devices: str | list[int], visible: str | None, gpu_count: int) -> list[str]:
    """``CUDA_VISIBLE_DEVICES`` for each GPU worker (empty: run on CPU).

    ``visible`` is this process's ``CUDA_VISIBLE_DEVICES`` (None: unset); indices in ``devices`` refer to the
    GPUs this process sees, so ``[1]`` under ``CUDA_VISIBLE_DEVICES=2,3`` is physical GPU 3.

    >>> worker_devices("auto", None, 3)
    ['0', '1', '2']
    >>> worker_devices([1], "2,3", 2)
    ['3']
    >>> worker_devices("auto", None, 0)
    []
    """
    if devices == "cpu":
        return []
    ids = [d.strip() for d in visible.split(",") if d.strip()] if visible is not None else []
    ids = (ids or [str(i) for i in range(gpu_count)])[:gpu_count]
    if not ids:
        if isinstance(devices, list) and devices:
            raise ConfigError(f"devices={devices} asks for GPUs but none is visible; use devices=cpu.")
        return []
    if devices == "auto":
        return ids
    bad = [d for d in devices if not 0 <= d < len(ids)]
    if bad:
        raise ConfigError(f"devices={devices}: GPU index {bad[0]} is not visible ({len(ids)} GPUs: 0..{len(ids) - 1}).")
    return [ids[d] for d in devices]


def work_units(jobs: list[Job], n_workers: int) -> list[list[Job]]:
    """Group jobs by model and split each model's tasks into enough chunks to keep every worker busy, so a
    worker loads a model once per unit rather than once per task.

    >>> [len(u) for u in work_units([Job(ModelSource("m", "m", "hub", "m"), t, {}) for t in "abcd"], 2)]
    [2, 2]
    """
    by_model: dict[str, list[Job]] = {}
    for job in jobs:
        by_model.setdefault(job.model.spec, []).append(job)
    chunks = max(1, math.ceil(n_workers / max(1, len(by_model))))
    units = []
    for model_jobs in by_model.values():
        size = math.ceil(len(model_jobs) / min(chunks, len(model_jobs)))
        units += [model_jobs[i : i + size] for i in range(0, len(model_jobs), size)]
    return units


# --- helpers -----------------------------------------------------------------------------------------------------
def _model_source(entry: Any, i: int) -> ModelSource:
    if isinstance(entry, str):
        return resolve_model(entry)
    if not isinstance(entry, dict) or not entry.get("path") or set(entry) - {"path", "label"}:
        raise ConfigError(f"models[{i}] must be a path/hub id or {{path: ..., label: ...}}, got {entry!r}.")
    return resolve_model(str(entry["path"]), entry.get("label"))


def _task_nodes(tasks: list[Any], data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{label: data node}``. An entry is a task name or a mapping of data fields (plus an optional ``label``);
    it replaces ``task``/``params``/``mixture`` of ``data``, so ``params`` never leak from one task to another."""
    out: dict[str, dict[str, Any]] = {}
    for i, entry in enumerate(tasks):
        entry = {"task": entry} if isinstance(entry, str) else dict(entry)
        label = str(entry.pop("label", None) or ("mixture" if entry.get("mixture") else entry.get("task", "")))
        unknown = [k for k in entry if k not in data or k.startswith("_")]
        if unknown or not label:
            raise ConfigError(
                f"tasks[{i}]: give a task name or a mapping of data fields plus an optional label; "
                f"unknown key(s) {', '.join(unknown) or '-'}; valid: label, {', '.join(k for k in sorted(data) if k[0] != '_')}."
            )
        if label in out:
            label = f"{label}-{i}"
        out[label] = {**data, "params": {}, "mixture": {}, **entry}
    return out


def _build(instantiate: Any, node: dict[str, Any], where: str) -> Any:
    from hydra.errors import InstantiationException

    try:
        return instantiate(node, _convert_="object")
    except InstantiationException as e:
        raise ConfigError(f"{where}: {e.__cause__ or e}") from None


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


@contextlib.contextmanager
def _visible_devices(value: str) -> Iterator[None]:
    """Set ``CUDA_VISIBLE_DEVICES`` while a worker is spawned (the child copies the environment at start)."""
    old = os.environ.get("CUDA_VISIBLE_DEVICES")
    os.environ["CUDA_VISIBLE_DEVICES"] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ["CUDA_VISIBLE_DEVICES"]
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = old


def _job_id(job: Job) -> tuple[str, str]:
    return job.model.label, job.task


def _describe(job: Job) -> dict[str, Any]:
    return {"model": job.model.label, "task": job.task, "source": asdict(job.model), "data": job.data}


def _failed(job: Job, error: str, trace: str) -> dict[str, Any]:
    return {**_describe(job), "result": None, "samples": [], "error": error, "traceback": trace}


def _write_record(record: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, default=str))


def _progress(i: int, n: int, record: dict[str, Any]) -> None:
    what = (f"accuracy {record['result']['accuracy']:.1%} (n={record['result']['n']})" if record["result"]
            else f"FAILED: {record['error']}")
    print(f"[benchmark] {i}/{n} {record['task']} x {record['model']}: {what} "
          f"[{record.get('device')}, {record.get('seconds', 0):.1f}s]", flush=True)


# --- summary -----------------------------------------------------------------------------------------------------
_COLUMNS = ("n", "accuracy", "format_rate", "parse_rate", "mean_completion_tokens", "truncation_rate")
_TIMING = ("generation_s", "generated_tokens_per_s", "sampling_s", "k")


def summary_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per job: model, task, the EvalResult numbers, pass@k/maj@k when sampled, timing, error."""
    rows = []
    for r in records:
        res = r["result"] or {}
        extra = res.get("extra", {})
        row = {"model": r["model"], "task": r["task"], **{c: res.get(c) for c in _COLUMNS}}
        row.update({k: v for k, v in extra.items() if k not in _TIMING})
        row.update(seconds=r.get("seconds"), tokens_per_s=extra.get("generated_tokens_per_s"), device=r.get("device"),
                   error=r["error"])
        rows.append(row)
    return rows


def write_summary(records: list[dict[str, Any]], output_dir: Path) -> dict[str, Path]:
    """``summary.csv`` (one row per job), ``summary.md`` (accuracy table model x task, then details) and
    ``accuracy.png``; returns their paths."""
    import csv

    from rlvr.report.plots import plot_benchmark

    rows = summary_rows(records)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    paths = {"csv": output_dir / "summary.csv", "markdown": output_dir / "summary.md", "plot": output_dir / "accuracy.png"}
    with paths["csv"].open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    if not plot_benchmark(rows, paths["plot"]):
        paths.pop("plot")
    paths["markdown"].write_text(_markdown(rows, columns, "plot" in paths))
    return paths


def _markdown(rows: list[dict[str, Any]], columns: list[str], with_plot: bool) -> str:
    models = list(dict.fromkeys(r["model"] for r in rows))
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    acc = {(r["model"], r["task"]): r["accuracy"] for r in rows}
    lines = ["# Benchmark", "", "Greedy accuracy on each task's held-out set (same questions for every model).", ""]
    lines += ["| model | " + " | ".join(tasks) + " | mean |", "|---" * (len(tasks) + 2) + "|"]
    for m in models:
        vals = [acc.get((m, t)) for t in tasks]
        ok = [v for v in vals if v is not None]
        mean = _cell(sum(ok) / len(ok)) if ok else "-"
        lines.append(f"| {m} | " + " | ".join(_cell(v) for v in vals) + f" | {mean} |")
    if with_plot:
        lines += ["", "![accuracy per task](accuracy.png)"]
    lines += ["", "## Details", "", "| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v).replace("|", "\\|").replace("\n", " ")
