"""Answer extraction and number normalisation: the one parser used by rewards and evaluation alike.

>>> extract_answer("so 3 + 4 = 7", AnswerFormat())
'7'
>>> extract_answer("<answer>$80,000</answer> (was 79,000)", AnswerFormat(answer_tag="answer"))
'80000'
>>> extract_answer("<answer>1</answer><answer>2</answer>", AnswerFormat(answer_tag="answer")) is None
True
>>> extract_answer("3 + 4 = 7\\n#### 7 (the sum), checked with 2 more", AnswerFormat(answer_style="gsm8k"))
'7'
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation, localcontext

from rlvr.scoring.formats import AnswerFormat

# A number as people write it: optional sign or accounting parentheses, optional currency, thousands
# separators only in groups of three, optional decimals, optional scientific exponent (2e5, 1.5E-3) or
# superscript power (10², 2⁻³), optional percent. The exponent belongs to the number: reading "2e5" as 2 or "10²"
# as 10 would score a right answer wrong (and a wrong one right).
_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
_NUMBER = re.compile(
    r"(?<![\w.])(?P<neg>[-\u2212])?\+?\s?[$€£¥₹]?\s?(?P<neg2>[-\u2212])?(?P<paren>\()?\s?[$€£¥₹]?"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?!\d)"
    r"(?:[eE](?P<exp>[-+]?\d{1,3})(?![\w.])|(?P<sup>⁻?[⁰¹²³⁴⁵⁶⁷⁸⁹]{1,2}))?"
    r"(?P<close>\))?\s?(?P<pct>%)?"
)


def _ascii_digits(text: str) -> str:
    """Unicode decimal digits (Arabic-Indic, full-width, ...) to ASCII so they parse like any other number.

    Only true decimal digits: a superscript (``10²``) is not a digit of the number before it.
    """
    if text.isascii():
        return text
    return "".join(str(unicodedata.decimal(c)) if c.isdecimal() and not c.isascii() else c for c in text)


def canonical_number(text: str, negative_parentheses: bool = True) -> str | None:
    """The number a string denotes, canonicalised: ``"$1,234.00" -> "1234"``, ``"(12)" -> "-12"``.

    Returns None when the string is not exactly one number (after stripping spaces and a trailing period).
    A percent sign is dropped (``"12.5%" -> "12.5"``); numbers of any size are kept exactly. A number in
    brackets is negative (accounting) unless ``negative_parentheses`` is false: then ``"(12)" -> "12"``.

    >>> [canonical_number(s) for s in ["18.0", "-5", "$80,000", "(12)", "12.5%", "+3", "$-5", "1e5", "seven"]]
    ['18', '-5', '80000', '-12', '12.5', '3', '-5', '100000', None]
    >>> [canonical_number(s) for s in ["2e5", "1.5E-3", "10²", "2⁻¹"]]
    ['200000', '0.0015', '100', '0.5']
    """
    s = _ascii_digits(text).strip().rstrip(".").strip()
    m = _NUMBER.fullmatch(s)
    if not m or (m.group("paren") is None) != (m.group("close") is None):
        return None
    return _format(m, negative_parentheses)


def _format(m: re.Match, negative_parentheses: bool = True) -> str | None:
    digits = m.group("num").replace(",", "")
    with localcontext() as ctx:
        ctx.prec = len(digits) + 2  # exact for any length: a 40-digit answer must not overflow the default 28
        try:
            value = Decimal(digits)
            if m.group("exp"):
                ctx.prec += 4 + abs(int(m.group("exp")))
                value = value.scaleb(int(m.group("exp")))
            elif m.group("sup"):
                power = int(m.group("sup").translate(_SUPERSCRIPTS))
                ctx.prec = max(ctx.prec, 4 + len(digits) * abs(power))
                value = value ** power
        except (InvalidOperation, ZeroDivisionError, OverflowError):
            return None
        if value == 0:
            return "0"
        if m.group("neg") or m.group("neg2") or (m.group("paren") and negative_parentheses):
            value = -value
        if value == value.to_integral_value():
            return format(value.to_integral_value(), "f")
        return format(value.normalize(), "f")


def _read(m: re.Match, negative_parentheses: bool) -> str | None:
    """The canonical value of one match of ``_NUMBER`` inside a longer text."""
    if (m.group("paren") is None) != (m.group("close") is None):
        m = _NUMBER.fullmatch(m.group("num"))  # a stray bracket is not a sign
    return _format(m, negative_parentheses) if m else None


def numbers_in(text: str, negative_parentheses: bool = True) -> list[str]:
    """Every number in ``text``, canonicalised, in order of appearance."""
    return [v for m in _NUMBER.finditer(_ascii_digits(text)) if (v := _read(m, negative_parentheses)) is not None]


def last_number(text: str, negative_parentheses: bool = True) -> str | None:
    nums = numbers_in(text, negative_parentheses)
    return nums[-1] if nums else None


# GSM8K's answer line. Its reference solutions end in "#### 72"; models also say "The answer is 72".
HASHES = "####"
_ANSWER_IS = re.compile(r"\banswer is\b", flags=re.IGNORECASE)
_LEAD = re.compile(r"[ \t:]*")  # what may stand between "####" (or "answer is") and its number


def _number_after(text: str, pos: int) -> re.Match | None:
    """The number written right after ``pos`` (spaces or a colon between), as ``_NUMBER`` matches it."""
    return _NUMBER.match(text, _LEAD.match(text, pos).end())


def _gsm8k_answer(text: str) -> tuple[re.Match | None, bool]:
    """``(the number the GSM8K rule reads, whether the rule decided)`` in ``text`` (digits already ASCII).

    The rule, in order:

    1. ``####``: the number right after it (spaces, a colon, a sign or a currency sign between) is the answer,
       whatever follows: in ``#### 72 and then more talk 13`` it is 72. Only one ``####`` may be written:
       several are ambiguous (spraying answers, as with several answer blocks) and give no answer, and so
       does a ``####`` with no number right after it. Either way the rule has decided: no fallback.
    2. Without ``####``: the number right after the last "answer is" (any case: "The answer is 72", "the
       final answer is: $72") that has one.
    3. Neither: undecided (the caller falls back to the last number, if the format says so).

    One scan for each marker (``str.count``, one regex pass), so the time grows with the text's length.
    """
    hashes = text.count(HASHES)
    if hashes:
        return (_number_after(text, text.index(HASHES) + len(HASHES)) if hashes == 1 else None), True
    last = None
    for said in _ANSWER_IS.finditer(text):
        last = _number_after(text, said.end()) or last
    return last, last is not None


def blocks(text: str, start: str, end: str) -> list[str]:
    """Contents of every ``start ... end`` block (non-greedy, across lines), in one pass over ``text``.

    A block ends at the first ``end`` after its ``start``; the next block is looked for after that ``end``.
    When a ``start`` has no ``end`` after it, no later ``start`` can have one either, so the search stops
    there: thousands of unclosed markers cost one scan, not one scan each (a lazy regex rescans the rest of
    the text from every marker, which is quadratic).

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


