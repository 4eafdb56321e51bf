"""bench/gpu.sh, checked here so that its first run on a rented GPU does not fail on a typo: ``--dry-run all``
prints every command of every step, and each must be runnable as written. Every pipeline command composes and
validates (every key and value, the same check that runs before anything loads), every script and accelerate
config it names exists, every option given to one of our scripts is one the script accepts, and the script
passes shellcheck. (The commands themselves need CUDA: nothing here runs them.)"""

from __future__ import annotations

import shlex
import subprocess
import sys

import pytest

from tests.conftest import REPO, compose

STEPS = ("prepare", "stage", "measure", "paths")


@pytest.fixture(scope="module")
def commands() -> dict[str, list[list[str]]]:
    proc = subprocess.run(["bash", "bench/gpu.sh", "--dry-run", "all"], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    steps: dict[str, list[list[str]]] = {}
    for line in proc.stdout.splitlines():
        if line.startswith("# "):
            steps[line[2:]] = []
        elif line.strip():
            steps[list(steps)[-1]].append(shlex.split(line.split(" > ")[0]))
    return steps


def pipeline_overrides(cmd: list[str]) -> list[str] | None:
    """The overrides after ``run_pipeline.py`` in a command, or None if it does not run the pipeline."""
    where = next((i for i, a in enumerate(cmd) if a.endswith("run_pipeline.py")), None)
    return None if where is None else cmd[where + 1:]


def test_every_step_prints_its_commands(commands):
    assert list(commands) == list(STEPS) and all(commands.values())
    runs = [o for cmds in commands.values() for c in cmds if (o := pipeline_overrides(c)) is not None]
    assert len(runs) == 5  # the default GRPO run, QLoRA 4/8-bit, FSDP, ZeRO-3


def test_every_pipeline_command_composes_and_validates(commands, tmp_path):
    from rlvr.orchestration import build_pipeline

    for step, cmds in commands.items():
        for cmd in cmds:
            overrides = pipeline_overrides(cmd)
            if overrides is None:
                continue
            assert any(o.startswith("output_dir=/tmp/") for o in overrides), cmd  # never into the checkout
            cfg = compose([o for o in overrides if not o.startswith("output_dir=")] + [f"output_dir={tmp_path}"])
            build_pipeline(cfg)  # a ConfigError (unknown key, bad value) fails the test


def test_every_file_and_option_named_exists(commands):
    from accelerate.commands.config.config_args import load_config_from_file

    for cmd in (c for cmds in commands.values() for c in cmds):
        if "--config_file" in cmd:
            config = cmd[cmd.index("--config_file") + 1]
            assert (REPO / config).is_file(), config
            assert load_config_from_file(str(REPO / config)).distributed_type is not None
            assert int(cmd[cmd.index("--num_processes") + 1]) == 1  # one GPU: NCCL allows one rank per device
        for script in (a for a in cmd if a.endswith((".py", ".sh")) and not a.startswith(("/", "../"))):
            assert (REPO / script).is_file(), script  # (a path outside the repository is not ours to check)
        if cmd[0] == "python3" and cmd[1].startswith("bench/"):
            options = [a for a in cmd[2:] if a.startswith("--")]
            usage = subprocess.run([sys.executable, cmd[1], "--help"], capture_output=True, text=True, timeout=120,
                                   cwd=REPO)
            assert usage.returncode == 0, usage.stderr
            assert options and all(o in usage.stdout for o in options), (cmd[1], options)


def test_a_step_without_dry_run_or_an_unknown_step_is_refused():
    for args in (["all"], ["nope"], []):
        proc = subprocess.run(["bash", "bench/gpu.sh", *args], cwd=REPO, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and proc.stderr


def test_shellcheck_passes():
    from tests.unit.test_infrastructure import tool

    proc = subprocess.run([tool("shellcheck"), "--severity=style", str(REPO / "bench" / "gpu.sh")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
