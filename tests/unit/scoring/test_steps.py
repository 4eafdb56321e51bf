"""A solution's steps: split at the separator (blank lines are no steps, the text is kept whole) and the token
that ends each step, found through the tokenizer's character offsets (what the PRM is trained on and read at)."""

from __future__ import annotations

import pytest

from rlvr.scoring.steps import split_steps, step_ends


@pytest.mark.parametrize(("text", "separator", "steps"), [
    ("a = 1\nb = 2\nso 3", "\n", ["a = 1\n", "b = 2\n", "so 3"]),
    ("a = 1\n\n\nb = 2\n", "\n", ["a = 1\n\n\n", "b = 2\n"]),
    ("\n  \nfirst\nsecond", "\n", ["\n  \nfirst\n", "second"]),  # leading blank lines belong to the first step
    ("Step 1: x. Step 2: y.", ". ", ["Step 1: x. ", "Step 2: y."]),
    ("one step", "\n", ["one step"]),
    ("", "\n", []),
    (" \n\t\n", "\n", []),
])
def test_steps_split_at_the_separator_and_join_back_to_the_text(text, separator, steps):
    assert split_steps(text, separator) == steps
    if steps:
        assert "".join(steps) == text


def test_each_step_ends_at_the_token_of_its_last_visible_character(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)  # one token per character
    prefix = "<|im_start|>assistant\n"
    steps = split_steps("1 + 2 = 3\n\n3 + 4 = 7\nanswer 7", "\n")
    ids, ends = step_ends(tokenizer, prefix, steps)
    assert ids == tokenizer(prefix + "".join(steps), add_special_tokens=False)["input_ids"]
    assert [tokenizer.decode([ids[e]]) for e in ends] == ["3", "7", "7"]
    assert ends == [len(tokenizer(prefix, add_special_tokens=False)["input_ids"]) + i for i in (8, 19, 28)]
