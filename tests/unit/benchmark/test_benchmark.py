"""The benchmark through its real entry point (``python -m rlvr.benchmark``): a Hydra multirun of the
evaluation-only pipeline over models x tasks on a tiny random model, a run directory with a LoRA adapter among
the models, a model that does not exist (recorded as failed while the others complete), tasks from reasoning-gym
and from a file dataset (GSM8K's, with its own prompt), the summary at the sweep root; the jobs' configs; and
config mistakes that exit 2 with one line before any job starts."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from rlvr.benchmark import find, job_config, main, models, tasks
from rlvr.config import load_config, validate, with_defaults
from rlvr.errors import ConfigError
from tests.conftest import FIXTURES, REPO, read_jsonl
from tests.unit.model.test_run_dir import lora_adapter, make_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = ["data.test_size=4", "data.train_size=8", "eval.max_new_tokens=8", "eval.batch_size=4", "eval.progress=false"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, tiny_model_dir) -> tuple[Path, subprocess.CompletedProcess]:
    """3 models (the tiny model, a LoRA run trained from it with its own prompt, a missing one) x 2 tasks."""
    tmp = tmp_path_factory.mktemp("bench")
    lora_adapter(tiny_model_dir, tmp / "adapter")
    run = make_run(tmp / "outputs" / "2026-01-02" / "10-20-30", str(tiny_model_dir), adapter_from=tmp / "adapter")
    OmegaConf.save(OmegaConf.merge(OmegaConf.load(run / "config.yaml"), {"prompts": {
        "_target_": "rlvr.data.PromptTemplate", "system": "Answer in <answer></answer>.", "answer_tag": "answer"}}),
        run / "config.yaml")
    command = [sys.executable, "-m", "rlvr.benchmark",
               f"models=[{tiny_model_dir},{run},{{path: {tmp / 'no-such-model'}, label: missing}}]",
               "tasks=[chain_sum,{task: leg_counting, params: {min_animals: 1, max_animals: 2}, label: legs},"
               f"{{data: gsm8k, overrides: ['data.path={FIXTURES / 'gsm8k'}']}}]",
               *TINY, f"output_dir={tmp / 'out'}"]
    done = subprocess.run(command, cwd=tmp, capture_output=True, text=True, timeout=300)
    assert (tmp / "out" / "summary.md").exists(), done.stderr[-3000:]
    return tmp / "out", done


def results(out: Path, model: str, task: str) -> dict:
    return json.loads((out / model / task / "results.json").read_text())


def test_every_job_writes_its_results_and_the_summary_is_at_the_sweep_root(sweep, tiny_model_dir):
    out, _ = sweep
    labels = [tiny_model_dir.name, "2026-01-02_10-20-30", "missing"]  # a Hydra run keeps its date in its label
    task_labels = ("chain_sum", "legs", "gsm8k")
    assert sorted(str(p.parent.relative_to(out)) for p in out.rglob("results.json")) == sorted(
        f"{m}/{t}" for m in labels for t in task_labels)
    with (out / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["model"], r["task"]) for r in rows] == [(m, t) for m in labels for t in task_labels]
    assert {"n", "accuracy", "format_rate", "parse_rate", "mean_completion_tokens", "truncation_rate", "seconds",
            "status", "error"} <= set(rows[0])
    md = (out / "summary.md").read_text()
    assert "| model | chain_sum | legs | gsm8k | mean |" in md and f"| {tiny_model_dir.name} | " in md
    assert (out / "accuracy.png").read_bytes().startswith(PNG_MAGIC)
    one = results(out, tiny_model_dir.name, "chain_sum")
    assert one["eval"]["n"] == 4 and 0 <= one["eval"]["accuracy"] <= 1 and one["run"]["status"] == "success"
    config = OmegaConf.load(out / tiny_model_dir.name / "legs" / "config.yaml")  # what the job ran, in full
    assert config.model.name_or_path == str(tiny_model_dir) and config.train is None
    assert config.data.task == "leg_counting"
    assert config.data.params.leg_counting == {"min_animals": 1, "max_animals": 2}
    assert not {"models", "tasks", "prompt_from_run", "benchmark"} & set(config)
    gsm8k = OmegaConf.load(out / tiny_model_dir.name / "gsm8k" / "config.yaml")  # a file dataset, its own prompt
    assert (gsm8k.data._target_, gsm8k.data.path, gsm8k.data.test_size) == ("rlvr.data.QAData",
                                                                             str(FIXTURES / "gsm8k"), 4)
    assert gsm8k.prompts.answer_style == "gsm8k" and results(out, tiny_model_dir.name, "gsm8k")["eval"]["n"] == 4


def test_a_missing_model_is_recorded_as_failed_while_the_others_complete(sweep):
    out, done = sweep
    assert done.returncode == 1 and "3 job(s) failed" in done.stderr
    with (out / "summary.csv").open() as f:
        status = {(r["model"], r["task"]): (r["status"], r["error"]) for r in csv.DictReader(f)}
    failed = {k: v for k, v in status.items() if v[0] != "success"}
    assert set(failed) == {("missing", "chain_sum"), ("missing", "legs"), ("missing", "gsm8k")}
    assert all("no-such-model: no such directory" in error for _, error in failed.values())
    assert results(out, "missing", "legs")["run"]["status"] == "failed"
    assert "| missing | failed | failed | failed | - |" in (out / "summary.md").read_text()


def test_a_lora_run_directory_is_evaluated_with_its_own_prompt(sweep, tiny_model_dir):
    out, _ = sweep
    job = out / "2026-01-02_10-20-30" / "chain_sum"
    assert results(out, "2026-01-02_10-20-30", "chain_sum")["run"]["status"] == "success"
    assert OmegaConf.load(job / "config.yaml").prompts.answer_tag == "answer"  # prompt_from_run
    samples = read_jsonl(job / "samples_eval.jsonl")
    base = read_jsonl(out / tiny_model_dir.name / "chain_sum" / "samples_eval.jsonl")
    assert [s["question"] for s in samples] == [s["question"] for s in base]  # the same held-out questions
    assert [s["completion"] for s in samples] != [s["completion"] for s in base]  # the adapter was merged


# --- the jobs' configs (nothing runs) ----------------------------------------------------------------------------
def test_each_job_is_a_valid_pipeline_config_with_its_model_and_task(tmp_path, tiny_model_dir):
    cfg = load_config([f"models=[{tiny_model_dir},{{path: org/name, label: hub}}]",
                       "tasks=[leg_counting,{mixture: {chain_sum: {weight: 1}}, label: mix}]",
                       "++benchmark.model=hub", "++benchmark.task=mix"], config_name="benchmark")
    assert [m.label for m in models(cfg.models)] == [tiny_model_dir.name, "hub"]
    assert [t.label for t in tasks(cfg.tasks)] == ["leg_counting", "mix"]
    job = job_config(cfg, *find(cfg), output_dir=str(tmp_path))
    validate(with_defaults(job))
    assert (job.model.name_or_path, job.data.mixture, job.output_dir) == ("org/name", {"chain_sum": {"weight": 1}},
                                                                         str(tmp_path))
    legs = job_config(cfg, models(cfg.models)[0], tasks(cfg.tasks)[0])
    assert legs.data.task == "leg_counting" and "mixture" not in legs.data
    assert legs.data.params.chain_sum.max_terms == 2  # params stay with their task (chain_sum's are unused here)


def test_a_task_may_be_any_data_option_with_its_own_prompt(tmp_path):
    """``{data: OPTION, overrides: [...]}``: the job's data and prompt are what ``data=OPTION`` and the overrides
    compose to (GSM8K's option picks GSM8K's prompt); the benchmark's and the command line's data settings apply."""
    overrides = ["tasks=[chain_sum,{data: jsonl, overrides: ['data.path=x.jsonl', 'prompts=xml_tags'], label: mine}]",
                 "models=[org/name]", "data.test_size=8"]
    cfg = load_config(overrides, config_name="benchmark")
    (tmp_path / "x.jsonl").write_text('{"question": "1 + 1 =", "answer": "2"}\n')
    mine = tasks(cfg.tasks)[1]
    assert (mine.label, mine.data, mine.overrides) == ("mine", "jsonl", ("data.path=x.jsonl", "prompts=xml_tags"))
    job = job_config(cfg, models(cfg.models)[0], mine,
                     compose=lambda extra: load_config([*overrides, *extra], config_name="benchmark"))
    assert (job.data._target_, job.data.path, job.data.task, job.data.test_size) == ("rlvr.data.QAData", "x.jsonl",
                                                                                     "custom", 8)
    assert job.prompts.answer_tag == "answer" and "params" not in job.data
    gsm8k = job_config(cfg, models(cfg.models)[0], tasks([{"data": "gsm8k"}])[0])
    assert gsm8k.data.hub_id == "openai/gsm8k" and gsm8k.prompts.answer_style == "gsm8k"
    with pytest.raises(ConfigError, match=r"tasks\[0\].overrides: 'eval.k=4' is not a setting of the task"):
        tasks([{"data": "gsm8k", "overrides": ["eval.k=4"]}])


def test_repeated_labels_are_made_unique():
    assert [m.label for m in models(["a/b", "a/b"])] == ["a--b-0", "a--b-1"]
    with pytest.raises(ConfigError, match=r"tasks\[0\]"):
        tasks([{"task": "chain_sum", "prams": {}}])


@pytest.mark.parametrize(("argv", "message"), [
    (["models=[]"], "models is empty"),
    (["tasks=[chain_sums]"], "Unknown reasoning-gym task 'chain_sums'"),
    (["tasks=[{task: chain_sum, prams: {}}]"], "tasks[0] must be"),
    (["data.test_sise=4"], "Did you mean 'test_size'?"),
    (["data=nope"], "'data=nope': no such option"),
    (["tasks=[{task: chain_sum, params: {max_terms: 0}}]"], "data.params.chain_sum"),
])
def test_config_mistakes_exit_2_with_one_line_before_any_job(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["rlvr.benchmark"])
    with pytest.raises(SystemExit) as exit_:
        main([*argv, f"output_dir={tmp_path / 'out'}"])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and err.startswith("Config error: ") and message in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists() and not (tmp_path / "benchmarks").exists()


def test_the_report_knows_nothing_of_the_benchmark():
    """The sweep summary is generic (any -m sweep); the benchmark only reads which of its jobs failed from it."""
    for path in (REPO / "src" / "rlvr" / "report").rglob("*.py"):
        assert "rlvr.benchmark" not in path.read_text(), f"{path} mentions rlvr.benchmark"
