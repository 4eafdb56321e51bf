"""One page per training run: ``report.md`` with how it was run (command, overrides, wall time), the config,
reward/accuracy curves, baseline vs final and the completions of questions that training fixed or broke, plus
its PNGs under ``plots/``. Written at the end of every run by
:class:`~rlvr.observers.report.ReportObserver`, or afterwards with ``python -m rlvr.report_cli RUN_DIR``.

It only reads the run directory's files (``config.yaml``, ``results.json``, ``metrics.jsonl``,
``samples_*.jsonl``), so it works for a run that failed half way too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rlvr.report.plots import plot_benchmark, plot_levels, plot_training_curves

_METRICS = ("accuracy", "format_rate", "parse_rate", "mean_completion_tokens", "truncation_rate", "repetition_rate")
_NOT_METRICS = ("generation_s", "generated_tokens_per_s", "sampling_s", "k")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of ``path`` (empty when missing); a torn last line is skipped."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def last_run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records from the last fresh ``pipeline_start`` on: a resumed start (``resume_step`` set) continues the run
    before it (files written before resumes existed were appended to when a directory was reused)."""
    starts = [i for i, r in enumerate(records) if r.get("event") == "pipeline_start" and r.get("resume_step") is None]
    return records[starts[-1]:] if starts else records


def write_report(run_dir: str | Path, results: dict[str, Any] | None = None, status: str | None = None,
                 num_samples: int = 4, filename: str = "report.md") -> Path:
    """Write ``run_dir/filename`` and ``run_dir/plots/*.png``; returns the report's path. ``num_samples``:
    questions whose completions are shown."""
    run = Path(run_dir)
    if results is None:
        results = json.loads((run / "results.json").read_text()) if (run / "results.json").exists() else {}
    records = last_run(read_jsonl(run / "metrics.jsonl"))
    end = next((r for r in reversed(records) if r.get("event") == "pipeline_end"), None)
    status = status or (end or {}).get("status") or "unknown"
    base, final = results.get("baseline"), results.get("final")
    stages = [st for st in results.get("stages") or [] if "evaluation" in st]
    final_step = (results.get("train") or {}).get("global_step")
    if stages and len(results["stages"]) > 1:
        final_step = stages[-1]["step_offset"] + stages[-1]["train"]["global_step"]

    lines = [f"# Run report: {run.name}", "", _overview(run, results, status), ""]
    lines += ["## Baseline vs final", ""]
    if base or final:
        lines += _comparison(base, final)
        rows = [{"model": e["name"], "task": t, "accuracy": a} for e in (base, final) if e
                for t, a in (e.get("per_task") or {"all": e["accuracy"]}).items()]
        if plot_benchmark(rows, run / "plots" / "baseline_vs_final.png", title="Held-out accuracy per task"):
            lines += ["", "![baseline vs final](plots/baseline_vs_final.png)"]
    else:
        lines.append("No evaluation was recorded.")
    if len(results.get("stages") or []) > 1 or any(not st.get("kept", True) for st in results.get("stages") or []):
        lines += ["", "## Stages", ""] + _stages(base, results["stages"])
    if results.get("curriculum") or any((e or {}).get("per_level") for e in (base, final)):
        lines += ["", "## Curriculum", ""] + _curriculum(run, records, results)
    if results.get("pass_rate_filter") or results.get("flat_prompts"):
        lines += ["", "## Difficulty filter", ""] + _difficulty(results)
    lines += ["", "## Training curves", ""]
    if plot_training_curves(records, run / "plots" / "training_curves.png", final_step=final_step):
        lines.append("![reward and accuracy over training steps](plots/training_curves.png)")
    else:
        lines.append("No training steps or evaluations were logged (metrics.jsonl is missing or empty).")
    during = results.get("during_training") or []
    if during:
        lines += ["", "| evaluation | step | accuracy | format | parsed |", "|---|---|---|---|---|"]
        lines += [f"| {e['name']} | {e.get('step')} | {e['accuracy']:.1%} | {e['format_rate']:.0%} | {e['parse_rate']:.0%} |"
                  for e in during]
    lines += ["", "## Sample completions", ""]
    lines += _samples(run, num_samples)
    lines += ["", "## Config", ""]
    config = run / "config.yaml"
    lines += ["```yaml", config.read_text().rstrip(), "```"] if config.exists() else ["config.yaml is missing."]
    path = run / filename
    path.write_text("\n".join(lines) + "\n")
    return path


