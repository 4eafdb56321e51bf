"""Every mistake a user can make on the command line, Hydra's own included, exits 2 with one line that names the
key or file, before any model loads, and leaves no run directory behind (the table-driven bad-config test of
the CLI; the checks behind each message are tested in tests/unit/config)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

BAD_YAML = "# @package _global_\ntrain:\n  max_steps: [1\n"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["data=nope"], "Config error: 'data=nope': no such option in group 'data'. Options: finqa, gsm8k"),
        (["experiment=nope"], "Config error: 'experiment=nope': no such option in group 'experiment'. Options: "
                              "curriculum, dpo_from_samples"),
        (["hydra/launcher=nope"], "Config error: 'hydra/launcher=nope': no such option in group 'hydra/launcher'."),
        (["experiment=null"], "Config error: a group option on the command line cannot be null"),
        (["train.max_stepz=3"], "Config error: Unknown key 'train.max_stepz' for rlvr.train.GRPOLoop. Did you mean "
                                "'max_steps'?"),
        (["train.max_steps=abc"], "Config error: 'train.max_steps' must be an integer, got 'abc'."),
        (["train.loss_type=grpoo"], "Config error: Invalid value 'grpoo' for 'train.loss_type'."),
        (["train.max_steps=[1,"], "Config error: cannot parse the command-line override:"),
        (["--config-dir", "myconf", "experiment=bad"], "Config error: YAML syntax error in "),
        (["data.task=letter_countin"], "Config error: Unknown reasoning-gym task 'letter_countin'"),
        (["data=gsm8k", "data.path=missing"], "Config error: data.path: 'missing' does not exist"),
    ],
)
def test_a_bad_command_line_is_one_line_and_exit_2(args, expected, tmp_path):
    (tmp_path / "myconf" / "experiment").mkdir(parents=True)
    (tmp_path / "myconf" / "experiment" / "bad.yaml").write_text(BAD_YAML)
    proc = subprocess.run([sys.executable, str(REPO / "run_pipeline.py"), *args, "observers=none"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(expected), proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    if "YAML" in expected:
        assert "myconf/experiment/bad.yaml, line" in lines[0]
    assert not (tmp_path / "outputs").exists()  # no run directory left behind
