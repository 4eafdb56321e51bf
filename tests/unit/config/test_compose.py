"""Every shipped config composes, every _target_ binds to its signature, and user mistakes fail early
with a message that names the key (lightning-hydra-template's test_configs, plus our bad-config cases)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from rlvr.config import ConfigError, check_choices, register_configs
from rlvr.config.registry import CONF_DIR
from rlvr.orchestration import build
from tests.conftest import REPO, compose

register_configs()
GROUPS = sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir() and p.name not in ("experiment", "benchmark"))
# conf/benchmark* belongs to the benchmark command's own config and is composed by its tests.
NEEDS_VALUE = {"model/hf": ["model.name_or_path=some/model"], "data/jsonl": ["data.path=x.jsonl"]}


def group_options() -> list[tuple[str, str]]:
    out = []
    for group in GROUPS:
        for path in sorted((CONF_DIR / group).rglob("*.yaml")):
            out.append((group, str(path.relative_to(CONF_DIR / group).with_suffix(""))))
    return out


def test_conf_dir_is_the_repo_conf():
    assert CONF_DIR == REPO / "conf"
    assert {"data", "model", "train", "reward", "eval", "observers", "prompts"} <= set(GROUPS)


@pytest.mark.parametrize(("group", "option"), group_options(), ids=lambda x: str(x))
def test_every_group_option_composes_and_builds(group, option):
    """Compose the option, check every _target_ node, and instantiate the group (nothing heavy loads)."""
    cfg = compose([f"{group}={option}", *NEEDS_VALUE.get(f"{group}/{option}", [])])
    check_choices(cfg)
    node = cfg[group]
    if group == "observers":
        built = [build(v, f"observers.{k}") for k, v in node.items()]
        assert all(type(b).__module__.startswith("rlvr.") for b in built)
    else:
        assert OmegaConf.is_struct(node) or OmegaConf.is_struct(cfg)
        extra = {"_recursive_": False} if group == "reward" else {}
        obj = build(node, group, **extra)
        assert f"{type(obj).__module__}.{type(obj).__qualname__}" == node._target_ or node._target_.endswith(
            type(obj).__name__
        )


@pytest.mark.parametrize("experiment", sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml")))
def test_every_experiment_composes(experiment):
    cfg = compose([f"experiment={experiment}"])
    check_choices(cfg)
    assert cfg.train.max_steps >= 1


def test_overrides_users_type():
    cfg = compose(["train.max_steps=500", "train.learning_rate=1e-5", "model.lora.r=16",
                   "data=reasoning_gym", "data.task=basic_arithmetic"])
    assert (cfg.train.max_steps, cfg.train.learning_rate, cfg.model.lora.r) == (500, 1e-5, 16)
    assert cfg.data.task == "basic_arithmetic"


def test_eval_budget_follows_training_completion_length():
    assert compose(["train.max_completion_length=77"]).eval.max_new_tokens == 77


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("data=nonexistent", "Could not find 'data/nonexistent'"),
        ("train.max_stepz=3", "Key 'max_stepz' not in"),
        ("train.max_steps=abc", "could not be converted to Integer"),
        ("model.lora.r=1.5", "full_key: model.lora.r"),
    ],
)
def test_composition_errors_name_the_key(override, expected):
    with pytest.raises(ConfigCompositionException) as e:
        compose([override])
    text = str(e.value) + str(e.value.__cause__ or "")
    assert expected in text


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["train.loss_type=bogus"], "Valid choices: grpo, dr_grpo, dapo, bnpo"),
        (["+train.max_stepz=3"], "Unknown key 'train.max_stepz' for rlvr.train.grpo.GRPOLoop. Did you mean 'max_steps'?"),
        (["model.dtype=float8"], "'model.dtype'"),
        (["train.num_generations=3"], "must be a multiple of train.num_generations"),
        (["train.num_generations=1"], "num_generations must be >= 2"),
        (["data.train_seed=2", "data.test_seed=2"], "must differ"),
        (["data.task=chain_summ"], "Unknown reasoning-gym task 'chain_summ'"),
        (["+reward.functions.correctness.bogus=1"], "Unknown key 'reward.functions.correctness.bogus'"),
        (["+observers.console.colour=1"], "Unknown key 'observers.console.colour'"),
        (["+train.extra.not_a_trl_field=1"], "trl.GRPOConfig does not know: not_a_trl_field"),
        (["model.quant.load_in_4bit=true", "model.lora.enabled=true"], "needs a CUDA GPU"),
        (["model=hf"], "model.name_or_path"),
    ],
)
def test_bad_values_raise_config_error_before_any_model_loads(overrides, expected, tmp_path):
    from rlvr.orchestration import PipelineOrchestrator

    cfg = compose(overrides + [f"output_dir={tmp_path}"])
    with pytest.raises(ConfigError) as e:
        PipelineOrchestrator(cfg, run_dir=tmp_path)
    assert expected in str(e.value)
    assert not (tmp_path / "model").exists()


def test_cli_config_error_is_one_line_without_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "run_pipeline.py"), "train.loss_type=bogus", f"output_dir={tmp_path}"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    assert proc.returncode == 2
    assert "Config error: Invalid value 'bogus' for 'train.loss_type'" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_cli_unknown_group_option_lists_choices(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "run_pipeline.py"), "train=nope"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    assert proc.returncode != 0
    assert "Available options in 'train'" in proc.stderr and "grpo" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_schema_is_the_signature():
    """Defaults live in the component's signature only: the schema copies them and the YAML adds deltas."""
    import inspect

    from rlvr.config import schema_of
    from rlvr.train import GRPOLoop

    schema = schema_of(GRPOLoop)
    params = inspect.signature(GRPOLoop.__init__).parameters
    assert schema().beta == params["beta"].default
    assert set(schema.__dataclass_fields__) - {"_target_"} == set(params) - {"self"}


def test_all_targets_are_rlvr_or_libraries():
    for path in CONF_DIR.rglob("*.yaml"):
        for line in path.read_text().splitlines():
            if line.strip().startswith("_target_:"):
                target = line.split(":", 1)[1].strip()
                assert not target.startswith("src."), f"{path}: {target}"


def test_cli_mistake_found_while_loading_is_one_line_too(tmp_path):
    """A missing data file is only found when the data stage runs: still a message, exit 2, no traceback."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "run_pipeline.py"), "data=gsm8k", f"data.path={tmp_path}/missing",
         "observers=none", f"output_dir={tmp_path}/run"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    assert proc.returncode == 2
    assert "Config error: data.path:" in proc.stderr and "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