def _overview(run: Path, results: dict[str, Any], status: str) -> str:
    parts = [f"**status:** {status}"]
    config = _load_config(run)
    if config:
        data = config.get("data", {})
        task = ", ".join(data.get("mixture") or {}) or data.get("task")
        parts += [f"**model:** `{config.get('model', {}).get('name_or_path')}`", f"**task:** {task}"]
    train = results.get("train") or {}
    if train:
        parts += [f"**steps:** {train.get('global_step')}", f"**training time:** {train.get('runtime_s')} s"]
    if results.get("data"):
        parts.append("**rows:** " + ", ".join(f"{k} {v}" for k, v in results["data"].items()))
    return " | ".join(parts) + _invocation(results.get("run") or {})


def _invocation(run: dict[str, Any]) -> str:
    """How the run was started and how long it took (``results["run"]``; older runs lack it)."""
    lines = []
    if run.get("command"):
        lines.append(f"**command:** `{run['command']}`")
    if "overrides" in run:
        overrides = run["overrides"] or []
        lines.append("**overrides:** " + (" ".join(f"`{o}`" for o in overrides) or "none (the defaults)"))
    timing = []
    if run.get("started_at"):
        timing.append(f"**started:** {run['started_at']}")
    if run.get("wall_time_s") is not None:
        timing.append(f"**wall time:** {_duration(float(run['wall_time_s']))}")
    if timing:
        lines.append(" | ".join(timing))
    return "".join(f"  \n{line}" for line in lines)


