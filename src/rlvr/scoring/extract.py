"""Answer extraction and number normalisation: the one parser used by rewards and evaluation alike.

>>> extract_answer("so 3 + 4 = 7", AnswerFormat())
'7'
>>> extract_answer("<answer>$80,000</answer> (was 79,000)", AnswerFormat(answer_tag="answer"))
'80000'
>>> extract_answer("<answer>1</answer><answer>2</answer>", AnswerFormat(answer_tag="answer")) is None
True
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


def canonical_number(text: str) -> str | None:
    """The number a string denotes, canonicalised: ``"$1,234.00" -> "1234"``, ``"(12)" -> "-12"``.

    Returns None when the string is not exactly one number (after stripping spaces and a trailing period).
    A percent sign is dropped (``"12.5%" -> "12.5"``); numbers of any size are kept exactly.

    >>> [canonical_number(s) for s in ["18.0", "-5", "$80,000", "(12)", "12.5%", "+3", "$-5", "1e5", "seven"]]
    ['18', '-5', '80000', '-12', '12.5', '3', '-5', '100000', None]
    >>> [canonical_number(s) for s in ["2e5", "1.5E-3", "10²", "2⁻¹"]]
    ['200000', '0.0015', '100', '0.5']
    """
    s = _ascii_digits(text).strip().rstrip(".").strip()
    m = _NUMBER.fullmatch(s)
    if not m or (m.group("paren") is None) != (m.group("close") is None):
        return None
    return _format(m)


def _format(m: re.Match) -> str | None:
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
        if m.group("neg") or m.group("neg2") or m.group("paren"):
            value = -value
        if value == value.to_integral_value():
            return format(value.to_integral_value(), "f")
        return format(value.normalize(), "f")


def numbers_in(text: str) -> list[str]:
    """Every number in ``text``, canonicalised, in order of appearance."""
    out = []
    for m in _NUMBER.finditer(_ascii_digits(text)):
        if (m.group("paren") is None) != (m.group("close") is None):
            m = _NUMBER.fullmatch(m.group("num"))  # a stray bracket is not a sign
        if m and (v := _format(m)) is not None:
            out.append(v)
    return out


def last_number(text: str) -> str | None:
    nums = numbers_in(text)
    return nums[-1] if nums else None


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
    """The raw content of the one answer block, or None (no markers configured, no block, or several).

    >>> answer_block("<answer> 42 </answer>", AnswerFormat(answer_tag="answer"))
    ' 42 '
    """
    markers = fmt.answer_markers
    if markers is None:
        return None
    found = blocks(text, *markers)
    return found[0] if len(found) == 1 else None


def extract_answer(text: str, fmt: AnswerFormat) -> str | None:
    """The answer a completion gives, or None when it gives none (``unparseable``).

    With answer markers: exactly one answer block is required; several blocks are ambiguous (a known reward
    hack: spray guesses) and give None, and an empty block gives None. A block holding a number yields that
    number canonicalised; otherwise its stripped text. Without a block, the last number of the reply is
    used only if ``fmt.fallback_last_number``. Without markers: the last number of the reply.
    """
    markers = fmt.answer_markers
    if markers is None:
        return last_number(text)
    found = blocks(text, *markers)
    if len(found) > 1:
        return None
    if len(found) == 1:
        inner = unboxed(found[0].strip())
        if not inner:
            return None
        return canonical_number(inner) or _single_number(inner) or inner
    if markers[0] in text or markers[1] in text:  # an unclosed or stray marker is not an answer
        return None
    return last_number(text) if fmt.fallback_last_number else None


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


def _single_number(text: str) -> str | None:
    """The one number in a short answer with words around it (``72 apples``, ``x = 72``), else None."""
    if _MATH.search(text):
        return None
    nums = numbers_in(text)
    return nums[0] if len(nums) == 1 else None


def is_well_formatted(text: str, fmt: AnswerFormat) -> bool:
    """Exactly one of each configured block (no repeats, no stray markers), a non-blank reasoning block
    before a non-blank answer block, and nothing but whitespace after the answer block."""
    answer = fmt.answer_markers
    if answer is None:
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
