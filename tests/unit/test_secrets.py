"""A planted API key, in the environment and in the config, reaches the code that needs it but no file of the
run directory: config.yaml, results.json, metrics, samples, the report, the log and Hydra's .hydra/ files."""

from __future__ import annotations

import subprocess
import sys

from rlvr.config import secrets
from tests.conftest import REPO, read_jsonl, tiny_overrides
from tests.integration.test_resume import env

IN_CONFIG = "cfg-secret-0123456789abcdef"
IN_ENV = "env-secret-fedcba9876543210"


def judge(completions, api_key: str, **_):
    """A reward that needs a key (an LLM judge would): it must get the real one."""
    if api_key != IN_CONFIG:
        raise RuntimeError("the judge got a redacted key")
    return [0.5 for _ in completions]


def test_a_planted_key_is_used_but_never_written(tiny_model_dir, tmp_path):
    run_dir = tmp_path / "run"
    judge_node = ("+reward.functions.judge={_target_: tests.unit.test_secrets.judge, _partial_: true, "
                  f"api_key: {IN_CONFIG}}}")
    overrides = [o for o in tiny_overrides(tiny_model_dir, run_dir) if not o.startswith("observers")]
    proc = subprocess.run([sys.executable, str(REPO / "run_pipeline.py"), *overrides, "observers=default",
                           judge_node], capture_output=True, text=True, cwd=tmp_path, timeout=600,
                          env={**env(), "WANDB_API_KEY": IN_ENV, "WANDB_MODE": "disabled"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "reward.functions.judge.api_key looks like a secret" in proc.stdout + proc.stderr
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert {"config.yaml", "results.json", "metrics.jsonl", "report.md", "run_pipeline.log"} <= {p.name for p in files}
    assert (run_dir / ".hydra" / "overrides.yaml").is_file()
    for path in files:
        data = path.read_bytes()
        assert IN_CONFIG.encode() not in data and IN_ENV.encode() not in data, path
    assert "api_key: <redacted>" in (run_dir / "config.yaml").read_text()
    train = [r for r in read_jsonl(run_dir / "metrics.jsonl") if r["event"] == "train"]
    assert train and all(r["reward_failures/judge"] == 0 for r in train)  # the judge had the real key


def test_secret_names_and_redaction():
    config = {"observers": {"wandb": {"api_key": "abc123456", "project": "p"}}, "hf_token": "tok12345",
              "model": {"max_tokens": 5}}
    assert secrets.find(config) == {"observers.wandb.api_key": "abc123456", "hf_token": "tok12345"}
    assert secrets.redact(config)["observers"]["wandb"] == {"api_key": "<redacted>", "project": "p"}
    assert secrets.redact(config)["model"] == {"max_tokens": 5}  # a number named *tokens is not a secret
    assert secrets.scrub("key=abc123456!", secrets.known_values(config)) == "key=<redacted>!"