def _duration(seconds: float) -> str:
    """``42.5 s``, ``9 min 48 s``, ``2 h 05 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _load_config(run: Path) -> dict[str, Any]:
    if not (run / "config.yaml").exists():
        return {}
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(run / "config.yaml"), resolve=False)


def _comparison(base: dict | None, final: dict | None) -> list[str]:
    extra = [k for k in {**(base or {}).get("extra", {}), **(final or {}).get("extra", {})} if k not in _NOT_METRICS]
    lines = ["| metric | baseline | final | change |", "|---|---|---|---|"]
    for key in [*_METRICS, *extra]:
        b, f = (_metric(e, key) for e in (base, final))
        change = f"{f - b:+.3f}" if b is not None and f is not None else "-"
        lines.append(f"| {key} | {_num(b)} | {_num(f)} | {change} |")
    n = (final or base or {}).get("n")
    lines.append(f"| n | {_num((base or {}).get('n'))} | {_num((final or {}).get('n'))} | |")
    tasks = sorted({*((base or {}).get("per_task") or {}), *((final or {}).get("per_task") or {})})
    if len(tasks) > 1:
        lines += ["", f"Per task (n={n} in all):", "", "| task | baseline | final |", "|---|---|---|"]
        lines += [f"| {t} | {_num((base or {}).get('per_task', {}).get(t))} | {_num((final or {}).get('per_task', {}).get(t))} |"
                  for t in tasks]
    return lines


def _curriculum(run: Path, records: list[dict[str, Any]], results: dict[str, Any]) -> list[str]:
    """How far the run climbed: held-out accuracy per level (baseline and final), the levels it went through and
    why, and the level over the steps."""
    curriculum = results.get("curriculum") or {}
    base, final = (results.get(name) or {} for name in ("baseline", "final"))
    meaning = curriculum.get("level_params") or {}
    levels = sorted({*(base.get("per_level") or {}), *(final.get("per_level") or {})}, key=_level_order)
    lines = ["| level | generator settings | baseline | final |", "|---|---|---|---|"]
    lines += [f"| {lv} | {', '.join(f'{k}={v}' for k, v in (meaning.get(lv) or {}).items()) or '-'} | "
              f"{_num((base.get('per_level') or {}).get(lv))} | {_num((final.get('per_level') or {}).get(lv))} |"
              for lv in levels]
    rows = [{"model": e["name"], "task": lv, "accuracy": a} for e in (base, final) if e
            for lv, a in (e.get("per_level") or {}).items()]
    if plot_benchmark(sorted(rows, key=lambda r: _level_order(r["task"])), run / "plots" / "levels.png",
                      title="Held-out accuracy per level"):
        lines += ["", "![held-out accuracy per level](plots/levels.png)"]
    if curriculum:
        reached = ", ".join(f"{t} {lv} (highest {curriculum['highest_reached'][t]} of {curriculum['top'][t]})"
                            for t, lv in curriculum["levels"].items())
        lines += ["", f"Levels at the end: {reached}. Moves: {len(curriculum['changes'])}."]
        if curriculum["changes"]:
            lines += ["", "| before step | task | level | training accuracy (window) |", "|---|---|---|---|"]
            lines += [f"| {c['step']} | {c['task']} | {c['from']} → {c['to']} | {c['accuracy']:.0%} |"
                      for c in curriculum["changes"]]
    if plot_levels(records, run / "plots" / "curriculum.png"):
        lines += ["", "![curriculum level over training steps](plots/curriculum.png)"]
    return lines


def _level_order(name: str) -> tuple[str, int]:
    task, _, level = name.rpartition("/L")
    return (task, int(level)) if level.isdigit() else (name, 0)


def _difficulty(results: dict[str, Any]) -> list[str]:
    """What the difficulty filter kept and dropped, and why."""
    lines = []
    before = results.get("pass_rate_filter")
    if before:
        low, high = before["kept_correct"]
        lines.append(f"Before training: kept **{before['kept']}** of {before['prompts']} training prompts that "
                     f"{low} to {high} of {before['samples_per_prompt']} samples of the base model answered "
                     f"correctly; dropped {before['dropped_too_hard']} too hard "
                     f"and {before['dropped_too_easy']} too easy (mean pass rate {before['mean_pass_rate']:.0%}; "
                     f"`{Path(before['pass_rates']).name}`).")
    flat = results.get("flat_prompts")
    if flat:
        lines.append(f"During training: skipped **{flat['skipped']}** of {flat['prompts_seen']} prompts seen, after "
                     f"{flat['flat_epochs']} flat groups in a row ({flat['skipped_solved']} always solved, "
                     f"{flat['skipped_unsolved']} never solved, {flat['skipped_flat']} equal rewards); "
                     f"{flat['rows_replaced']} groups were given another prompt.")
    return lines


def _stages(base: dict | None, stages: list[dict[str, Any]]) -> list[str]:
    """Every stage side by side with the baseline: its training, its held-out evaluation and the gate's verdict
    (a stage the gate refused was rolled back; the next one started from the model before it)."""
    heads = ["baseline", *(f"{st['index']}. {st['name']}" for st in stages)]
    lines = ["| | " + " | ".join(heads) + " |", "|---" * (len(heads) + 1) + "|"]
    evals = [base, *(st.get("evaluation") for st in stages)]

    def row(label: str, cells: list[str]) -> None:
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    row("steps", ["-", *(str((st.get("train") or {}).get("global_step", "-")) for st in stages)])
    row("training time (s)", ["-", *(str((st.get("train") or {}).get("runtime_s", "-")) for st in stages)])
    for key in _METRICS:
        row(key, [_num(_metric(e, key)) for e in evals])
    row("gate", ["-", *(_verdict(st) for st in stages)])
    return lines


def _verdict(stage: dict[str, Any]) -> str:
    if "skipped" in stage:
        return f"skipped: {stage['skipped']}"
    gate = stage.get("gate") or {}
    if stage.get("kept", True):
        change = gate.get("change")
        return "kept" + (f" ({gate['metric']} {change:+.3f})" if change is not None else "")
    return f"**rolled back**: {gate.get('reason')}" + (" (pipeline stopped)" if stage.get("stopped_pipeline") else "")


def _metric(entry: dict | None, key: str) -> float | None:
    if not entry:
        return None
    value = entry.get(key, entry.get("extra", {}).get(key))
    return float(value) if isinstance(value, (int, float)) else None


def _num(v: Any) -> str:
    if v is None:
        return "-"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def _samples(run: Path, num_samples: int) -> list[str]:
    """Completions that show what training changed: questions answered wrong before and right after (fixed)
    first, then right before and wrong after (broken), then the first unchanged ones; each with both answers.
    Without both baseline and final samples, the first completions of each evaluation."""
    pairs = _matched(read_jsonl(run / "samples_baseline.jsonl"), read_jsonl(run / "samples_final.jsonl"))
    if pairs:
        return _changed(pairs, num_samples)
    files = sorted(run.glob("samples_*.jsonl"), key=lambda p: _sample_order(p.stem[len("samples_"):]))
    files = [f for f in files if f.stem in ("samples_baseline", "samples_final")] or files
    if not files:
        return ["No samples were saved."]
    lines = []
    for f in files:
        lines += [f"### {f.stem[len('samples_'):]}", ""]
        for r in read_jsonl(f)[:num_samples]:
            lines += [f"**Q:** {_one_line(r.get('question'))}  ",
                      f"**gold:** `{r.get('gold')}` · **extracted:** `{r.get('extracted')}` · **{r.get('status')}**",
                      "", *_completion(r), ""]
    return lines


def _matched(baseline: list[dict], final: list[dict]) -> list[tuple[dict, dict]]:
    """(baseline, final) sample pairs for the same question (same question text and gold answer), in the
    baseline's order."""
    after = {(r.get("question"), r.get("gold")): r for r in final if r.get("question") is not None}
    return [(r, after[key]) for r in baseline if (key := (r.get("question"), r.get("gold"))) in after]


