"""Every shipped config composes, validates and builds; user mistakes fail before anything loads with one
message that names the key (lightning-hydra-template's test_configs, plus our table of bad configs)."""

from __future__ import annotations

from importlib.resources import files

import pytest

from rlvr.config import CONFIG_MODULE, validate, with_defaults
from rlvr.errors import ConfigError
from rlvr.orchestration import PipelineOrchestrator, build_pipeline
from tests.conftest import REPO, compose

CONF = files(CONFIG_MODULE)
OVERLAYS = ("experiment", "control")  # groups whose options are overlays of the whole config (@package _global_)
GROUPS = sorted(p.name for p in CONF.iterdir() if p.is_dir() and p.name not in (*OVERLAYS, "hydra", "__pycache__"))
GSM8K_FILE = f"data.path={REPO}/tests/fixtures/gsm8k/test.jsonl"
NEEDS_VALUE = {"model/hf": ["model.name_or_path=some/model"], "data/jsonl": [GSM8K_FILE],
               "data/preferences_jsonl": [GSM8K_FILE],
               "train/reward_model": ["eval=pairwise"]}  # a reward model does not generate: the default eval refuses it


def group_options() -> list[tuple[str, str]]:
    return [(group, p.name.removesuffix(".yaml")) for group in GROUPS
            for p in sorted(CONF.joinpath(group).iterdir(), key=lambda p: p.name) if p.name.endswith(".yaml")]


def test_the_config_tree_ships_in_the_package_and_conf_links_to_it():
    assert {"data", "model", "train", "reward", "eval", "observers", "prompts"} <= set(GROUPS)
    assert (REPO / "conf").resolve() == (REPO / "src" / "rlvr" / "conf").resolve()


# Options that point at a saved scorer (a train=prm or train=reward_model run's model/): tiny ones made in the test.
NEEDS_SCORER = {"reward/verifier_prm": ("reward.functions.prm.path", 0),
                "reward/verifier_reward_model": ("reward.functions.reward_model.path", 1)}


@pytest.mark.parametrize(("group", "option"), group_options(), ids=lambda x: str(x))
def test_every_group_option_validates_and_builds(group, option, request):
    """Compose the option, validate every _target_ node and build the whole pipeline (nothing heavy loads)."""
    extra = list(NEEDS_VALUE.get(f"{group}/{option}", []))
    if f"{group}/{option}" in NEEDS_SCORER:
        key, which = NEEDS_SCORER[f"{group}/{option}"]
        extra.append(f"{key}={request.getfixturevalue('tiny_scorer_dirs')[which]}")
    cfg = compose([f"{group}={option}", *extra])
    pipeline = build_pipeline(cfg)
    assert isinstance(pipeline, PipelineOrchestrator)
    assert pipeline.config[group]["_target_"] == cfg[group]["_target_"] if "_target_" in cfg[group] else True


@pytest.mark.parametrize("experiment", sorted(p.name.removesuffix(".yaml") for p in CONF.joinpath("experiment").iterdir()
                                              if p.name.endswith(".yaml")))
def test_every_experiment_builds(experiment):
    pipeline = build_pipeline(compose([f"experiment={experiment}"]))
    loops = list(pipeline.plan.stages.values()) or [pipeline.trainer]
    assert all(loop.max_steps >= 1 for loop in loops)


def test_defaults_are_stated_once_in_the_signature_and_filled_in():
    """grpo.yaml names the class only; the run's config.yaml lists every signature default."""
    import inspect

    from rlvr.train import GRPOLoop

    cfg = compose([])
    assert set(cfg.train.keys()) == {"_target_"}
    full = with_defaults(cfg)
    params = inspect.signature(GRPOLoop.__init__).parameters
    assert full.train.beta == params["beta"].default
    assert set(full.train.keys()) - {"_target_"} == set(params) - {"self"}


def test_no_group_file_repeats_a_signature_default():
    """A YAML value equal to its class's default is a second statement of that default."""
    import inspect

    from rlvr.config import import_target

    for group, option in group_options():
        cfg = compose([f"{group}={option}", *NEEDS_VALUE.get(f"{group}/{option}", [])])
        node = cfg[group]
        nodes = [node] if "_target_" in node else [v for v in node.values() if hasattr(v, "keys") and "_target_" in v]
        for n in nodes:
            params = inspect.signature(import_target(n._target_).__init__).parameters
            for key in n:
                if key in params and params[key].default is not inspect.Parameter.empty:
                    raw = n._get_node(key)._value() if hasattr(n._get_node(key), "_value") else None
                    assert raw != params[key].default or isinstance(raw, (dict, list)), \
                        f"{group}/{option}: {key}={raw!r} repeats the default of {n._target_}"


