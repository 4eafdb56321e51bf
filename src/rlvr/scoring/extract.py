"""Where the final answer stands in a completion, by the prompt's answer format; what it says is read by the
answer's type (a ``Reader``: :func:`rlvr.scoring.numbers.read_number` for numbers, :func:`read_text` for text).

- Answer markers (``<answer>...</answer>``): exactly one block, read whole (``block``). Several blocks, an
  empty one, or a stray marker: no answer. Without a block, the reply's last stated number only where the format
  says ``fallback_last_number``.
- ``gsm8k`` style: the ``####`` line, read as a ``statement`` (the answer starts it, talk may follow). A
  markdown header (``#### Step 1``) is not an answer line. Several answer lines must agree, unless a
  self-correction (``wait``, ``actually``) stands between the last two: then the last counts. Without ``####``:
  the last "answer is" / "final answer:" statement (a correction after it replaces it), else the boxed answers
  (they must agree), else the reply's last stated number (``fallback_last_number``).
- ``last_number`` style: the reply's last stated number (``reply``).

>>> extract_answer("so 3 + 4 = 7", AnswerFormat())
'7'
>>> extract_answer("<answer>$80,000</answer> (was 79,000)", AnswerFormat(answer_tag="answer"))
'80000'
>>> extract_answer("<answer>1</answer><answer>2</answer>", AnswerFormat(answer_tag="answer")) is None
True
>>> extract_answer("#### Step 1\\n3 + 4 = 7\\n#### 7 (the sum)", AnswerFormat(answer_style="gsm8k"))
'7'
>>> extract_answer("The answer is 40. Wait, it is 42.", AnswerFormat(answer_style="gsm8k"))
'42'
"""

from __future__ import annotations

import re
from typing import Callable

from rlvr.scoring.formats import AnswerFormat
from rlvr.scoring.numbers import (
    NUMBER,
    How,
    NotAStatement,
    UnparseableAnswer,
    canonical_number,
    last_number,
    numbers_in,
    read_number,
)
from rlvr.scoring.text import RETRACTION, after_retraction, clean, strip_lead_in

__all__ = ["HASHES", "Reader", "answer_block", "blocks", "canonical_number", "extract_answer", "final_answer",
           "is_well_formatted", "last_number", "numbers_in", "read_text", "unboxed"]

Reader = Callable[[str, How], str]  # (text, how it stands) -> the answer it states; raises UnparseableAnswer

# GSM8K's answer line. Its reference solutions end in "#### 72"; models also say "The answer is 72".
HASHES = "####"
_ANSWER_IS = re.compile(r"\b(?:final\s+)?answer\s*(?:is|was|would be|will be|=|:)\s*:?", re.IGNORECASE)
_BOXED = re.compile(r"\\boxed\s*\{")
_HEADING = re.compile(r"\s*(?:step\s+)?\d{1,2}\s*[.):]\s+[A-Za-z]", re.IGNORECASE)
_WRITTEN = re.compile(r".*?(?=\s+[A-Za-z]|\s*$)")  # an answer as written: up to the words after it
MAX_BOXES = 16  # boxed answers read in one reply (each scan is bounded, so nested boxes stay cheap)
MAX_ANSWER_LINES = 32  # '####' lines read in one reply; more is spraying, not answering
STATEMENT_CHARS = 300  # what is read of an answer line: the answer and what follows it closely


def blocks(text: str, start: str, end: str) -> list[str]:
    """Contents of every ``start ... end`` block (non-greedy, across lines), in one pass over ``text``.

    A block ends at the first ``end`` after its ``start``; the next block is looked for after that ``end``.
    When a ``start`` has no ``end`` after it, no later ``start`` can have one either, so the search stops
    there: thousands of unclosed markers cost one scan, not one scan each.

    >>> blocks("<a>1</a> <a>2</a> <a>3", "<a>", "</a>")
    ['1', '2']
    """
    found: list[str] = []
    pos = 0
    while (i := text.find(start, pos)) >= 0:
        j = text.find(end, i + len(start))
        if j < 0:
            break
        found.append(text[i + len(start) : j])
        pos = j + len(end)
    return found


def _line(text: str, pos: int) -> str:
    """The rest of the line from ``pos``, at most :data:`STATEMENT_CHARS` of it (an answer starts its line)."""
    end = text.find("\n", pos, pos + STATEMENT_CHARS)
    return text[pos : end if end >= 0 else pos + STATEMENT_CHARS]


