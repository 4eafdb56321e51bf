"""``--help`` with ``hydra/help=rlvr``: what the program does, every group with its options, examples."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_help_says_what_it_does_lists_groups_and_gives_examples(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "run_pipeline.py"), "hydra/help=rlvr", "--help"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("run_pipeline.py: train a language model with reinforcement learning from verifiable "
                          "rewards (RLVR).")
    lines = out.splitlines()
    for group in ("data: ", "eval: ", "experiment: ", "model: ", "observers: ", "prompts: ", "reward: ", "train: "):
        (line,) = [x for x in lines if x.startswith(group)]
        assert line[len(group):].strip()  # its options
    assert "observers: default, none, tensorboard, wandb" in lines
    (experiments,) = [x for x in lines if x.startswith("experiment: ")]
    assert {"smoke", "sft_then_grpo", "dpo_from_samples", "gsm8k_qwen_grpo_lora"} <= set(
        experiments.removeprefix("experiment: ").split(", "))
    assert not any(x.startswith("hydra/") for x in lines)  # Hydra's own groups are under --hydra-help
    for example in ("train.max_steps=100", "data.task=letter_counting", "-m train.learning_rate=1e-5,2e-5"):
        assert any(x.strip().startswith(f"python run_pipeline.py {example}") for x in lines), example
    assert "_target_: rlvr.orchestration.PipelineOrchestrator" in out  # the composed config
    assert "$APP_CONFIG_GROUPS" not in out and "$CONFIG" not in out and "Powered by Hydra" not in out
    assert not (tmp_path / "outputs").exists()  # --help runs nothing
