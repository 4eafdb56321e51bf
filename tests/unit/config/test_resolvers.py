"""Our OmegaConf resolvers: ${eval:...} does arithmetic and nothing else; ${get_marker:...} names the markers
of a style, or the ones the enclosing prompt config asks for, so a system prompt follows marker overrides."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf
from omegaconf.errors import InterpolationResolutionError

from rlvr.config import register_resolvers
from rlvr.config.resolvers import get_marker, safe_eval
from rlvr.scoring import MARKER_STYLES
from tests.conftest import build_group, compose

register_resolvers()


@pytest.mark.parametrize(
    ("expr", "expected"),
    [("2 * 8", 16), ("2 * (3 + 4) // 3", 4), ("-3 + 2 ** 3", 5), ("max(2, 7) / 2", 3.5), ("round(2.567, 1)", 2.6),
     ("10 % 4", 2), ("int(7.9)", 7)],
)
def test_eval_does_arithmetic(expr, expected):
    assert safe_eval(expr) == expected
    assert OmegaConf.create({"x": f"${{eval:'{expr}'}}"}).x == expected


@pytest.mark.parametrize(
    "expr",
    ["__import__('os').system('true')", "open('/etc/passwd')", "(1).__class__", "x + 1", "[1, 2]", "'a' * 3",
     "lambda: 1", "2 ** 1000", "max(1, key=abs)", "True + 1", "1 if 1 else 2", "1" + " + 1" * 600],
)
def test_eval_refuses_anything_else(expr):
    with pytest.raises((ValueError, SyntaxError)):
        safe_eval(expr)


def test_eval_error_surfaces_through_omegaconf():
    cfg = OmegaConf.create({"x": "${eval:'__import__(\"os\")'}"})
    with pytest.raises(InterpolationResolutionError, match="arithmetic only"):
        _ = cfg.x


@pytest.mark.parametrize(
    ("args", "expected"),
    [("reasoning_start,working_out", "<start_working_out>"), ("answer_end,working_out", "</SOLUTION>"),
     ("reasoning_start,xml", "<think>"), ("answer_start,xml", "<answer>")],
)
def test_get_marker_of_a_style(args, expected):
    assert OmegaConf.create({"m": f"${{get_marker:{args}}}"}).m == expected


@pytest.mark.parametrize(
    ("prompt", "name", "expected"),
    [
        ({"answer_tag": "answer"}, "answer_start", "<answer>"),
        ({"answer_tag": "answer"}, "answer_end", "</answer>"),
        ({"reasoning_tag": "think"}, "reasoning_end", "</think>"),
        ({"answer_tag": "answer", "answer_start": "<ANS>"}, "answer_start", "<ANS>"),  # explicit markers win
        ({"answer_start": "${get_marker:answer_start,working_out}"}, "answer_start", "<SOLUTION>"),
    ],
)
def test_get_marker_follows_the_enclosing_prompt_config(prompt, name, expected):
    cfg = OmegaConf.create({"prompts": {**prompt, "system": f"Answer in ${{get_marker:{name}}}."}})
    assert cfg.prompts.system == f"Answer in {expected}."


@pytest.mark.parametrize(
    ("expr", "message"),
    [("${get_marker:answer_begin,xml}", "unknown marker"), ("${get_marker:answer_start,html}", "unknown style"),
     ("${get_marker:answer_start}", "sets neither answer_start nor answer_tag")],
)
def test_get_marker_errors_say_what_to_use(expr, message):
    with pytest.raises(InterpolationResolutionError, match=message):
        _ = OmegaConf.create({"prompts": {"system": expr}}).prompts.system


def test_styles_have_every_marker():
    assert all(set(style) == {"reasoning_start", "reasoning_end", "answer_start", "answer_end"}
               for style in MARKER_STYLES.values())
    assert get_marker("answer_start", _parent_={"answer_tag": "sol"}) == "<sol>"


def test_seeds_prompt_names_its_markers_and_follows_overrides():
    prompt = build_group(compose(["prompts=working_out"]), "prompts")
    assert "between <start_working_out> and <end_working_out>" in prompt.system
    assert prompt.system.endswith("between <SOLUTION></SOLUTION>")
    overridden = build_group(compose(["prompts=working_out", "prompts.answer_start='<ANS>'",
                                      "prompts.answer_end='</ANS>'"]), "prompts")
    assert overridden.system.endswith("between <ANS></ANS>")
    assert overridden.answer_format.answer_markers == ("<ANS>", "</ANS>")


def test_resolvers_registered_once():
    register_resolvers()
    register_resolvers()
    assert all(OmegaConf.has_resolver(r) for r in ("eval", "get_marker", "first"))
