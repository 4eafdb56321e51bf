"""The summary of a Hydra sweep: one row per job, read from each job's ``results.json`` and
``.hydra/overrides.yaml``.

:class:`SweepSummary` is a Hydra callback (``hydra.callbacks`` in ``conf/benchmark.yaml``). When the multirun ends
it writes at the sweep root ``summary.csv`` (one row per job: the swept values, the evaluation's numbers, pass@k
and maj@k when sampled, seconds, status, error), ``summary.md`` (an accuracy table, then every column) and
``accuracy.png``. A job's numbers are its ``eval`` (an evaluation-only run, as in the benchmark) or else its
``final`` evaluation (a training run). It only reads files, so ``python -m rlvr.report_cli SWEEP_DIR`` rebuilds the
summary later (:func:`summarize`), and a job that failed or never wrote ``results.json`` is a row with its error.

A sweep run with ``preflight=true`` has a ``preflight.json`` per job instead: each row is then the job's verdict,
its failed checks, and the time and cost its preflight estimated; ``summary.md`` lists them and their sums (what the
whole sweep would take and cost). A job whose preflight failed counts as failed (the command exits 1).
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from rlvr.report.plots import plot_benchmark

log = logging.getLogger(__name__)

# The jobs of the last sweep that did not succeed ("<job dir>: <error line>"), for the command's exit status: under
# a parallel launcher they fail in other processes, and only their results.json tells.
failed: list[str] = []
_METRICS = ("n", "accuracy", "format_rate", "parse_rate", "mean_completion_tokens", "truncation_rate")
_TIMING = ("generation_s", "generated_tokens_per_s", "sampling_s", "k")


class SweepSummary(Callback):
    """Writes ``summary.csv``, ``summary.md`` and ``accuracy.png`` at the sweep root when a multirun ends.

    Args:
        keys: ``{override key: column name}`` of the swept settings to show, in order, such as
            ``{benchmark.model: model, benchmark.task: task}``: the first names the rows of the accuracy table, the
            second its columns. Null: every override whose value differs between jobs, named by its key.
        title: the heading of ``summary.md``.
    """

    def __init__(self, keys: dict[str, str] | None = None, title: str = "Sweep"):
        self.keys, self.title = dict(keys) if keys else None, title

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        paths = write_summary(sweep_dir, self.keys, self.title)
        rows = sweep_rows(sweep_dir, self.keys)
        failed.clear()
        failed.extend(f"{r['job']}: {r['error']}" for r in rows if r["status"] != "success")
        if rows and all("preflight" in r for r in rows):  # preflight=true: what the sweep would take, in one line
            log.info("%s", paths["markdown"].read_text().split("\n\n")[1].replace("\n", " "))
        log.info("Summary of the sweep: %s", paths["markdown"])


def summarize(sweep_dir: str | Path) -> dict[str, Path]:
    """Rebuild a sweep's summary with the settings its :class:`SweepSummary` callback had (``multirun.yaml``)."""
    sweep_dir = Path(sweep_dir)
    callbacks = OmegaConf.select(OmegaConf.load(sweep_dir / "multirun.yaml"), "hydra.callbacks") or {}
    settings = next((OmegaConf.to_container(node) for node in callbacks.values()
                     if node.get("_target_") == f"{__name__}.SweepSummary"), {})
    settings.pop("_target_", None)
    return write_summary(sweep_dir, **settings)


def is_sweep(path: str | Path) -> bool:
    """A Hydra multirun's root directory (Hydra writes ``multirun.yaml`` there)."""
    return (Path(path) / "multirun.yaml").is_file()


def job_dirs(sweep_dir: Path) -> list[Path]:
    """Every job directory under ``sweep_dir`` (one holding ``.hydra/overrides.yaml``), in job order."""
    dirs = [p.parent.parent for p in sweep_dir.rglob(".hydra/overrides.yaml")]
    return sorted(dirs, key=lambda d: (_job_number(d), str(d)))