def _markers(text: str, marker: str) -> list[int]:
    """Positions just after every occurrence of ``marker`` (one scan)."""
    found, pos = [], 0
    while (i := text.find(marker, pos)) >= 0:
        pos = i + len(marker)
        found.append(pos)
    return found


def _statements(text: str, starts: list[int], read: Reader) -> list[tuple[int, str | None, Exception | None]]:
    """``(position, answer or None, why not)`` of each marker that is followed by an answer statement."""
    out: list[tuple[int, str | None, Exception | None]] = []
    for pos in starts:
        try:
            out.append((pos, read(_line(text, pos), "statement"), None))
        except NotAStatement:
            continue
        except UnparseableAnswer as e:
            out.append((pos, None, e))
    return out


def _gsm8k(text: str, read: Reader, fallback: bool) -> tuple[str, int | None]:
    """``(answer, position of its statement or None)`` by the GSM8K rule (the module docstring)."""
    starts = _markers(text, HASHES)
    if len(starts) > MAX_ANSWER_LINES:
        raise UnparseableAnswer(f"{len(starts)} '####' markers")
    hashes = _statements(text, starts, read)
    if len({v for _, v, _ in hashes}) > 1:  # "#### 1. Compute the total" is a heading, not an answer line
        hashes = [h for h in hashes if not _HEADING.match(_line(text, h[0]))]
    if hashes:
        values = {v for _, v, _ in hashes}
        last_pos, last, why = hashes[-1]
        if len(values) == 1 or (len(hashes) > 1 and RETRACTION.search(text, hashes[-2][0], last_pos)):
            if last is None:
                raise why  # type: ignore[misc]
            return last, last_pos
        raise UnparseableAnswer(f"{len(hashes)} '####' answer lines that differ")
    said = None
    for m in reversed(list(_ANSWER_IS.finditer(text))[-MAX_ANSWER_LINES:]):  # the last one counts: from the end
        said = _statements(text, [m.end()], read) or None
        if said:
            break
    if said:
        pos, value, why = said[-1]
        later = None
        for later in RETRACTION.finditer(text, pos):
            pass
        if later is not None and NUMBER.search(clean(text[later.end() :])):
            return read(text[later.end() :], "reply"), None  # "the answer is 40 ... wait, it is 42"
        if value is None:
            raise why  # type: ignore[misc]
        return value, pos
    boxed = []
    for m in _BOXED.finditer(text):
        content = _braced(text, m.end())
        if content is None or len(boxed) == MAX_BOXES:
            break  # an unclosed box: no later one closes either
        boxed.append(content)
    if boxed:
        values = {read(c, "block") for c in boxed}
        if len(values) > 1:
            raise UnparseableAnswer(f"{len(boxed)} boxed answers that differ")
        return values.pop(), None
    if not fallback:
        raise UnparseableAnswer("no '####' answer line and no 'answer is'")
    return read(text, "reply"), None


def final_answer(text: str, fmt: AnswerFormat, read: Reader) -> str:
    """The answer the completion states, as ``read`` reads it by type; raises :class:`UnparseableAnswer` (why)
    when it states none (see the module docstring for where the answer is looked for)."""
    markers = fmt.answer_markers
    if markers is None:
        if fmt.answer_style == "gsm8k":
            return _gsm8k(text, read, fmt.fallback_last_number)[0]
        return read(text, "reply")
    found = blocks(text, *markers)
    if len(found) > 1:
        raise UnparseableAnswer(f"{len(found)} answer blocks")
    if len(found) == 1:
        if not found[0].strip():
            raise UnparseableAnswer("an empty answer block")
        return read(found[0], "block")
    if markers[0] in text or markers[1] in text:
        raise UnparseableAnswer("an unclosed or stray answer marker")
    if not fmt.fallback_last_number:
        raise UnparseableAnswer("no answer block")
    return read(text, "reply")


def number_reader(fmt: AnswerFormat) -> Reader:
    """The reader of numeric answers in ``fmt`` (its bracket convention)."""
    return lambda text, how: read_number(text, how, fmt.parentheses_negate)


def extract_answer(text: str, fmt: AnswerFormat, read: Reader | None = None) -> str | None:
    """The answer a completion states (a canonical number unless another ``read`` is given), or None when it
    states none (``unparseable``)."""
    try:
        return final_answer(text, fmt, read or number_reader(fmt))
    except UnparseableAnswer:
        return None


