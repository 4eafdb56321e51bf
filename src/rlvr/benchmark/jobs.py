"""The jobs of a benchmark: the models and tasks ``conf/benchmark.yaml`` lists, their labels, and the pipeline
config of one (model, task) job. Only the config and the file system are read; nothing loads.

A model is a hub id, ``embedded://...``, a local checkpoint or a run directory (``config.yaml`` + ``model/``,
which :class:`~rlvr.model.HFModel` loads, merging a LoRA adapter), or ``{path: ..., label: ...}``. A task is any
dataset: a ``data`` option with optional further overrides of ``data`` and ``prompts``
(``{data: gsm8k, overrides: [data.path=DIR], label: ...}``, composed as ``data=gsm8k data.path=DIR`` would be,
with the option's own prompt), or, for reasoning-gym, a task name (with the ``data.params`` configured for it),
``{task: ..., params: {...}, label: ...}`` or ``{mixture: {...}, label: ...}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf

from rlvr.config import load_config
from rlvr.errors import ConfigError
from rlvr.model.hf import run_config

# The benchmark's own keys in conf/benchmark.yaml; the rest of the file is the pipeline each job runs.
BENCHMARK_KEYS = ("models", "tasks", "prompt_from_run", "benchmark")


@dataclass(frozen=True)
class Model:
    """A model to evaluate: ``path`` as the user wrote it, its ``label`` in tables and directory names, and the
    run's ``config.yaml`` when it is a run directory."""

    path: str
    label: str
    run_config: Path | None = None


@dataclass(frozen=True)
class Task:
    """A task to evaluate on: a ``data`` option with further ``overrides`` of ``data.*`` and ``prompts`` (any
    dataset), or a reasoning-gym ``task`` (``params`` replace ``data.params.<task>`` when given) or ``mixture``;
    ``label`` names it in tables and directory names."""

    label: str
    task: str | None = None
    params: dict[str, Any] | None = None
    mixture: dict[str, Any] | None = None
    data: str | None = None
    overrides: tuple[str, ...] = ()


Compose = Callable[[list[str]], DictConfig]  # benchmark.yaml composed with the command line and these overrides


def models(entries: Any) -> list[Model]:
    """The ``models`` list, labelled (a repeated label gets its position appended)."""
    entries = _plain(entries)
    if not isinstance(entries, list) or not entries:
        raise ConfigError("models is empty: list at least one hub id, local checkpoint or run directory, "
                          "e.g. models=[embedded://smollm2-135m-instruct].")
    out = []
    for i, entry in enumerate(entries):
        if isinstance(entry, dict) and entry.get("path") and not set(entry) - {"path", "label"}:
            path, label = str(entry["path"]), entry.get("label")
        elif isinstance(entry, str) and entry:
            path, label = entry, None
        else:
            raise ConfigError(f"models[{i}] must be a hub id, a path or {{path: ..., label: ...}}; got {entry!r}.")
        config = run_config(path)
        out.append(Model(path, _label(label or _model_name(path)), config))
    return _unique(out)


def tasks(entries: Any) -> list[Task]:
    """The ``tasks`` list, labelled (a repeated label gets its position appended)."""
    entries = _plain(entries)
    if not isinstance(entries, list) or not entries:
        raise ConfigError("tasks is empty: list at least one task, e.g. tasks=[chain_sum,leg_counting].")
    out = []
    for i, entry in enumerate(entries):
        entry = {"task": entry} if isinstance(entry, str) else entry
        ok = (isinstance(entry, dict) and not set(entry) - {"task", "params", "mixture", "data", "overrides", "label"}
              and sum(bool(entry.get(k)) for k in ("task", "mixture", "data")) == 1  # exactly one of them
              and not (entry.get("mixture") and "params" in entry)  # a mixture's params are inside it
              and not (entry.get("data") is None and "overrides" in entry)
              and (entry.get("data") is None or isinstance(entry["data"], str) and "params" not in entry))
        if not ok:
            raise ConfigError(f"tasks[{i}] must be a reasoning-gym task name, {{data: OPTION, overrides: [data.KEY="
                              f"VALUE, ...], label: NAME}}, {{task: NAME, params: {{...}}, label: NAME}} or "
                              f"{{mixture: {{...}}, label: NAME}}; got {entry!r}.")
        overrides = tuple(str(o) for o in entry.get("overrides") or ())
        outside = [o for o in overrides if o.lstrip("+~").split("=")[0].split(".")[0] not in ("data", "prompts")]
        if outside:
            raise ConfigError(f"tasks[{i}].overrides: {outside[0]!r} is not a setting of the task; a task's overrides "
                              "set data.* and prompts (the rest of a job's config is the benchmark's).")
        label = _label(entry.get("label") or entry.get("task") or entry.get("data") or "mixture")
        out.append(Task(label, entry.get("task"), entry.get("params"), entry.get("mixture"), entry.get("data"),
                        overrides))
    return _unique(out)