@pytest.mark.parametrize("control", ["none", "random_reward", "format_only"])
def test_every_control_builds(control):
    assert build_pipeline(compose([f"control={control}"])).reward.control == control


def test_overrides_users_type():
    cfg = compose(["train.max_steps=500", "train.learning_rate=1e-5", "model.lora.r=16",
                   "data=reasoning_gym", "data.task=basic_arithmetic"])
    pipeline = build_pipeline(cfg)
    assert pipeline.trainer.settings["max_steps"] == 500 and pipeline.trainer.settings["learning_rate"] == 1e-5
    assert pipeline.model.lora.r == 16 and pipeline.data.task == "basic_arithmetic"


def test_switching_task_by_name_uses_that_tasks_defaults():
    """chain_sum's parameters stay with chain_sum: letter_counting gets reasoning-gym's own defaults."""
    pipeline = build_pipeline(compose(["data.task=letter_counting"]))
    assert pipeline.data.task == "letter_counting" and pipeline.data.params == {}
    chain = build_pipeline(compose(["data.params.chain_sum.max_terms=3"]))
    assert chain.data.params["max_terms"] == 3
    other = build_pipeline(compose(["data.task=basic_arithmetic", "data.params.basic_arithmetic.max_terms=3"]))
    assert other.data.params == {"max_terms": 3}


def test_eval_budget_follows_training_completion_length():
    assert build_pipeline(compose(["train.max_completion_length=77"])).evaluator.max_new_tokens == 77
    assert build_pipeline(compose([])).evaluator.max_new_tokens == 16  # train=grpo's, through ${...}
    assert build_pipeline(compose(["train=rloo"])).evaluator.max_new_tokens == 40  # the signature default


@pytest.mark.parametrize(("overrides", "lora"), [
    ([], True),  # the default job: GRPO trains a LoRA adapter on the embedded model
    (["train=sft"], False), (["train=dpo"], False), (["train=rloo"], False),  # the others: every weight, as tuned
    (["experiment=sft_then_grpo"], False),  # stages (train: null), each tuned with every weight
    (["experiment=curriculum"], False), (["experiment=grpo_self_play"], False),  # measured with every weight
    (["model.lora.enabled=false"], False), (["train=sft", "model.lora.enabled=true"], True),  # said outright wins
    (["model=hf", "model.name_or_path=x", "train=sft"], True),  # another option keeps its own setting
    (["model.name_or_path=/a/local/model"], False),  # another model in the embedded model's place: every weight
])
def test_the_embedded_model_trains_a_lora_adapter_under_grpo_only(overrides, lora):
    assert compose(overrides).model.lora.enabled is lora


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["train.loss_type=bogus"], "Invalid value 'bogus' for 'train.loss_type'. Valid choices: grpo, dr_grpo"),
        (["train.max_stepz=3"], "Unknown key 'train.max_stepz' for rlvr.train.GRPOLoop. Did you mean 'max_steps'?"),
        (["train.max_steps=abc"], "'train.max_steps' must be an integer, got 'abc'"),
        (["train.learning_rate=fast"], "'train.learning_rate' must be a number, got 'fast'"),
        (["model.lora.r=1.5"], "'model.lora.r' must be an integer, got 1.5"),
        (["model.lora.alpah=8"], "Unknown key 'model.lora.alpah'. Did you mean 'alpha'?"),
        (["model.dtype=float8"], "Invalid value 'float8' for 'model.dtype'"),
        (["train.num_generations=3"], "must be a multiple of train.num_generations"),
        (["train.num_generations=1"], "'train.num_generations' must be >= 2 (the advantage compares completions"),
        (["train.learning_rate=-1e-5"], "'train.learning_rate' must be > 0, got -1e-05"),
        (["train.per_device_train_batch_size=0"], "'train.per_device_train_batch_size' must be >= 1, got 0"),
        (["train.gradient_accumulation_steps=0"], "'train.gradient_accumulation_steps' must be >= 1, got 0"),
        (["train.top_p=0"], "'train.top_p' must be in (0, 1], got 0"),
        (["train.top_p=1.5"], "'train.top_p' must be in (0, 1], got 1.5"),
        (["train.beta=-0.1"], "'train.beta' must be >= 0, got -0.1"),
        (["train.max_completion_length=0"], "'train.max_completion_length' must be >= 1, got 0"),
        (["model.lora.enabled=true", "model.lora.r=0"], "'model.lora.r' must be >= 1, got 0"),
        (["eval.batch_size=0"], "'eval.batch_size' must be >= 1, got 0"),
        (["data.test_size=0"], "'data.test_size' must be >= 1, got 0"),
        (["data.train_seed=2", "data.test_seed=2"], "must differ"),
        (["data.task=chain_summ"], "Unknown reasoning-gym task 'chain_summ'"),
        (["data.params.chain_sum.max_term=3"], "Unknown key 'data.params.chain_sum.max_term'"),
        (["data.params.chain_sum.max_terms=0"], "data.params.chain_sum: reasoning-gym rejects"),
        (["reward.functions.correctness.bogus=1"], "Unknown key 'reward.functions.correctness.bogus'"),
        (["+reward.weights.nope=1"], "reward.weights names nope"),
        (["+reward.functions.f={_target_: rlvr.scoring.extract.last_number}"], "add `_partial_: true`"),
        (["+reward.functions.f={_target_: nope.mod.fn}"], "_target_ 'nope.mod.fn' cannot be imported"),
        (["observers.console.colour=1"], "Unknown key 'observers.console.colour'"),
        (["train.extra.not_a_trl_field=1"], "trl.GRPOConfig does not know: not_a_trl_field"),
        (["model.lora.enabled=false", "model.quant.load_in_4bit=true"],
         "cannot be trained directly: set model.lora.enabled=true"),
        (["model.quant.load_in_8bit=true", "model.lora.enabled=true", "model.quant.quant_type=int4"],
         "model.quant.quant_type"),
        (["model=hf"], "'model.name_or_path' must be set"),
        (["data=jsonl"], "'data.path' must be set"),
        (["seed=abc"], "'seed' must be an integer"),
    ],
)
def test_bad_values_raise_config_error_before_anything_loads(overrides, expected, tmp_path):
    with pytest.raises(ConfigError) as e:
        build_pipeline(compose(overrides + [f"output_dir={tmp_path}"]))
    assert expected in str(e.value)
    assert "\n" not in str(e.value)
    assert not any(tmp_path.iterdir())


