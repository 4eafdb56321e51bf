"""`pip install .` (not editable) into a fresh virtual environment, then the declared console script from
another directory runs the same job as `python run_pipeline.py`: overrides, --cfg job, --help, -m, and
one-line config errors. The config tree ships inside the wheel, so nothing is read from the checkout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from rlvr.train.grpo import LossType
from tests.conftest import REPO

TINY = ["data.train_size=16", "data.test_size=4", "train.max_steps=1", "train.per_device_train_batch_size=4",
        "train.num_generations=4", "train.max_completion_length=8", "observers=none"]


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh venv that gets rlvr itself from a real wheel build, and its dependencies (torch, trl, ..., pip and
    the build tools) from the environment running the tests, wherever they were installed: a venv, the system
    Python, a user site. Their directories are listed in a ``.pth`` file of the new venv, which Python reads at
    start-up (``--system-site-packages`` would give the base interpreter's instead, which inside a venv has none)."""
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    own = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True).stdout.strip()
    theirs = [p for p in dict.fromkeys(sys.path) if p.endswith(("site-packages", "dist-packages")) and Path(p).is_dir()]
    Path(own, "_dependencies.pth").write_text("".join(f"{p}\n" for p in theirs))
    build = tmp_path_factory.mktemp("src")
    # Install from a copy of the tracked tree, as a user's `git clone` would have it.
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, files):
        src, dst = REPO / name.decode(), build / name.decode()
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            dst.symlink_to(os.readlink(src))
        elif src.is_file():
            dst.write_bytes(src.read_bytes())
    proc = subprocess.run([python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--quiet", str(build)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root


def run(venv: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    return subprocess.run([str(venv / "bin" / "rlvr-train"), *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600, env=env)


def test_the_installed_package_is_not_the_checkout(venv, tmp_path):
    code = "import rlvr, importlib.resources as r; print(rlvr.__file__); print(r.files('rlvr.conf') / 'config.yaml')"
    out = subprocess.run([venv / "bin" / "python", "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         check=True).stdout.split()
    assert str(venv) in out[0] and str(REPO) not in out[0]
    assert Path(out[1]).is_file() and str(venv) in out[1]


def test_console_script_help_and_cfg_job(venv, tmp_path):
    help_ = run(venv, ["--help"], tmp_path)
    assert help_.returncode == 0 and "reasoning_gym" in help_.stdout and "grpo" in help_.stdout
    assert "schema" not in help_.stdout
    cfg = run(venv, ["--cfg", "job", "train.max_steps=3", "data.task=letter_counting"], tmp_path)
    assert cfg.returncode == 0 and "max_steps: 3" in cfg.stdout and "task: letter_counting" in cfg.stdout


def test_console_script_config_error_is_one_line(venv, tmp_path):
    proc = run(venv, ["train.loss_type=bogus"], tmp_path)
    assert proc.returncode == 2
    choices = ", ".join(typing.get_args(LossType))
    assert proc.stderr.strip().splitlines() == [
        f"Config error: Invalid value 'bogus' for 'train.loss_type'. Valid choices: {choices}."]
    assert not (tmp_path / "outputs").exists()


def test_console_script_runs_a_sweep_from_another_directory(venv, tiny_model_dir, tmp_path):
    proc = run(venv, ["-m", f"model.name_or_path={tiny_model_dir}", *TINY, "seed=1,2"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = sorted(p for p in (tmp_path / "multirun").glob("*/*/*") if p.is_dir())
    assert [p.name for p in runs] == ["0", "1"]
    seeds = [json.loads((r / "results.json").read_text()) for r in runs]
    assert [s["run"]["overrides"][-1] for s in seeds] == ["seed=1", "seed=2"]
    assert all(s["train"]["global_step"] == 1 for s in seeds)