def sweep_rows(sweep_dir: str | Path, keys: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """One flat row per job: the swept values (``keys``, see :class:`SweepSummary`), the evaluation's numbers,
    pass@k/maj@k when sampled, generation speed, seconds, status and error."""
    jobs = [(d, _overrides(d)) for d in job_dirs(Path(sweep_dir))]
    if keys is None:  # the overrides that differ between jobs
        seen: dict[str, set[str]] = {}
        for _, overrides in jobs:
            for k, v in overrides.items():
                seen.setdefault(k, set()).add(v)
        keys = {k: k for k, values in seen.items() if len(values) > 1 or any(k not in o for _, o in jobs)}
    rows = []
    for job_dir, overrides in jobs:
        results = _read_json(job_dir / "results.json")
        checked = _read_json(job_dir / "preflight.json")
        if checked and not results:
            rows.append({**{name: overrides.get(key) for key, name in keys.items()}, **_preflight_row(checked),
                         "job": str(job_dir.relative_to(sweep_dir))})
            continue
        evaluation = results.get("eval") or results.get("final") or {}
        extra = evaluation.get("extra") or {}
        run = results.get("run") or {}
        row: dict[str, Any] = {name: overrides.get(key) for key, name in keys.items()}
        row.update({c: evaluation.get(c) for c in _METRICS})
        baseline = (results.get("baseline") or {}).get("accuracy")
        if baseline is not None and evaluation.get("accuracy") is not None and "final" in results:
            row.update(baseline_accuracy=baseline, gain=evaluation["accuracy"] - baseline)
        row.update({k: v for k, v in extra.items() if k not in _TIMING})
        row.update(tokens_per_s=extra.get("generated_tokens_per_s"), seconds=run.get("wall_time_s"),
                   status=run.get("status") or ("failed" if not results else "unknown"),
                   error=run.get("error") or (None if results else "no results.json: the job did not run to its end"),
                   job=str(job_dir.relative_to(sweep_dir)))
        rows.append(row)
    return rows


def write_summary(sweep_dir: str | Path, keys: dict[str, str] | None = None, title: str = "Sweep") -> dict[str, Path]:
    """``summary.csv``, ``summary.md`` and ``accuracy.png`` (when some job has an accuracy) in ``sweep_dir``;
    returns their paths."""
    sweep_dir = Path(sweep_dir)
    rows = sweep_rows(sweep_dir, keys)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    paths = {"csv": sweep_dir / "summary.csv", "markdown": sweep_dir / "summary.md", "plot": sweep_dir / "accuracy.png"}
    with paths["csv"].open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    if rows and all("preflight" in r for r in rows):
        paths.pop("plot")
        paths["markdown"].write_text(_preflight_markdown(rows, columns, title))
        return paths
    names = list(rows[0])[: list(rows[0]).index("n")] if rows else []  # the swept values come before the metrics
    bars = [{"model": _label(r, names[:1]), "task": _label(r, names[1:2]) or "accuracy", "accuracy": r["accuracy"]}
            for r in rows]
    if not plot_benchmark(bars, paths["plot"]):
        paths.pop("plot")
    controls = control_lines(rows, names)
    paths["markdown"].write_text(_markdown(rows, columns, names, title, "plot" in paths)
                                 + ("\n" + "\n".join(controls) + "\n" if controls else ""))
    if controls:  # the real run's own report says it too
        for row in rows:
            report = sweep_dir / row["job"] / "report.md"
            if row.get("control") in (None, "none") and report.is_file():
                with report.open("a") as f:
                    f.write("\n" + "\n".join(control_lines(rows, names, only=row)) + "\n")
    return paths


def control_lines(rows: list[dict[str, Any]], names: list[str], only: dict[str, Any] | None = None) -> list[str]:
    """A "Controls" section: for each real run (``control=none``) with control runs beside it (the same swept
    values but ``control``), each one's gain and how much of the real run's gain the verifier explains, the
    part of it that a control run does not get. Empty when the sweep has no control."""
    if "control" not in names:
        return []
    others = [n for n in names if n != "control"]
    lines: list[str] = []
    for real in rows:
        if real.get("control") not in (None, "none") or real.get("gain") is None or (only and real is not only):
            continue
        beside = [r for r in rows if r is not real and r.get("gain") is not None
                  and all(r.get(n) == real.get(n) for n in others)]
        if not beside:
            continue
        label = _label(real, others) or "the run"
        lines += [f"## Controls: {label}", "",
                  f"The real run gains {100 * real['gain']:+.1f} points held-out ({real['baseline_accuracy']:.1%} -> "
                  f"{real['accuracy']:.1%}, n={real['n']}).", "",
                  "| control | gain | share of the real gain the verifier explains |", "|---|---|---|"]
        for r in beside:
            lines.append(f"| {r['control']} | {100 * r['gain']:+.1f} points | {_explained(real['gain'], r['gain'])} |")
        lines.append("")
    return lines


def _explained(real: float, control: float) -> str:
    """The share of the real gain the verifier explains, ``(real - control) / real``; a control that lost accuracy
    leaves all of the gain to the verifier (a share over 100% would read as a measurement error).

    >>> _explained(0.3, 0.05), _explained(0.3, -0.3), _explained(0.0, 0.1)
    ('83%', 'all (the control lost 30.0 points)', '-')
    """
    if real <= 0:
        return "-"
    if control < 0:
        return f"all (the control lost {-control * 100:.1f} points)"
    return f"{(real - control) / real:.0%}"


def _markdown(rows: list[dict[str, Any]], columns: list[str], names: list[str], title: str, with_plot: bool) -> str:
    row_key, col_keys = names[:1], names[1:2]
    row_labels = list(dict.fromkeys(_label(r, row_key) for r in rows))
    col_labels = list(dict.fromkeys(_label(r, col_keys) for r in rows)) if col_keys else ["accuracy"]
    cell = {(_label(r, row_key), _label(r, col_keys) if col_keys else "accuracy"): r for r in rows}
    failed = [r for r in rows if r["status"] != "success"]
    lines = [f"# {title}", "", f"{len(rows)} jobs, {len(rows) - len(failed)} succeeded. Accuracy on each held-out set"
             + (f" ({len(failed)} failed: see the error column below)." if failed else "."), ""]
    lines += [f"| {row_key[0] if row_key else 'job'} | " + " | ".join(col_labels) + " | mean |",
              "|---" * (len(col_labels) + 2) + "|"]
    for label in row_labels:
        values = [cell.get((label, c)) for c in col_labels]
        ok = [v["accuracy"] for v in values if v and v["accuracy"] is not None]
        shown = [_cell(v["accuracy"]) if v and v["accuracy"] is not None else ("failed" if v else "-") for v in values]
        lines.append(f"| {label} | " + " | ".join(shown) + f" | {_cell(sum(ok) / len(ok)) if ok else '-'} |")
    if with_plot:
        lines += ["", "![accuracy](accuracy.png)"]
    lines += ["", "## Details", "", "| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _preflight_row(checked: dict[str, Any]) -> dict[str, Any]:
    """A job's preflight (its ``preflight.json``) as a row: verdict, failed checks, estimated hours and cost."""
    checks = {c["name"]: c for c in checked.get("checks", [])}
    total_s = checks.get("time", {}).get("figures", {}).get("total_s")
    cost = checks.get("cost", {}).get("figures", {})
    return {"preflight": "PASS" if checked.get("passed") else "FAIL",
            "failed_checks": ", ".join(n for n, c in checks.items() if c["status"] == "fail") or None,
            "hours": round(total_s / 3600, 3) if total_s is not None else None,
            "usd": cost.get("usd"), "instance": cost.get("instance"), "seconds": checked.get("seconds"),
            "status": "success" if checked.get("passed") else "failed",
            "error": None if checked.get("passed") else checked.get("verdict")}


def _preflight_markdown(rows: list[dict[str, Any]], columns: list[str], title: str) -> str:
    """The preflight of every job, and what the whole sweep would take and cost (the sums of their estimates)."""
    passed = sum(r["preflight"] == "PASS" for r in rows)
    hours = [r["hours"] for r in rows if r["hours"] is not None]
    costs = [r["usd"] for r in rows if r["usd"] is not None]
    lines = [f"# {title}: preflight", "", f"{len(rows)} jobs checked, {passed} passed."]
    if hours:
        took = f"{sum(hours):.2f} h" if sum(hours) >= 1 else f"{sum(hours) * 60:.1f} min"
        cost = f"${sum(costs):.2f}" if sum(costs) >= 0.01 else "under $0.01"
        lines.append(f"The sweep would take {took} of runs ({len(hours)} jobs estimated)"
                     + (f" and cost {cost} on {rows[0]['instance']} (the sum over its jobs)." if costs else "."))
    lines += ["", "| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _label(row: dict[str, Any], names: list[str]) -> str:
    return " ".join(str(row.get(n)) for n in names)


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v).replace("|", "\\|").replace("\n", " ")


def _overrides(job_dir: Path) -> dict[str, str]:
    """``{key: value}`` of a job's overrides as Hydra parsed them (``++``/``+`` dropped, quotes removed)."""
    lines = OmegaConf.to_container(OmegaConf.load(job_dir / ".hydra" / "overrides.yaml"))
    parsed = OverridesParser.create().parse_overrides([str(line) for line in lines or []])
    return {o.key_or_group: _text(o.value()) for o in parsed if not o.is_delete()}


def _text(value: Any) -> str:
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str)
    return str(value)


def _job_number(job_dir: Path) -> int:
    hydra = job_dir / ".hydra" / "hydra.yaml"
    num = OmegaConf.select(OmegaConf.load(hydra), "hydra.job.num") if hydra.is_file() else None
    return int(num) if isinstance(num, int) else 1 << 30


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