def answer_block(text: str, fmt: AnswerFormat) -> str | None:
    """The raw content of the one answer block, or None (no markers configured, no block, or several). In
    the ``gsm8k`` style: the answer as written after ``####`` (or "answer is"), or None.

    >>> answer_block("<answer> 42 </answer>", AnswerFormat(answer_tag="answer"))
    ' 42 '
    >>> answer_block("so\\n#### $1,234 total", AnswerFormat(answer_style="gsm8k"))
    '$1,234'
    """
    markers = fmt.answer_markers
    if markers is None:
        if fmt.answer_style == "gsm8k":
            m, _ = _gsm8k_answer(_ascii_digits(text))  # same length: the match's span is the original's
            return text[m.start() : m.end()].strip() if m else None
        return None
    found = blocks(text, *markers)
    return found[0] if len(found) == 1 else None


def extract_answer(text: str, fmt: AnswerFormat) -> str | None:
    """The answer a completion gives, or None when it gives none (``unparseable``).

    With answer markers: exactly one answer block is required; several blocks are ambiguous (a known reward
    hack: spray guesses) and give None, and an empty block gives None. A block holding a number yields that
    number canonicalised; otherwise its stripped text. Without a block, the last number of the reply is
    used only if ``fmt.fallback_last_number``. Without markers: the last number of the reply, or in the
    ``gsm8k`` style the number after ``####``, else after "answer is" (see :func:`_gsm8k_answer`), else the
    last number if ``fmt.fallback_last_number``. A number in brackets is negative only where the format says
    so (``fmt.parentheses_negate``).
    """
    negative = fmt.parentheses_negate
    markers = fmt.answer_markers
    if markers is None:
        if fmt.answer_style == "gsm8k":
            m, decided = _gsm8k_answer(_ascii_digits(text))
            if decided:
                return _read(m, negative) if m else None
            return last_number(text, negative) if fmt.fallback_last_number else None
        return last_number(text, negative)
    found = blocks(text, *markers)
    if len(found) > 1:
        return None
    if len(found) == 1:
        inner = unboxed(found[0].strip())
        if not inner:
            return None
        return canonical_number(inner, negative) or _single_number(inner, negative) or inner
    if markers[0] in text or markers[1] in text:  # an unclosed or stray marker is not an answer
        return None
    return last_number(text, negative) if fmt.fallback_last_number else None


