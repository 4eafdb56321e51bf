"""Answer extraction on adversarial completions: milliseconds per completion against its length.

    python bench/extraction.py                       # 10k, 20k, 50k and 100k characters
    python bench/extraction.py --sizes 1000 100000   # any sizes

Each row is one kind of marker repeated until the completion is that long, with no closing marker (or with
nothing that closes it), scored the way training and evaluation score it: ``Scorer`` over the prompt's
``AnswerFormat`` and the data's verifier, plus ``is_well_formatted`` (the format rewards) where the format has
markers. A policy can write any of these, so the time must grow with the length, not with its square: the
``ms`` columns should roughly double from 50k to 100k characters.

A second table times short answers that made parsers slow before they were bounded (deep nesting, huge
factorials and powers, numbers of thousands of digits): each must end well under 100 ms, refused unread.
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Callable

from rlvr.scoring import AnswerFormat, MathVerifier, NumberVerifier, Scorer, is_well_formatted

TAGS = AnswerFormat(answer_tag="answer", reasoning_tag="think", fallback_last_number=False)
PLAIN = AnswerFormat()


def gsm8k_format() -> AnswerFormat | None:
    """The GSM8K answer style, or None on a checkout that does not have it yet (for before/after figures)."""
    try:
        return AnswerFormat(answer_style="gsm8k")  # type: ignore[call-arg]
    except TypeError:
        return None


def cases() -> dict[str, tuple[str, AnswerFormat | None, object]]:
    """``name: (repeated unit, format, verifier)``; the completion is the unit repeated up to the size."""
    gsm8k = gsm8k_format()
    return {
        "<answer> (open)": ("<answer>", TAGS, NumberVerifier()),
        "</answer> (stray close)": ("</answer>", TAGS, NumberVerifier()),
        "<answer></answer> (empty blocks)": ("<answer></answer>", TAGS, NumberVerifier()),
        "<think> (open)": ("<think>", TAGS, NumberVerifier()),
        "\\boxed{ in a block (math)": ("\\boxed{", TAGS, MathVerifier()),
        "\\boxed{ (last number)": ("\\boxed{", PLAIN, NumberVerifier()),
        "#### (gsm8k)": ("#### ", gsm8k, NumberVerifier()),
        "The answer is (gsm8k)": ("The answer is ", gsm8k, NumberVerifier()),
        "(9 (last number)": ("(9", PLAIN, NumberVerifier()),
        "1, (last number)": ("1,", PLAIN, NumberVerifier()),
    }


def slow_answers() -> dict[str, tuple[str, object]]:
    """``name: (answer block content, verifier)``: short inputs that once took seconds."""
    return {
        "200 nested brackets (math)": ("(" * 200 + "1" + ")" * 200, MathVerifier()),
        "300 nested braces (math)": ("{" * 300 + "1" + "}" * 300, MathVerifier()),
        "100000! (math)": ("100000!", MathVerifier()),
        "power tower 2^2^2^2^2^2 (math)": ("2^{2^{2^{2^{2^{2}}}}}", MathVerifier()),
        "10^{10^{10}} (math)": ("10^{10^{10}}", MathVerifier()),
        "10^{10^{10}} (number)": ("10^{10^{10}}", NumberVerifier()),
        "9^9999 (number)": ("9^9999", NumberVerifier()),
        "a 5000-digit number (number)": ("9" * 5000, NumberVerifier()),
        "1e9999 (number)": ("1e9999", NumberVerifier()),
    }


def completion(name: str, unit: str, size: int) -> str:
    text = unit * (size // len(unit))
    if "in a block" in name:
        return "<answer>" + text + "</answer>"
    return text


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 20_000, 50_000, 100_000])
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # math-verify logs a timeout with the whole input
    MathVerifier()("1", {"answer": "1"})  # import and warm math-verify outside the timings
    header = f"{'completion (repeated)':34}" + "".join(f"{size:>10,}" for size in args.sizes)
    print(header + "   characters -> ms")
    print("-" * len(header))
    for name, (unit, fmt, verifier) in cases().items():
        if fmt is None:
            print(f"{name:34}" + "".join(f"{'n/a':>10}" for _ in args.sizes))
            continue
        scorer = Scorer(fmt, verifier)
        cells = []
        for size in args.sizes:
            text = completion(name, unit, size)
            ms = timed(lambda: (scorer(text, {"answer": "72"}), is_well_formatted(text, fmt)))
            cells.append(f"{ms:>10.1f}")
        print(f"{name:34}" + "".join(cells))
    print()
    print(f"{'short answer in <answer>':34}{'ms (worst of 3)':>16}  status")
    print("-" * 62)
    for name, (answer, verifier) in slow_answers().items():
        scorer, text = Scorer(TAGS, verifier), f"<think>.</think><answer>{answer}</answer>"
        ms = max(timed(lambda: scorer(text, {"answer": "1"})) for _ in range(3))
        print(f"{name:34}{ms:>16.1f}  {scorer(text, {'answer': '1'}).status}")


if __name__ == "__main__":
    main()