_CHANGES = {"fixed": "fixed by training (wrong → correct)", "broken": "broken by training (correct → wrong)",
            "unchanged": "unchanged"}


def _changed(pairs: list[tuple[dict, dict]], num_samples: int) -> list[str]:
    groups = {change: [p for p in pairs if _change(*p) == change] for change in _CHANGES}
    lines = [f"{len(pairs)} questions matched between baseline and final: **{len(groups['fixed'])} fixed** by "
             f"training (wrong before, correct after), **{len(groups['broken'])} broken** (correct before, wrong "
             f"after), {len(groups['unchanged'])} unchanged. Shown: fixed first, then broken, then unchanged.", ""]
    shown = [(change, pair) for change, group in groups.items() for pair in group][:num_samples]
    for change, (base, final) in shown:
        lines += [f"### {_CHANGES[change]}", "", f"**Q:** {_one_line(base.get('question'))}  ",
                  f"**gold:** `{base.get('gold')}`", ""]
        for name, r in (("baseline", base), ("final", final)):
            lines += [f"{name}: **{r.get('status')}**, extracted `{r.get('extracted')}`{_votes(r)}", "",
                      *_completion(r), ""]
    return lines


def _change(base: dict, final: dict) -> str:
    if _correct(base) == _correct(final):
        return "unchanged"
    return "fixed" if _correct(final) else "broken"


def _correct(sample: dict) -> bool:
    return sample.get("status") == "correct"


def _votes(sample: dict) -> str:
    """``· 3/8 sampled correct`` when the evaluation also sampled k completions per question."""
    key = next((k for k in sample if k.startswith("correct_of_")), None)
    return f" · {sample[key]}/{key[len('correct_of_'):]} sampled correct" if key else ""


def _completion(sample: dict) -> list[str]:
    text = str(sample.get("completion") or "").replace("```", "ˋˋˋ").rstrip()
    return ["```text", text or "(empty completion)", "```"]


def _sample_order(name: str) -> tuple[int, int]:
    if name == "baseline":
        return 0, 0
    if name == "final":
        return 2, 0
    digits = name.rpartition("_")[2]
    return 1, int(digits) if digits.isdigit() else 0


def _one_line(text: Any, limit: int = 300) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
