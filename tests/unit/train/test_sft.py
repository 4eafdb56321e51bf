"""SFTLoop: supervised fine-tuning on completions built from verified gold answers (or a dataset's own column),
through TRL's SFTTrainer behind the TrainingLoop contract; settings checked before anything loads; checkpoints
and resume like GRPO's."""

from __future__ import annotations

import json
import logging

import pytest

from rlvr.errors import ConfigError
from rlvr.interfaces import TrainInputs
from rlvr.orchestration import build_pipeline
from rlvr.scoring import AnswerFormat, NumberVerifier, Scorer
from rlvr.train import SFTLoop
from tests.conftest import build_group, compose, tiny_overrides

PROMPT = [{"role": "user", "content": "1 + 2 ="}]


def sft_overrides(model_dir, run_dir, *extra: str) -> list[str]:
    """The tiny config with train=sft (GRPO's num_generations is not an SFT setting)."""
    shrunk = [o for o in tiny_overrides(model_dir, run_dir) if not o.startswith("train.num_generations")]
    return [*shrunk, "train=sft", *extra]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def inputs(rows: list[dict], tokenizer, fmt: AnswerFormat = AnswerFormat(), model=None, **kw) -> TrainInputs:
    from datasets import Dataset

    return TrainInputs(model=model, tokenizer=tokenizer, train=Dataset.from_list(rows),
                       scorer=Scorer(fmt, NumberVerifier()), output_dir=kw.pop("output_dir", "unused"), seed=0,
                       events=None, **kw)


def row(answer: str, **more) -> dict:
    return {"prompt": PROMPT, "answer": answer, "task": "t", "entry": "{}", "question": "1 + 2 =", **more}


def test_only_completions_that_score_correct_are_kept_and_the_rest_counted(tokenizer, caplog):
    rows = [row("3"), row("3 or 4"), row("Paris"), row("12")]  # two golds that are no number: unusable
    with caplog.at_level(logging.WARNING, logger="rlvr"):
        dataset, dropped = SFTLoop().dataset(inputs(rows, tokenizer))
    assert [r["completion"] for r in dataset] == [[{"role": "assistant", "content": "The answer is 3."}],
                                                  [{"role": "assistant", "content": "The answer is 12."}]]
    assert dataset[0]["prompt"] == PROMPT and dataset.column_names == ["prompt", "completion"]
    assert dropped == {"bad_gold": 2}
    assert "2 of 4 training rows dropped" in caplog.text


def test_completions_follow_the_prompts_answer_format(tokenizer):
    fmt = AnswerFormat(answer_tag="answer", reasoning_tag="think", fallback_last_number=False)
    dataset, _ = SFTLoop().dataset(inputs([row("3")], tokenizer, fmt))
    text = dataset[0]["completion"][0]["content"]
    assert text.startswith("<think>\n") and text.endswith("</think>\n<answer>3</answer>")


def test_no_verifiable_row_is_a_config_error(tokenizer):
    with pytest.raises(ConfigError, match="no completion from the gold answers scores correct"):
        SFTLoop().dataset(inputs([row("n/a"), row("Paris")], tokenizer))


def test_completion_field_trains_on_the_datasets_own_completions_if_they_verify(tokenizer):
    rows = [row("3", solution="1 plus 2 makes 3."), row("4", solution="1 plus 2 makes 3.")]  # the second is wrong
    dataset, dropped = SFTLoop(completion_field="solution").dataset(inputs(rows, tokenizer))
    assert [r["completion"][0]["content"] for r in dataset] == ["1 plus 2 makes 3."]
    assert dropped == {"wrong": 1}
    with pytest.raises(ConfigError, match="train.completion_field='worked'.*no such column"):
        SFTLoop(completion_field="worked").dataset(inputs(rows, tokenizer))


def test_every_setting_reaches_sft_config(tmp_path):
    loop = build_group(compose(["train=sft", "train.packing=true", "train.completion_only_loss=false",
                                "train.max_length=256", "train.extra.loss_type=dft"]), "train")
    args = loop.config(str(tmp_path), seed=3, bf16=False)
    assert (args.packing, args.completion_only_loss, args.max_length, args.loss_type) == (True, False, 256, "dft")
    assert (args.max_steps, args.learning_rate, args.per_device_train_batch_size) == (20, 2e-5, 8)
    assert args.seed == 3 and args.report_to == [] and args.save_strategy == "steps"
    assert SFTLoop().config(str(tmp_path), seed=0).packing is False


