"""A prompt that asks for one answer format while the reward parses another learns nothing (a trap of the
seeds). Every shipped prompt names the markers its own answer format extracts, and the ideal reply in that
format is read back correctly."""

from __future__ import annotations

from importlib.resources import files

import pytest

from rlvr.config import CONFIG_MODULE
from rlvr.scoring import NumberVerifier, Scorer, is_well_formatted
from tests.conftest import build_group, compose

PROMPTS = sorted(p.name.removesuffix(".yaml") for p in files(CONFIG_MODULE).joinpath("prompts").iterdir()
                 if p.name.endswith(".yaml"))


class Exact(NumberVerifier):
    def __call__(self, answer, row):
        return float(answer == row["answer"])


@pytest.mark.parametrize("option", PROMPTS)
def test_prompt_asks_for_what_the_scorer_reads(option):
    prompt = build_group(compose([f"prompts={option}"]), "prompts")
    fmt = prompt.answer_format
    text = " ".join(m["content"] for m in prompt.messages("What is 2 + 5?"))
    ideal = "2 + 5 = 7\n7"
    if fmt.answer_markers:
        assert all(marker in text for marker in fmt.answer_markers), f"{option} never asks for {fmt.answer_markers}"
        ideal = f"{fmt.answer_markers[0]}7{fmt.answer_markers[1]}"
        if fmt.reasoning_markers:
            assert all(marker in text for marker in fmt.reasoning_markers)
            ideal = f"{fmt.reasoning_markers[0]}2 + 5 = 7{fmt.reasoning_markers[1]}\n" + ideal
    elif fmt.answer_style == "gsm8k":
        assert "####" in text, f"{option} never asks for GSM8K's answer line"
        ideal = "2 + 5 = 7\n#### 7"
    else:
        assert "number" in text.lower()
    assert Scorer(fmt, Exact())(ideal, {"answer": "7"}).correct
    assert is_well_formatted(ideal, fmt)