_BOXED = re.compile(r"\$?\\boxed\s*\{")


def unboxed(text: str) -> str:
    r"""The content of ``\\boxed{...}`` when that is the whole of ``text`` (optionally inside ``$...$``), its
    braces balanced; otherwise ``text`` unchanged. One pass: the closing brace is found by counting depth, so
    an unclosed ``\\boxed{`` repeated thousands of times costs one scan.

    >>> [unboxed(t) for t in ["\\boxed{72}", "$\\boxed{\\frac{1}{2}}$", "\\boxed{1} + \\boxed{2}", "\\boxed{7"]]
    ['72', '\\frac{1}{2}', '\\boxed{1} + \\boxed{2}', '\\boxed{7']
    """
    m = _BOXED.match(text)
    if m is None:
        return text
    depth = 1
    for i in range(m.end(), len(text)):
        c = text[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                rest = text[i + 1 :].strip()
                if rest in ("", "$"):
                    return text[m.end() : i].strip()
                return text  # something follows the box: not one boxed answer
    return text


_MATH = re.compile(r"[\\^_{}]")  # LaTeX or an exponent: "x^2" and "\\sqrt{2}" are not the number 2


def _single_number(text: str, negative_parentheses: bool) -> str | None:
    """The one number in a short answer with words around it (``72 apples``, ``x = 72``), else None."""
    if _MATH.search(text):
        return None
    nums = numbers_in(text, negative_parentheses)
    return nums[0] if len(nums) == 1 else None


def is_well_formatted(text: str, fmt: AnswerFormat) -> bool:
    """Exactly one of each configured block (no repeats, no stray markers), a non-blank reasoning block
    before a non-blank answer block, and nothing but whitespace after the answer block. Without markers: a
    number in the reply; in the ``gsm8k`` style, one ``####`` with a number right after it, ending the reply
    (a period may follow).
    """
    answer = fmt.answer_markers
    if answer is None:
        if fmt.answer_style == "gsm8k":
            ascii_text = _ascii_digits(text)
            if ascii_text.count(HASHES) != 1:
                return False
            m = _number_after(ascii_text, ascii_text.index(HASHES) + len(HASHES))
            return (m is not None and _read(m, fmt.parentheses_negate) is not None
                    and not ascii_text[m.end() :].strip().rstrip(".").strip())
        return last_number(text) is not None
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
