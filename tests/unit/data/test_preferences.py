"""Preference data: a dataset's own pairs (or labels) through data.columns, and pairs built from the policy's
samples scored by the verifier: best against worst, prompts whose samples all rank alike dropped, KTO labels
from correctness."""

from __future__ import annotations

import json

import pytest

from rlvr.data import PromptTemplate, QAData
from rlvr.data.preferences import dataset_labels, dataset_pairs, sample, sample_pairs
from rlvr.errors import ConfigError
from rlvr.interfaces import Score
from tests.conftest import compose

PROMPT = [{"role": "user", "content": "1 + 2 ="}]


def write_prefs(path, n: int = 12, **extra) -> str:
    records = [{"question": f"{i} + 1 =", "answer": str(i + 1), "good": f"The answer is {i + 1}.",
                "bad": f"The answer is {i + 2}.", "ok": i % 2 == 0, **extra} for i in range(n)]
    path.write_text("\n".join(json.dumps(r) for r in records))
    return str(path)


def test_the_data_group_fills_preference_columns_from_named_fields(tmp_path):
    path = write_prefs(tmp_path / "p.jsonl")
    cfg = compose(["data=preferences_jsonl", f"data.path={path}", "data.test_size=4", "data.columns.chosen=good",
                   "data.columns.rejected=bad"])
    from tests.conftest import build_group

    data = build_group(cfg, "data")
    splits = data.load(PromptTemplate())
    assert {"chosen", "rejected"} <= set(splits.train.column_names) and len(splits.test) == 4
    row = splits.train[0]
    q = int(row["question"].split(" ")[0])
    assert (row["chosen"], row["rejected"]) == (f"The answer is {q + 1}.", f"The answer is {q + 2}.")
    pairs = dataset_pairs(splits.train, "train.preferences=dataset")
    assert pairs[0]["chosen"] == [{"role": "assistant", "content": row["chosen"]}]
    assert pairs[0]["prompt"] == row["prompt"]


def test_a_record_without_a_named_field_is_skipped_and_counted(tmp_path):
    records = [r for i in range(4) for r in ({"question": f"{i}+1", "answer": "2", "good": "2", "bad": "3"},
                                             {"question": f"{i}+2", "answer": "4"})]
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records))
    data = QAData(path=str(path), test_size=1, columns={"chosen": "good", "rejected": "bad"})
    splits = data.load(PromptTemplate())
    assert splits.stats["skipped/good: missing"] == 4 and len(splits.train) + len(splits.test) == 4
    with pytest.raises(ConfigError, match="data.columns: answer is a column of every row"):
        QAData(path=str(path), columns={"answer": "good"})


def test_kto_labels_from_a_label_column_or_from_pairs():
    rows = [{"prompt": PROMPT, "completion": "3", "label": "true"}, {"prompt": PROMPT, "completion": "4", "label": 0}]
    labelled = dataset_labels(rows, "train.preferences=dataset")
    assert [(r["completion"][0]["content"], r["label"]) for r in labelled] == [("3", True), ("4", False)]
    pairs = [{"prompt": PROMPT, "chosen": "3", "rejected": "4"}]
    labelled = dataset_labels(pairs, "train.preferences=dataset")
    assert [(r["completion"][0]["content"], r["label"]) for r in labelled] == [("3", True), ("4", False)]
    with pytest.raises(ConfigError, match="label must be true/false"):
        dataset_labels([{"prompt": PROMPT, "completion": "3", "label": "maybe"}], "train.preferences=dataset")
    with pytest.raises(ConfigError, match="^train.preferences=dataset needs .*no chosen, rejected column.*data.columns"
                                          ".*train.preferences=samples"):
        dataset_pairs([{"prompt": PROMPT, "answer": "3"}], "train.preferences=dataset")


class ByText:
    """A scorer that judges a completion by what it contains: 'a' correct, 'b' wrong, else unparseable."""

    fmt = None

    def __call__(self, text: str, row: dict) -> Score:
        if "a" in text:
            return Score("a", "correct", 1.0)
        return Score("b", "wrong", 0.0) if "b" in text else Score(None, "unparseable", 0.0)


def test_best_against_worst_and_prompts_that_rank_alike_dropped(monkeypatch):
    import rlvr.data.preferences as prefs

    texts = ["xb", "a1", "zz", "a2",   # correct, wrong and unparseable: best a1, worst zz (first of the lowest)
             "b1", "b2", "b3", "b4",   # all wrong: dropped
             "b", "q", "b", "q"]       # wrong beats no answer
    monkeypatch.setattr(prefs, "sample", lambda *a, **k: texts)
    rows = [{"prompt": [{"role": "user", "content": str(i)}]} for i in range(3)]
    built = sample_pairs(None, None, rows, ByText(), k=4, max_new_tokens=8)
    got = [(p["prompt"][0]["content"], p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in built.pairs]
    assert got == [("0", "a1", "zz"), ("2", "b", "q")]
    assert built.stats == {"prompts": 3, "samples_per_prompt": 4, "sample_accuracy": 2 / 12, "pairs": 2,
                           "prompts_dropped_all_alike": 1, "labelled": 4}
    # KTO: only the prompt with both correct and incorrect samples; desirable = correct
    assert [(r["completion"][0]["content"], r["label"]) for r in built.rows("labels")] == [
        ("xb", False), ("a1", True), ("zz", False), ("a2", True)]


def test_no_pair_at_all_says_what_to_change(monkeypatch):
    import rlvr.data.preferences as prefs

    monkeypatch.setattr(prefs, "sample", lambda *a, **k: ["b"] * 4)
    built = sample_pairs(None, None, [{"prompt": PROMPT}], ByText(), k=4, max_new_tokens=8)
    with pytest.raises(ConfigError, match="ranked alike.*train.samples_per_prompt"):
        built.rows("pairs")
    with pytest.raises(ConfigError, match="all correct or all not"):
        built.rows("labels")


def test_sampling_is_seeded_and_leaves_the_global_rng_alone(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tok = AutoModelForCausalLM.from_pretrained(tiny_model_dir), AutoTokenizer.from_pretrained(tiny_model_dir)
    torch.manual_seed(7)
    before = torch.random.get_rng_state()
    kw = dict(k=3, max_new_tokens=6, temperature=1.0, top_p=1.0, batch_size=4, seed=1)
    first = sample(model, tok, [PROMPT, PROMPT], **kw)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert len(first) == 6 and first == sample(model, tok, [PROMPT, PROMPT], **kw)
    assert len(set(first)) > 1  # sampled, not greedy


def test_sampling_shows_its_own_progress_bar_with_a_total(tiny_model_dir, capsys):
    """Sampling comes before a preference loop's first step and may take minutes: it has a bar of its own, counting
    prompts against their total (not the training bar's "0step")."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tok = AutoModelForCausalLM.from_pretrained(tiny_model_dir), AutoTokenizer.from_pretrained(tiny_model_dir)
    sample(model, tok, [PROMPT] * 3, k=2, max_new_tokens=4, temperature=1.0, top_p=1.0, batch_size=2, seed=0)
    err = capsys.readouterr().err
    assert "sampling 2 completions per prompt" in err and "3/3" in err and "prompt/s" in err