def test_validate_checks_nested_lists_and_unions():
    from omegaconf import OmegaConf

    validate(OmegaConf.create({"_target_": "rlvr.observers.WandbObserver", "tags": ["a", "b"], "mode": None}))
    with pytest.raises(ConfigError, match=r"'x.tags\[1\]' must be a string"):
        validate(OmegaConf.create({"_target_": "rlvr.observers.WandbObserver", "tags": ["a", 2]}), "x")


def test_all_targets_are_rlvr_or_libraries():
    for group, option in group_options():
        text = CONF.joinpath(group, f"{option}.yaml").read_text()
        for line in text.splitlines():
            if line.strip().startswith("_target_:"):
                assert not line.split(":", 1)[1].strip().startswith("src."), f"{group}/{option}"


def test_tensorboard_goes_in_a_list_with_the_other_observers():
    """observers=[wandb,tensorboard]: console, metrics.jsonl, report, W&B and TensorBoard, each once."""
    from rlvr.observers import TensorBoardObserver, WandbObserver

    pipeline = build_pipeline(compose(["observers=[wandb,tensorboard]"]))
    assert list(pipeline.observers) == ["console", "jsonl", "report", "wandb", "tensorboard"]
    assert isinstance(pipeline.observers["wandb"], WandbObserver)
    assert isinstance(pipeline.observers["tensorboard"], TensorBoardObserver)
    alone = build_pipeline(compose(["observers=tensorboard", "observers.tensorboard.log_dir=tb"]))
    assert list(alone.observers) == ["console", "jsonl", "report", "tensorboard"]
    assert alone.observers["tensorboard"].log_dir == "tb"


@pytest.mark.parametrize("overrides", [[], ["train=sft"], ["experiment=sft_then_grpo"], ["experiment=smoke"]])
def test_streaming_data_composes_with_the_loops_that_stream(overrides):
    data = [f"data.path={REPO}/tests/fixtures/gsm8k", "data.streaming=true", "data.shuffle_buffer=64"]
    pipeline = build_pipeline(compose(["data=gsm8k", *data, *overrides, "observers=tensorboard"]))
    assert pipeline.data.streaming and pipeline.data.shuffle_buffer == 64
    assert all(hasattr(loop, "check_streaming") for loop in [*pipeline.plan.stages.values(), pipeline.trainer] if loop)
