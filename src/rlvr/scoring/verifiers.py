"""Verifiers: typed answers, read and judged the way a careful grader would.

Each data source declares what kind of answer its rows have (:data:`AnswerType`), and its verifier knows how to
read that kind and how to compare it:

========== ======================================= =================================================
type       reads                                   equal when
========== ======================================= =================================================
integer    one whole number (must be an integer)   the same integer
number     one whole number (fractions, ``1e4``)   within ``rel_tol`` (and rounding, percent: FinQA)
expression one math expression (never a sentence)  math-verify finds them equivalent
string     the answer text                         the same text, case and spacing aside
choice     one option letter (``B``, ``(B)``)      the same letter
list       items separated by commas               the same items (in order, unless ``ordered=false``)
task       by the row's gold (number, else text)   the task's own scorer says 1 (reasoning-gym)
========== ======================================= =================================================

A verifier has three parts: ``read(text, how, row, fmt)`` turns the text where the answer stands into the
answer it states (or raises :class:`~rlvr.scoring.numbers.UnparseableAnswer`: no answer, two answers, a
sentence where an expression is asked); ``gold(raw)`` checks a gold answer once, at load time (``ValueError``:
the row is refused and counted); ``__call__(answer, row)`` judges a read answer, in [0, 1] (``ValueError``
there means the row's gold is unusable: ``bad_gold``).

A non-numeric answer is never replaced by a number found in it: ``0x1f``, ``x+2`` and ``not 7`` state no
number. Matching is always on the whole answer, never on a substring.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from fractions import Fraction
from typing import Any, Literal

from rlvr.scoring.extract import read_text
from rlvr.scoring.formats import AnswerFormat
from rlvr.scoring.numbers import (
    How,
    UnparseableAnswer,
    canonical_number,
    compare_numbers,
    format_value,
    read_number,
    to_fraction,
    written_number,
)
from rlvr.scoring.text import HEDGE, clean

AnswerType = Literal["integer", "number", "expression", "string", "choice", "list", "task"]
ANSWER_TYPES: tuple[str, ...] = AnswerType.__args__  # type: ignore[attr-defined]


class NumberVerifier:
    """Numbers read whole (see :mod:`rlvr.scoring.numbers`) and compared exactly.

    Args:
        rel_tol: relative tolerance for equality.
        rounding: also require agreement at the coarser of the two precisions (see ``compare_numbers``).
        percent: accept the prediction read as a percentage (x100 or /100 of the gold).
        integer: the answers are integers (``answer_type`` ``integer``): a gold that is not one is refused.

    >>> v = NumberVerifier()
    >>> [v(a, {"answer": "80000"}) for a in ["80000", "80000.0", "8000", "80000.5"]]
    [1.0, 1.0, 0.0, 0.0]
    """

    def __init__(self, rel_tol: float = 1e-6, rounding: bool = False, percent: bool = False, integer: bool = False):
        self.rel_tol, self.rounding, self.percent, self.integer = rel_tol, rounding, percent, integer

    @property
    def answer_type(self) -> AnswerType:
        return "integer" if self.integer else "number"

    def read(self, text: str, how: How, row: dict[str, Any], fmt: AnswerFormat) -> str:
        return read_number(text, how, fmt.parentheses_negate)

    def gold(self, raw: str) -> str:
        """The gold as a canonical number; ValueError when it is not exactly one (an integer if ``integer``)."""
        number = canonical_number(raw)
        if number is None:
            raise ValueError(f"not a number: {raw!r}")
        if self.integer and to_fraction(number).denominator != 1:
            raise ValueError(f"not an integer: {raw!r}")
        return number

    def __call__(self, answer: str, row: dict[str, Any]) -> float:
        equal, _ = compare_numbers(answer, row["answer"], rel_tol=self.rel_tol, rounding=self.rounding,
                                   percent=self.percent)
        return 1.0 if equal else 0.0


def normalise_text(text: str) -> str:
    """Case-folded, whitespace-collapsed, without surrounding quotes or a trailing period."""
    return " ".join(str(text).casefold().split()).strip("\"'`").rstrip(".").strip()


class TextVerifier:
    """Exact match of the whole answer after :func:`normalise_text` (names, words, short strings).

    >>> v = TextVerifier()
    >>> [v(a, {"answer": "Paris"}) for a in ["paris", " Paris. ", "Par", "Paris, France"]]
    [1.0, 1.0, 0.0, 0.0]
    """

    answer_type: AnswerType = "string"

    def read(self, text: str, how: How, row: dict[str, Any], fmt: AnswerFormat) -> str:
        return read_text(text, how)

    def gold(self, raw: str) -> str:
        if not normalise_text(raw):
            raise ValueError("an empty answer")
        return str(raw).strip()

    def __call__(self, answer: str, row: dict[str, Any]) -> float:
        gold = normalise_text(row["answer"])
        if not gold:
            raise ValueError(f"gold answer {row['answer']!r} is empty")
        pred = normalise_text(answer)
        if not pred:
            raise UnparseableAnswer("empty answer")
        return 1.0 if pred == gold else 0.0


class ChoiceVerifier:
    """A multiple-choice answer: exactly one option letter (``B``, ``(B)``, ``B)``, ``Option B``, ``B. Paris``).
    Two letters offered together (``A or B``, ``A, B, C, D``) are no answer.

    Args:
        choices: the option letters.

    >>> v = ChoiceVerifier()
    >>> fmt = AnswerFormat(answer_tag="answer")
    >>> [v.read(t, "block", {}, fmt) for t in ["(B)", "The answer is B. Paris", "option c"]]
    ['B', 'B', 'C']
    >>> v.read("A or B", "block", {}, fmt)
    Traceback (most recent call last):
    ...
    rlvr.scoring.numbers.UnparseableAnswer: 'A or B' offers several options
    """

    answer_type: AnswerType = "choice"

    def __init__(self, choices: str = "ABCDE"):
        self.choices = choices.upper()
        letters = re.escape(self.choices)
        self._first = re.compile(rf"^(?:(?:option|choice)\s+)?\(?([{letters}])\)?(?=$|[\s.):,])", re.IGNORECASE)
        self._other = re.compile(rf"(?:^|[\s,/&(])\(?([{letters}])\)?(?=$|[\s.),/&])")
        self._next = re.compile(rf"^\W*(?:,|/|&|\band\b|\bor\b)\s*\(?[{letters}]\)?(?![A-Za-z])")

    def read(self, text: str, how: How, row: dict[str, Any], fmt: AnswerFormat) -> str:
        s = read_text(text, how)
        m = self._first.match(s)
        if m is None:
            raise UnparseableAnswer(f"{s[:60]!r} names no option ({', '.join(self.choices)})")
        letter = m[1].upper()
        rest = s[m.end() :]
        others = {o.upper() for o in self._other.findall(rest)} - {letter}
        if others and (HEDGE.search(s) or self._next.match(rest)):
            raise UnparseableAnswer(f"{s[:60]!r} offers several options")
        return letter

    def gold(self, raw: str) -> str:
        s = clean(str(raw)).strip("() .").upper()
        if len(s) != 1 or s not in self.choices:
            raise ValueError(f"not one of the options {self.choices}: {raw!r}")
        return s

    def __call__(self, answer: str, row: dict[str, Any]) -> float:
        return 1.0 if answer.upper() == self.gold(row["answer"]) else 0.0


class ListVerifier:
    """A list answer: items separated by commas or semicolons (``and`` before the last), optionally in
    brackets; each item a number (read whole) or text. In a list the comma separates items, so ``1,234`` is
    two items here. An either-or (``[1, 2] or [2, 1]``) is no answer.

    Args:
        ordered: the order of the items matters.

    >>> v = ListVerifier()
    >>> [v(v.read(t, "block", {}, AnswerFormat()), {"answer": "2, 3, 5"}) for t in ["[2, 3, 5]", "2, 3 and 5.0",
    ...                                                                               "5, 3, 2"]]
    [1.0, 1.0, 0.0]
    """

    answer_type: AnswerType = "list"

    def __init__(self, ordered: bool = True):
        self.ordered = ordered

    def _items(self, s: str) -> list[str]:
        s = s.strip()
        if len(s) >= 2 and s[0] + s[-1] in ("[]", "()", "{}"):
            s = s[1:-1]
        items = [i.strip() for i in re.split(r"\s*(?:[,;]|\band\b)\s*", s)]
        items = [canonical_number(i) or normalise_text(i) for i in items if i.strip()]
        return items if self.ordered else sorted(items)

    def read(self, text: str, how: How, row: dict[str, Any], fmt: AnswerFormat) -> str:
        s = read_text(text, how)
        if re.search(r"\b(?:or|either|maybe|perhaps)\b", s, re.IGNORECASE):
            raise UnparseableAnswer(f"{s[:60]!r} offers several lists")
        items = self._items(s)
        if not items:
            raise UnparseableAnswer("an empty list")
        return ", ".join(items)

    def gold(self, raw: str) -> str:
        items = self._items(clean(str(raw)))
        if not items:
            raise ValueError(f"an empty list: {raw!r}")
        return ", ".join(items)

    def __call__(self, answer: str, row: dict[str, Any]) -> float:
        return 1.0 if self._items(answer) == self._items(clean(str(row["answer"]))) else 0.0


# --- expressions -------------------------------------------------------------------------------------------

# Words an expression may contain (LaTeX commands are stripped first); any other word makes it a sentence.
_MATH_WORDS = frozenset(
    "sqrt frac dfrac tfrac pi sin cos tan sec csc cot arcsin arccos arctan sinh cosh tanh log ln lg exp infty inf "
    "cdot times div pm mp le ge leq geq neq ne lt gt alpha beta gamma delta epsilon theta lambda mu sigma phi omega "
    "left right cup cap in mathbb circ deg degree binom choose mod gcd lcm max min ldots dots cdots emptyset "
    "varnothing undefined none".split()
)
MAX_EXPRESSION_CHARS = 400  # longer "answers" are not one expression a grader reads; refused before parsing
MAX_NESTING = 12  # brackets/braces deep
MAX_POWERS = 6  # '^' signs
MAX_EXPONENT = 1000  # |exponent| of a power with a plain number exponent
MAX_FACTORIAL = 100  # n! with a plain number n


def _nesting(text: str) -> int:
    depth = deepest = 0
    for c in text:
        if c in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in ")]}":
            depth -= 1
    return deepest


def math_text(text: str) -> str:
    r"""A math expression as math-verify should see it, or :class:`UnparseableAnswer`: a sentence (a word that
    is no math word), or an input outside the bounds that keep every parse well under 0.1 s (length, nesting,
    powers, exponent and factorial size).

    >>> math_text("$\\frac{1}{2}$"), math_text("x^2 + 1")
    ('\\frac{1}{2}', 'x^2 + 1')
    >>> math_text("the answer is 7 or 8")
    Traceback (most recent call last):
    ...
    rlvr.scoring.numbers.UnparseableAnswer: 'the answer is 7 or 8' is a sentence, not an expression
    """
    s = clean(text, plain_latex=False).rstrip(".").strip()
    if not s:
        raise UnparseableAnswer("no expression")
    if len(s) > MAX_EXPRESSION_CHARS:
        raise UnparseableAnswer(f"an expression of {len(s)} characters (at most {MAX_EXPRESSION_CHARS})")
    words = re.findall(r"[A-Za-z]{2,}", re.sub(r"\\[A-Za-z]+", " ", s))
    if any(w.lower() not in _MATH_WORDS for w in words):
        raise UnparseableAnswer(f"{s[:60]!r} is a sentence, not an expression")
    if _nesting(s) > MAX_NESTING or s.count("^") > MAX_POWERS or not braces_balance(s):
        raise UnparseableAnswer(f"{s[:60]!r} nests too deep to be one answer")
    exponents = re.findall(r"\^\s*\{?\s*-?(\d+)", s)
    factorials = re.findall(r"(\d+)\s*!", s)
    if any(len(e) > 4 or int(e) > MAX_EXPONENT for e in exponents) or re.search(r"\^\s*\{[^}]*\^", s):
        raise UnparseableAnswer(f"{s[:60]!r} has an exponent too large to evaluate")
    if any(len(f) > 4 or int(f) > MAX_FACTORIAL for f in factorials) or re.search(r"[)}\]]\s*!", s):
        raise UnparseableAnswer(f"{s[:60]!r} has a factorial too large to evaluate")
    return s


class MathVerifier:
    """Symbolic equivalence through ``math-verify`` (``1/2`` = ``0.5`` = ``\\frac{1}{2}``, ``(x+1)^2`` =
    ``x^2+2x+1``, ``\\sqrt{8}`` = ``2\\sqrt{2}``). Only an expression reaches math-verify (see
    :func:`math_text`), always as LaTeX between ``$...$``, so a bare gold and a ``$``-wrapped one are the same
    gold, and a sentence with a number in it is no answer.

    >>> v = MathVerifier()
    >>> [v(a, {"answer": "\\\\frac{1}{2}"}) for a in ["0.5", "1/2", "2/3"]]
    [1.0, 1.0, 0.0]
    """

    answer_type: AnswerType = "expression"

    def __init__(self, float_rounding: int = 6):
        self.float_rounding = float_rounding

    def read(self, text: str, how: How, row: dict[str, Any], fmt: AnswerFormat) -> str:
        return math_text(read_text(text, how, plain_latex=False))

    def gold(self, raw: str) -> str:
        _parsed_gold(str(raw))  # ValueError when it is no expression math-verify can parse (cached per gold)
        return math_text(str(raw))

    def __call__(self, answer: str, row: dict[str, Any]) -> float:
        from math_verify import verify

        gold = _parsed_gold(str(row["answer"]))
        pred = math_parse(math_text(answer))
        if not pred:
            raise UnparseableAnswer(f"{answer!r} cannot be parsed by math-verify")
        return 1.0 if verify(gold, pred, float_rounding=self.float_rounding, timeout_seconds=_timeout()) else 0.0


@functools.lru_cache(maxsize=4096)
def _parsed_gold(raw: str) -> list:
    try:
        parsed = math_parse(math_text(raw))
    except UnparseableAnswer as e:
        raise ValueError(f"gold answer {raw!r}: {e}") from None
    if not parsed:
        raise ValueError(f"gold answer {raw!r} cannot be parsed by math-verify")
    return parsed


def _timeout() -> int | None:
    """math-verify times out with signal.alarm, which only works in the main thread; elsewhere the reward
    suite's own timeout applies (and :func:`math_text`'s bounds keep parses short)."""
    return 5 if threading.current_thread() is threading.main_thread() else None


def math_parse(text: str) -> list:
    """math-verify's parse of ``text`` as LaTeX math (``$...$``); ``[]`` when it is no expression (math-verify's
    fallback of the raw string does not count: words are not maths). Text whose braces do not balance gives
    ``[]`` without reaching math-verify."""
    from math_verify import LatexExtractionConfig, parse

    text = text.strip().strip("$").strip()
    if not text or not braces_balance(text):
        return []
    parsed = parse(f"${text}$", extraction_config=[LatexExtractionConfig()], parsing_timeout=_timeout())
    return parsed if any(not isinstance(p, str) for p in parsed) else []


def braces_balance(text: str) -> bool:
    r"""Every ``{`` closed by a later ``}``, escaped braces (``\{``, ``\}``: literal in LaTeX) aside.

    >>> [braces_balance(t) for t in ["\frac{1}{2}", "\{1, 2\}", "\boxed{\boxed{", "}{"]]
    [True, True, False, False]
    """
    depth, escaped = 0, False
    for c in text:
        if escaped:
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


# --- data-specific ------------------------------------------------------------------------------------------

YES_NO = ("yes", "no")
_PERCENT_QUESTION = re.compile(r"%|\bpercent(?:age)?s?\b|\bper cent\b", re.IGNORECASE)


class FinQAVerifier:
    """FinQA's answers: yes/no by text; numbers within ``rel_tol`` and equal at the coarser precision, with
    accounting formats canonicalised (``(12)`` is -12).

    Only where the *question* asks for a percentage (``percent``, ``percentage``, ``%`` in the question
    itself) may the prediction be in the other scale, and only in one direction, set by the gold (see
    :meth:`scales`): a gold computed as a fraction (``0.14286``) also accepts the prediction in percent points
    (``14.3`` or ``14.3%``); a gold in percent points also accepts the fraction. A ``%`` in the report's text
    or table does not count, a factor of 100 the other way (``0.00143`` for ``0.14286``) is wrong, and
    everywhere else a factor of 100 is a wrong answer.

    The question is the row's own (``entry.question``, which :class:`~rlvr.data.FinQAData` keeps apart from
    the report it puts in the prompt), else the row's ``question``.

    >>> v = FinQAVerifier()
    >>> entry = '{"question": "what percentage of revenue was services?", "gold_raw": 0.14286}'
    >>> share = {"question": "(report) Question: what percentage of revenue was services?", "answer": "0.14286",
    ...          "entry": entry}
    >>> [v(a, share) for a in ["0.14286", "14.3", "14.29", "14.2", "0.2", "0.00143"]]
    [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    >>> [v(a, {"question": "how many stores opened?", "answer": "5"}) for a in ["5", "500", "0.05"]]
    [1.0, 0.0, 0.0]
    """

    answer_type: AnswerType = "number"

    def __init__(self, rel_tol: float = 0.01):
        self.number = NumberVerifier(rel_tol=rel_tol, rounding=True)

    def read(self, text: str, how: How, row: dict[str, Any], fmt: AnswerFormat) -> str:
        if str(row["answer"]).casefold() in YES_NO:
            s = read_text(text, how)
            m = re.match(r"(yes|no)\b", s, re.IGNORECASE)  # "Yes, revenue grew": yes, unless it says both
            if m and not re.search(r"\b(?:yes|no)\b", s[m.end() :], re.IGNORECASE) and not HEDGE.search(s):
                return m[1].casefold()
            return s
        return read_number(text, how, fmt.parentheses_negate)

    def gold(self, raw: str) -> str:
        if str(raw).strip().casefold() in YES_NO:
            return str(raw).strip().casefold()
        return self.number.gold(raw)

    @staticmethod
    def _entry(row: dict[str, Any]) -> dict[str, Any]:
        return json.loads(row["entry"]) if isinstance(row.get("entry"), str) else {}

    def scales(self, row: dict[str, Any]) -> tuple[Fraction, ...]:
        """The factors the prediction may be read with: ``(1,)``; with a percentage question, also the one from
        percent points to the gold's scale: 1/100 when the gold is a fraction, 100 when it is in percent points
        (its raw form has ``%``, or its FinQA program multiplies by ``const_100``). A row that does not say how
        its gold was written (no ``entry``) allows both."""
        entry = self._entry(row)
        if not _PERCENT_QUESTION.search(str(entry.get("question", row.get("question", "")))):
            return (Fraction(1),)
        if not entry:
            return (Fraction(1), Fraction(1, 100), Fraction(100))
        points = "%" in str(entry.get("gold_raw", "")) or "const_100" in str(entry.get("program", ""))
        return (Fraction(1), Fraction(100) if points else Fraction(1, 100))

    def __call__(self, answer: str, row: dict[str, Any]) -> float:
        if str(row["answer"]).casefold() in YES_NO:
            return TextVerifier()(answer, row)
        value = to_fraction(answer)
        if value is None:
            raise UnparseableAnswer(f"{answer!r} is not a number")
        readings = [format_value(value * scale) for scale in self.scales(row)]
        return max(self.number(reading, row) for reading in readings)


class ReasoningGymVerifier:
    """reasoning-gym's ``score_answer`` for the row's source task (the entry travels as JSON in ``entry``).

    The answer is read by the row's gold: where the gold is a number, the prediction must state one number
    (a hedge, ``0x1f`` or ``x+2`` states none) and the task's scorer gets it as written (without currency or
    thousands separators); otherwise it gets the answer text, cleaned (markdown, ``\\boxed{}``), never a number
    pulled out of it. The task's partial credit (its own substring rule, a trivially valid answer) comes back
    as a value below 1, which evaluation counts wrong and correctness rewards pay only where they opt in.

    In a mixture each row is scored by its own task's verifier (``metadata.source_dataset``). An exception
    from a task's verifier is about the answer it was given (the gold is generated), so the answer is
    ``unparseable``; an ``entry`` that is not valid JSON is a data problem (``bad_gold``).
    """

    answer_type: AnswerType = "task"

    def read(self, text: str, how: How, row: dict[str, Any], fmt: AnswerFormat) -> str:
        if canonical_number(str(row["answer"])) is not None:
            return written_number(text, how, fmt.parentheses_negate)
        return read_text(text, how)

    def gold(self, raw: str) -> str:
        return str(raw)

    def check_row(self, row: dict[str, Any]) -> None:
        """ValueError unless the task's own scorer gives the row's gold full marks (a task with no single
        gold, ``answer: null``, is the scorer's to judge)."""
        entry = _entry(row)
        if entry.get("answer") is None:
            return
        score = self(str(entry["answer"]), row)
        if score < 1.0:
            raise ValueError(f"the task's scorer gives its own gold {entry['answer']!r} {score:g}")

    def __call__(self, answer: str, row: dict[str, Any]) -> float:
        entry = _entry(row)
        source = entry.get("metadata", {}).get("source_dataset") or row["task"]
        score = _score_fn(source)
        try:
            return float(score(answer, entry))
        except Exception as e:  # noqa: BLE001 - the task's own parser choked on the answer
            raise UnparseableAnswer(f"{source} could not score {answer!r}: {type(e).__name__}: {e}") from None

    def __reduce__(self) -> tuple:
        """Unpickled (in a reward worker process) with reasoning-gym imported then, when the worker starts: its
        import takes over a second, which would otherwise count against the worker's first timed call."""
        return _loaded_reasoning_gym_verifier, ()


def _entry(row: dict[str, Any]) -> dict[str, Any]:
    try:
        return json.loads(row["entry"])
    except (TypeError, KeyError, json.JSONDecodeError) as e:
        raise ValueError(f"row has no reasoning-gym entry to score against: {e}") from None


def _loaded_reasoning_gym_verifier() -> ReasoningGymVerifier:
    import reasoning_gym  # noqa: F401

    return ReasoningGymVerifier()


@functools.lru_cache(maxsize=None)
def _score_fn(task: str) -> Any:
    """One scorer per task (building a reasoning-gym dataset to get at its scorer can be slow)."""
    import reasoning_gym

    return reasoning_gym.get_score_answer_fn(task)