def find(cfg: DictConfig) -> tuple[Model, Task]:
    """The model and task a sweep job was given (``benchmark.model``/``benchmark.task``: their labels)."""
    by_label = {m.label: m for m in models(cfg.models)}, {t.label: t for t in tasks(cfg.tasks)}
    wanted = OmegaConf.select(cfg, "benchmark.model"), OmegaConf.select(cfg, "benchmark.task")
    for kind, labels, label in zip(("model", "task"), by_label, wanted):
        if label not in labels:
            raise ConfigError(f"benchmark.{kind}={label!r} is none of the {kind}s' labels ({', '.join(labels)}); "
                              "python -m rlvr.benchmark sets it for each job.")
    return by_label[0][wanted[0]], by_label[1][wanted[1]]


def job_config(cfg: DictConfig, model: Model, task: Task, output_dir: str | None = None,
               compose: Compose | None = None) -> DictConfig:
    """The pipeline config of one job: ``cfg`` without the benchmark's keys, with the model's path as
    ``model.name_or_path``; the task's ``data`` and ``prompts`` as ``compose`` makes them with ``data=<option>`` and
    its overrides (``compose`` None: the shipped tree without the command line), or the task as ``data.task`` (+
    ``data.params.<task>``) or ``data.mixture``; and with ``prompt_from_run`` a run directory's own prompt."""
    job = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    prompt_from_run = bool(job.get("prompt_from_run", False))
    for key in BENCHMARK_KEYS:
        job.pop(key, None)
    job.model.name_or_path = model.path
    if task.data is not None:
        extra = [f"data={task.data}", *task.overrides]
        composed = compose(extra) if compose is not None else load_config(extra, config_name="benchmark")
        job.data, job.prompts = (OmegaConf.to_container(composed[k], resolve=False) for k in ("data", "prompts"))
    elif task.mixture is not None:
        job.data.mixture = task.mixture
    else:
        job.data.task = task.task
        job.data.pop("mixture", None)  # the signature's default: none
        if task.params is not None:
            job.data.params = {**_plain(job.data.get("params") or {}), task.task: task.params}
    if prompt_from_run and model.run_config is not None:
        prompts = OmegaConf.select(OmegaConf.load(model.run_config), "prompts")
        if prompts is not None:
            job.prompts = prompts
    if output_dir is not None:
        job.output_dir = output_dir
    return job


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def _model_name(path: str) -> str:
    """A model's default label: the hub id, the directory's name; Hydra names runs outputs/<date>/<time>, and
    a bare time is no name, so the date stays with it."""
    local = Path(path).expanduser()
    if not local.is_dir():
        return path.split("://", 1)[-1].replace("/", "--")
    local = local.resolve()
    return f"{local.parent.name}_{local.name}" if re.fullmatch(r"[\d_:-]+", local.name) else local.name


def _label(text: str) -> str:
    """Safe in a directory name and a Hydra override: letters, digits, ``._-``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_") or "unnamed"


def _unique(items: list[Any]) -> list[Any]:
    labels = [i.label for i in items]
    return [replace(item, label=f"{item.label}-{n}") if labels.count(item.label) > 1 else item
            for n, item in enumerate(items)]