@pytest.mark.parametrize(("extra", "expected"), [
    ({"not_a_field": 1}, "trl.SFTConfig does not know: not_a_field"),
    ({"optim": "nope"}, "trl.SFTConfig rejects these settings"),
    ({"packing_strategy": "nope"}, "Invalid value 'nope' for 'train.extra.packing_strategy'"),
    ({"max_steps": 3}, "train.extra.max_steps: a setting of its own"),
])
def test_a_bad_extra_fails_at_construction(extra, expected):
    with pytest.raises(ConfigError, match=expected):
        SFTLoop(extra=extra)


def test_a_bad_value_fails_when_the_pipeline_is_built(tmp_path):
    with pytest.raises(ConfigError, match="trl.SFTConfig does not know: nope"):
        build_pipeline(compose(["train=sft", "train.extra.nope=1", f"output_dir={tmp_path}"]))
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("masked", [True, False])
def test_completion_only_loss_masks_the_prompt_tokens(tiny_model_dir, tokenizer, tmp_path, masked):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    trainer = SFTLoop(completion_only_loss=masked).trainer(
        inputs([row("3")], tokenizer, model=model, output_dir=str(tmp_path)))
    example = trainer.train_dataset[0]
    ids, labels = example["input_ids"], example["labels"]
    prompt_len = len(tokenizer.apply_chat_template(PROMPT, add_generation_prompt=True, tokenize=True)["input_ids"])
    if masked:
        assert labels[:prompt_len] == [-100] * prompt_len and labels[prompt_len:] == ids[prompt_len:]
        assert tokenizer.decode(ids[prompt_len:]) == "The answer is 3.<|im_end|>\n"
    else:
        assert labels == ids


def test_packing_puts_several_examples_in_one_sequence(tiny_model_dir, tokenizer, tmp_path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    rows = [row(str(i)) for i in range(8)]  # 44 tokens each with the character tokenizer
    trainer = SFTLoop(packing=True, max_length=128).trainer(inputs(rows, tokenizer, model=model,
                                                                   output_dir=str(tmp_path)))
    packed = trainer.train_dataset
    assert len(packed) == 4 and packed[0]["seq_lengths"] == [44, 44] and trainer.padding_free
    prompt_len = len(tokenizer.apply_chat_template(PROMPT, add_generation_prompt=True, tokenize=True)["input_ids"])
    assert len(packed[0]["labels"]) == 88 and packed[0]["labels"].count(-100) == 2 * prompt_len  # each prompt masked


def final_weights(run_dir) -> dict:
    from safetensors.torch import load_file

    return load_file(run_dir / "model" / "model.safetensors")


def test_sft_trains_through_the_pipeline(tiny_model_dir, tmp_path):
    """train=sft as a one-stage run: loss and token accuracy logged each step, the weights change."""
    from safetensors.torch import load_file

    results = build_pipeline(compose(sft_overrides(tiny_model_dir, tmp_path))).run(tmp_path)
    assert results["run"]["status"] == "success" and results["train"]["global_step"] == 2
    history = results["train_history"]
    assert [h["step"] for h in history] == [1, 2]
    assert all(h["loss"] > 0 and 0 <= h["mean_token_accuracy"] <= 1 for h in history)
    before, after = load_file(tiny_model_dir / "model.safetensors"), final_weights(tmp_path)
    assert max((after[k] - before[k]).abs().max().item() for k in before) > 1e-3
    assert {"baseline", "final"} <= set(results)


def test_checkpoint_and_resume_match_an_uninterrupted_run(tiny_model_dir, tmp_path):
    """4 steps with a checkpoint every 2; a second run resumes from checkpoint-2 and ends with the same weights
    (exactly, on CPU: SFT samples nothing, and the Trainer restores the data order and RNG states)."""
    four = ["train.max_steps=4", "train.save_steps=2"]
    full = tmp_path / "full"
    build_pipeline(compose(sft_overrides(tiny_model_dir, full, *four))).run(full)
    checkpoint = full / "checkpoints" / "checkpoint-2"
    assert json.loads((checkpoint / "rlvr_state.json").read_text())["prompts_seen"] == 8
    resumed = tmp_path / "resumed"
    cfg = compose(sft_overrides(tiny_model_dir, resumed, *four, f"resume={checkpoint}"))
    results = build_pipeline(cfg).run(resumed)
    assert results["train"] == {**results["train"], "global_step": 4, "resumed_from_step": 2}
    assert [h["step"] for h in results["train_history"]] == [1, 2, 3, 4]
    ours, ref = final_weights(resumed), final_weights(full)
    assert max((ours[k] - ref[k]).abs().max().item() for k in ref) <= 1e-5