def read_text(text: str, how: How, plain_latex: bool = True) -> str:
    """A non-numeric answer as a grader reads it: cleaned (markdown, ``\\boxed{}``, ``$...$``, invisible
    characters), after its last self-correction, without a lead-in (``The answer is``) or a final period. A
    ``statement`` is its first line; a ``reply`` its last non-empty line. ``plain_latex=False`` keeps LaTeX
    commands for an expression parser.

    >>> [read_text(t, "block") for t in ["**Paris**", "The answer is Paris.", "\\\\boxed{\\\\text{Paris}}"]]
    ['Paris', 'Paris', 'Paris']
    >>> read_text("Let me think.\\nThe capital is Lyon, wait, Paris.\\n", "reply")
    'Paris'
    """
    if how == "statement":
        text = text.split("\n", 1)[0]
    elif how == "reply":
        lines = [line for line in text.split("\n") if line.strip()]
        text = lines[-1] if lines else ""
    s = strip_lead_in(after_retraction(clean(text, plain_latex))).rstrip(".").strip()
    if not s:
        raise UnparseableAnswer("no answer")
    return s


def answer_block(text: str, fmt: AnswerFormat) -> str | None:
    """The answer as written: the raw content of the one answer block, or None (no markers, no block, or
    several); in the ``gsm8k`` style, the rest of the answer line that decided (without a final period).

    >>> answer_block("<answer> 42 </answer>", AnswerFormat(answer_tag="answer"))
    ' 42 '
    >>> answer_block("so\\n#### $1,234", AnswerFormat(answer_style="gsm8k"))
    '$1,234'
    """
    markers = fmt.answer_markers
    if markers is None:
        if fmt.answer_style != "gsm8k":
            return None
        try:
            _, pos = _gsm8k(text, number_reader(fmt), False)
        except UnparseableAnswer:
            return None
        if pos is None:
            return None
        return _WRITTEN.match(_line(text, pos).strip()).group().rstrip(".").strip()
    found = blocks(text, *markers)
    return found[0] if len(found) == 1 else None


def _braced(text: str, start: int) -> str | None:
    """The text from ``start`` up to the brace that closes the one opened just before it, or None."""
    depth = 1
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start:i]
    return None


def unboxed(text: str) -> str:
    r"""The content of ``\boxed{...}`` when that is the whole of ``text`` (optionally inside ``$...$``), its
    braces balanced; otherwise ``text`` unchanged. One pass: the closing brace is found by counting depth.

    >>> [unboxed(t) for t in ["\\boxed{72}", "$\\boxed{\\frac{1}{2}}$", "\\boxed{1} + \\boxed{2}", "\\boxed{7"]]
    ['72', '\\frac{1}{2}', '\\boxed{1} + \\boxed{2}', '\\boxed{7']
    """
    m = re.match(r"\$?\\boxed\s*\{", text)
    inner = _braced(text, m.end()) if m else None
    if inner is None or text[m.end() + len(inner) + 1 :].strip() not in ("", "$"):
        return text
    return inner.strip()


def is_well_formatted(text: str, fmt: AnswerFormat) -> bool:
    """Exactly one of each configured block (no repeats, no stray markers), a non-blank reasoning block
    before a non-blank answer block, and nothing but whitespace after the answer block. Without markers: a
    stated number in the reply; in the ``gsm8k`` style, one ``####`` with a number right after it, ending the
    reply (a period may follow).
    """
    answer = fmt.answer_markers
    if answer is None:
        if fmt.answer_style == "gsm8k":
            if text.count(HASHES) != 1:
                return False
            rest = text[text.index(HASHES) + len(HASHES) :].strip()
            return canonical_number(rest, fmt.parentheses_negate) is not None
        return extract_answer(text, fmt) is not None
    for markers in filter(None, (fmt.reasoning_markers, answer)):
        start, end = markers
        if text.count(start) != 1 or text.count(end) != 1 or len(blocks(text, start, end)) != 1:
            return False
    if not blocks(text, *answer)[0].strip():
        return False
    if fmt.reasoning_markers is not None:
        r_start, r_end = fmt.reasoning_markers
        if not blocks(text, r_start, r_end)[0].strip() or text.index(r_end) > text.index(answer[0]):
            return False  # an empty reasoning block, or the answer block inside or before it
    return text.rstrip().endswith(answer[1])
