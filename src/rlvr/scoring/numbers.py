"""Numbers as answers: read whole, stated once, compared exactly.

A number is read whole: sign (``-``, the unicode minus), currency, thousands separators (the policy is in
:mod:`rlvr.scoring.text`), decimals, a fraction (``5/8``, ``\\frac{5}{8}``), a mixed number (``1 1/2``, ``1½``),
scientific notation (``1.2e4``, ``1.2 × 10^4``, ``1.2 \\times 10^{4}``, ``1.2·10⁴``), a power (``2^10``, ``10²``)
and a percent sign. Values are exact fractions, so ``1/3`` is not 0.333 and a 40-digit answer keeps its digits.

An answer *states* a number only when it states one value: ``7 or 8``, ``between 7 and 8``, ``7-8``, ``not 7``,
``x + 2`` and ``0x1f`` state no number (:class:`UnparseableAnswer`), however the gold reads. Three readings, by
where the answer stands (see :func:`read_number`):

- ``block``: the whole text is the answer (an answer block, a boxed answer): exactly one value in it;
- ``statement``: the answer starts the text (after ``####`` or "the answer is"), talk may follow it, a
  second candidate may not (``#### 72 and then more talk 13`` is 72; ``#### 7 or 8`` is nothing);
- ``reply``: a whole reply with no marker: its last number that is stated (not negated, not an operand of a
  sum, not one end of a range or of an either-or).

>>> [read_number(t, "block") for t in ["$1,234.50", "x = 72", "3 + 4 = 7", "5/8", "1.2 × 10^4", "**72** apples"]]
['1234.5', '72', '7', '0.625', '12000', '72']
>>> [read_number(t, "statement") for t in ["72 and then more talk 13", "1/3 of them"]]
['72', '1/3']
>>> read_number("so 3 + 4 = 7, not 8", "reply")
'7'
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from typing import Literal

from rlvr.scoring.text import HEDGE, NEGATION, after_retraction, clean, strip_lead_in

How = Literal["block", "statement", "reply"]


class UnparseableAnswer(Exception):
    """Raised by a verifier when the *predicted* answer cannot be read as one answer of its type (no value, two
    values, a negated value, an expression where a number is asked).

    The :class:`~rlvr.scoring.Scorer` records it as ``unparseable``; a ``ValueError`` instead means the *gold*
    answer is unusable (``bad_gold``). Deliberately not a ValueError, so the two can never be confused.
    """


class NotAStatement(UnparseableAnswer):
    """The text at an answer marker holds no answer at all (a markdown header ``#### Step 1``): the marker is
    not an answer statement, and the format looks at the next one."""


MAX_DIGITS = 1000  # a value with more digits than this (10^9999) is no answer anyone states: refused unread

_VULGAR = {"½": (1, 2), "⅓": (1, 3), "⅔": (2, 3), "¼": (1, 4), "¾": (3, 4), "⅕": (1, 5), "⅖": (2, 5), "⅗": (3, 5),
           "⅘": (4, 5), "⅙": (1, 6), "⅚": (5, 6), "⅐": (1, 7), "⅛": (1, 8), "⅜": (3, 8), "⅝": (5, 8), "⅞": (7, 8),
           "⅑": (1, 9), "⅒": (1, 10)}
_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")
_DIGITS = r"(?:\d{1,3}(?:,\d{3})+(?![\d,])|\d++)(?:\.\d++)?|\.\d++"
_SUP = "[⁰¹²³⁴⁵⁶⁷⁸⁹]"
NUMBER = re.compile(
    rf"""
    (?<![\w.^/])(?P<sign>[-+])?(?P<cur>[$€£¥₹]\s?)?(?P<sign2>-)?
    (?:
        (?P<mixw>\d+)\s+(?P<mixn>\d+)\s*/\s*(?P<mixd>\d+)(?![\d.,])
      | (?P<vw>\d+)?(?P<vul>[{''.join(_VULGAR)}])
      | (?P<num>{_DIGITS})(?:\s*/\s*(?P<den>{_DIGITS}))?
    )
    (?:
        [eE](?P<exp>[-+]?\d{{1,4}})(?!\d)
      | \s*(?:[x×*·])\s*10\s*(?:\^\s*(?:\{{\s*(?P<exp10b>[-+]?\d{{1,4}})\s*\}}|(?P<exp10>[-+]?\d{{1,4}}))(?![\d.])
                               |(?P<sup10>⁻?{_SUP}{{1,4}}))
      | \s*\^\s*(?:\{{\s*(?P<powb>[-+]?\d{{1,4}})\s*\}}|(?P<pow>[-+]?\d{{1,4}}))(?![\d.^])
      | (?P<sup>⁻?{_SUP}{{1,4}})
    )?
    (?P<pct>\s?%)?
    (?!\w|\.\d)
    """,
    re.VERBOSE,
)
_CURRENCY_PAREN = re.compile(r"^([$€£¥₹])\s*\(")
_OPERATOR_BEFORE = re.compile(r"(?:[\w)\]}]\s*[-+*/×÷^·]|[\w)\]}]\s+[x]|[+*/×÷^·_{]|\\[A-Za-z]+)\s*$")
_OPERATOR_AFTER = re.compile(r"^\s*(?:[+*/×÷^·]|[-]\s*[\w(]|x\s*[\d(])")
_LINK = re.compile(r"^\s*(?:,?\s*(?:or|to|-|~|/|and/or|vs\.?|versus|or maybe|or perhaps|or possibly|and)\s*|,\s*|\s+)$",
                   re.IGNORECASE)  # "7 or 8", "7-8", "7, 8", "7 8": candidates, not one answer


def _value(m: re.Match) -> Fraction | None:
    """The exact value of one match of :data:`NUMBER` (None when it is too large to be an answer)."""
    try:
        if m["mixw"] is not None:
            if int(m["mixd"]) == 0:
                return None
            value = int(m["mixw"]) + Fraction(int(m["mixn"]), int(m["mixd"]))
        elif m["vul"] is not None:
            value = int(m["vw"] or 0) + Fraction(*_VULGAR[m["vul"]])
        else:
            value = Fraction(m["num"].replace(",", ""))
            if m["den"] is not None:
                den = Fraction(m["den"].replace(",", ""))
                if den == 0:
                    return None
                value /= den
        exp = m["exp"] or m["exp10"] or m["exp10b"] or (m["sup10"] or "").translate(_SUPERSCRIPTS) or None
        power = m["pow"] or m["powb"] or (m["sup"] or "").translate(_SUPERSCRIPTS) or None
        if exp is not None:
            if abs(int(exp)) > MAX_DIGITS:
                return None
            value *= Fraction(10) ** int(exp)
        elif power is not None:
            p = int(power)
            size = abs(value.numerator) if value.numerator else 1
            if abs(p) * max(len(str(size)), len(str(value.denominator))) > MAX_DIGITS:
                return None
            if value == 0 and p < 0:
                return None
            value **= p
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    if max(len(str(abs(value.numerator))), len(str(value.denominator))) > MAX_DIGITS + 1:
        return None
    negative = (m["sign"] == "-") != (m["sign2"] == "-")
    return -value if negative else value


def format_value(value: Fraction) -> str:
    """Canonical text of a value: ``72``, ``-0.625``, ``1/3`` (a decimal when it terminates, else a fraction).

    >>> [format_value(Fraction(x)) for x in ["72", "-5/8", "1/3", "1e-7"]]
    ['72', '-0.625', '1/3', '0.0000001']
    """
    if value.denominator == 1:
        return str(value.numerator)
    d = value.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    if d != 1:
        return f"{value.numerator}/{value.denominator}"
    with localcontext() as ctx:
        ctx.prec = len(str(abs(value.numerator))) + len(str(value.denominator)) + 2
        return format((Decimal(value.numerator) / Decimal(value.denominator)).normalize(), "f")


def to_fraction(text: str) -> Fraction | None:
    """The value of a canonical number (see :func:`format_value`) or of any text that is exactly one number."""
    canonical = canonical_number(str(text))
    return Fraction(canonical) if canonical is not None else None


def _in_parentheses(text: str, m: re.Match) -> bool:
    return text[: m.start()].rstrip().endswith("(") and text[m.end() :].lstrip().startswith(")")


def _read(text: str, m: re.Match, negative_parentheses: bool) -> Fraction | None:
    value = _value(m)
    if value is not None and negative_parentheses and _in_parentheses(text, m):
        value = -value
    return value


def canonical_number(text: str, negative_parentheses: bool = True) -> str | None:
    """The number a text is, canonicalised (``"$1,234.00" -> "1234"``, ``"(12)" -> "-12"``, ``"5/8" ->
    "0.625"``), or None when the text is anything but exactly one number (words, two numbers, an expression).
    A percent sign is dropped (``"12.5%" -> "12.5"``). A number in brackets is negative (accounting) unless
    ``negative_parentheses`` is false.

    >>> [canonical_number(s) for s in ["18.0", "-5", "$80,000", "(12)", "12.5%", "+3", "$-5", "1e5", "seven"]]
    ['18', '-5', '80000', '-12', '12.5', '3', '-5', '100000', None]
    >>> [canonical_number(s) for s in ["2e5", "1.5E-3", "10²", "2⁻¹", "1 1/2", "7 or 8", "x+2", "0x1f"]]
    ['200000', '0.0015', '100', '0.5', '1.5', None, None, None]
    """
    s = _CURRENCY_PAREN.sub(r"(\1", clean(str(text)).rstrip(".").strip())  # "$(12)" is "($12)"
    inner = s[1:-1].strip() if s.startswith("(") and s.endswith(")") else None
    m = NUMBER.fullmatch(inner if inner is not None else s)
    if m is None:
        return None
    value = _value(m)
    if value is None:
        return None
    return format_value(-value if inner is not None and negative_parentheses else value)


def numbers_in(text: str, negative_parentheses: bool = True) -> list[str]:
    """Every number in ``text`` read whole and canonicalised, in order (``3 + 4 = 7`` -> 3, 4, 7)."""
    s = clean(text)
    return [format_value(v) for m in NUMBER.finditer(s) if (v := _read(s, m, negative_parentheses)) is not None]


def last_number(text: str, negative_parentheses: bool = True) -> str | None:
    """The last number in ``text`` (whatever surrounds it), or None."""
    found = numbers_in(text, negative_parentheses)
    return found[-1] if found else None


def _operand(text: str, m: re.Match) -> bool:
    """Whether the number is an operand of an arithmetic expression (``x + 2``, ``9 x 8``, ``2^x``) rather
    than a value stated on its own. ``= 7`` and a sign (``-7``) are not operators."""
    return bool(_OPERATOR_BEFORE.search(text[max(0, m.start() - 12) : m.start()])
                or _OPERATOR_AFTER.match(text[m.end() : m.end() + 8]))


def _negated(text: str, m: re.Match) -> bool:
    """Whether the words just before the number, in its clause, deny it (``not 7``, ``other than 7``)."""
    before = re.split(r"[.;:!?\n]", text[max(0, m.start() - 60) : m.start()])[-1]
    return any(len(before[n.end() :].split()) <= 3 for n in NEGATION.finditer(before))


def _denied_after(text: str, m: re.Match) -> bool:
    """Whether the rest of the number's clause denies it (``72 is wrong``, ``72 is not the answer``); a
    negation followed by another number denies that one instead (``72, not 70``)."""
    after = re.split(r"[.;!?\n]", text[m.end() : m.end() + 60])[0]
    n = NEGATION.search(after)
    return n is not None and NUMBER.search(after, n.end()) is None


def _hedged(text: str, m: re.Match) -> bool:
    """Whether the words just before the number, in its clause, hedge it (``it could be 7``, ``maybe 7``)."""
    before = re.split(r"[.;:!?\n]", text[max(0, m.start() - 40) : m.start()])[-1]
    return HEDGE.search(before) is not None


def _linked(text: str, a: re.Match, b: re.Match) -> bool:
    """Whether two numbers are offered together as alternatives or a range (``7 or 8``, ``7-8``,
    ``between 7 and 8``)."""
    if _LINK.match(text[a.end() : b.start()]) is None:
        return False
    between = text[a.end() : b.start()].strip(" ,").lower()
    return between != "and" or bool(re.search(r"\bbetween\s*$", text[max(0, a.start() - 20) : a.start()], re.I))


def read_number(text: str, how: How = "block", negative_parentheses: bool = True) -> str:
    """The one number ``text`` states, canonicalised (see the module docstring for ``how``).

    Raises :class:`UnparseableAnswer` (saying why) when it states none or more than one, and
    :class:`NotAStatement` when a ``statement`` does not begin with a number at all (a header after ``####``).
    """
    return format_value(_stated(text, how, negative_parentheses)[0])


_REWRITES = ("mixw", "vul", "exp", "exp10", "exp10b", "sup10", "pow", "powb", "sup")


def written_number(text: str, how: How = "block", negative_parentheses: bool = True) -> str:
    """The one number ``text`` states, as written but without currency, thousands separators and spaces
    (``$1,234.50`` -> ``1234.50``, ``2/4`` stays ``2/4``): for a task's own scorer, which may care how a right
    value is written (a fraction in lowest terms). Notation it may not read (``1.2e4``, ``1 1/2``, ``(12)``
    as -12) is written canonically.

    >>> [written_number(t) for t in ["$1,234.50", "2/4", "-07", "1.2 × 10^4", "x = 3.0"]]
    ['1234.50', '2/4', '-07', '12000', '3.0']
    """
    value, m = _stated(text, how, negative_parentheses)
    if any(m[g] for g in _REWRITES) or (value < 0) != ((m["sign"] == "-") != (m["sign2"] == "-")):
        return format_value(value)
    sign = "-" if value < 0 else ""
    return sign + m["num"].replace(",", "") + (f"/{m['den'].replace(',', '')}" if m["den"] else "")


def _stated(text: str, how: How, negative_parentheses: bool) -> tuple[Fraction, re.Match]:
    s = clean(text)
    if how == "reply":
        return _read_reply(s, negative_parentheses)
    if how == "statement":
        return _read_statement(s, negative_parentheses)
    return _read_block(s, negative_parentheses)


def _rhs(s: str) -> str:
    """What follows the last ``=`` when a number does (``3 + 4 = 7`` -> ``7``), else ``s``."""
    if "=" not in s:
        return s
    rhs = s[s.rindex("=") + 1 :]
    return rhs if NUMBER.search(rhs) else s


def _read_block(s: str, negative_parentheses: bool) -> tuple[Fraction, re.Match]:
    s = strip_lead_in(_rhs(after_retraction(s))).rstrip(".").strip()
    found = list(NUMBER.finditer(s))
    if not found:
        raise UnparseableAnswer(f"{s[:60]!r} states no number")
    matches = [m for m in found if not _negated(s, m)]  # "72, not 70": 70 is named only to be ruled out
    if not matches:
        raise UnparseableAnswer(f"{s[:60]!r} denies its number")
    values = {_read(s, m, negative_parentheses) for m in matches}
    if None in values:
        raise UnparseableAnswer("a number too large to be an answer")
    if len(values) > 1:
        raise UnparseableAnswer(f"{s[:60]!r} states {len(values)} different numbers")
    if HEDGE.search(s):
        raise UnparseableAnswer(f"{s[:60]!r} hedges")
    if _denied_after(s, matches[-1]):
        raise UnparseableAnswer(f"{s[:60]!r} denies its number")
    if any(_operand(s, m) for m in matches):
        raise UnparseableAnswer(f"{s[:60]!r} is an expression, not a number")
    return values.pop(), matches[-1]


_STATEMENT_LEAD = re.compile(r"^[\s:=(]*(?:(?:about|approximately|around|roughly|exactly|only|just)\s+)?")
_HEDGED_TAIL = re.compile(r"\W*(?:or|maybe|perhaps|possibly|probably)\b(?!\s+so\b)", re.IGNORECASE)


def _read_statement(s: str, negative_parentheses: bool) -> tuple[Fraction, re.Match]:
    line = strip_lead_in(after_retraction(s.split("\n", 1)[0]))
    start = _STATEMENT_LEAD.match(line).end()
    m = NUMBER.match(line, start)
    if m is None:
        raise NotAStatement(f"{line[:60]!r} does not begin with a number")
    if _operand(line, m):
        rhs = _rhs(line)
        if rhs is not line:
            return _read_statement(rhs, negative_parentheses)  # "#### 3 + 4 = 7"
        raise UnparseableAnswer(f"{line[:60]!r} is an expression, not a number")
    value = _read(line, m, negative_parentheses)
    if value is None:
        raise UnparseableAnswer("a number too large to be an answer")
    if _denied_after(line, m):
        raise UnparseableAnswer(f"{line[:60]!r} denies its number")
    rest = line[m.end() :]
    for later in NUMBER.finditer(rest):
        if _read(rest, later, negative_parentheses) != value and (
                HEDGE.search(rest[: later.start()]) or _LINK.match(rest[: later.start()])):
            raise UnparseableAnswer(f"{line[:60]!r} offers two answers")
    return value, m


def _tail_numbers(s: str) -> list[re.Match]:
    """The numbers of the end of ``s``: a window that grows from the end until it holds at least three numbers
    (or is all of ``s``), so a long reply costs a scan of its tail, not of all of it."""
    window = 2000
    while True:
        start = max(0, len(s) - window)
        for _ in range(64):  # begin outside a number: a cut one would read as another value
            if start == 0 or not (s[start - 1].isdigit() or s[start - 1] in ".,/^" or s[start].isdigit()):
                break
            start -= 1
        matches = list(NUMBER.finditer(s, start))
        if start == 0 or len(matches) >= 3:
            return matches
        window *= 8


_ENUMERATOR_AFTER = re.compile(r"[.)][ \t]+\S")


def _enumerator(text: str, m: re.Match) -> bool:
    """Whether the number numbers an item of a list (``1. The letter "d" appears...``, ``2) Add them``): first on
    its line and followed by ``.`` or ``)`` and the item's text, it counts items and states no value."""
    line_start = text.rfind("\n", 0, m.start()) + 1
    return not text[line_start : m.start()].strip() and bool(_ENUMERATOR_AFTER.match(text, m.end()))


def _read_reply(s: str, negative_parentheses: bool) -> tuple[Fraction, re.Match]:
    matches = _tail_numbers(s)
    # "8, not 7": 7 is named only to be denied; "1. The letter d appears in": 1 numbers a list item (a model paid
    # for it learns to open every reply with "1." and collects whenever the answer is 1)
    while matches and (_negated(s, matches[-1]) or _enumerator(s, matches[-1])):
        matches.pop()
    if not matches:
        raise UnparseableAnswer("the reply states no number")
    last = matches[-1]
    if _operand(s, last):
        raise UnparseableAnswer("the reply ends in an expression, not a number")
    value = _read(s, last, negative_parentheses)
    if value is None:
        raise UnparseableAnswer("a number too large to be an answer")
    if len(matches) > 1 and _linked(s, matches[-2], last) and _read(s, matches[-2], negative_parentheses) != value:
        raise UnparseableAnswer("the reply ends in two candidate answers")
    if _hedged(s, last):
        raise UnparseableAnswer("the reply hedges its last number")
    if _denied_after(s, last):
        raise UnparseableAnswer("the reply denies its last number")
    if _HEDGED_TAIL.match(s, last.end()):
        raise UnparseableAnswer("the reply hedges its last number")
    return value, last


# --- comparing ------------------------------------------------------------------------------------------------


def _places(value: Fraction) -> int:
    """Decimal places of a value as written canonically (a non-terminating fraction counts as exact: 30)."""
    text = format_value(value)
    if "/" in text:
        return 30
    return len(text.split(".")[1]) if "." in text else 0


def _round(value: Fraction, places: int) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 60
        exact = Decimal(value.numerator) / Decimal(value.denominator)
        return exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def compare_numbers(
    pred: str, gold: str, *, rel_tol: float = 1e-6, rounding: bool = False, percent: bool = False
) -> tuple[bool, float]:
    """``(equal, relative_error)`` of a predicted number against the gold one.

    Args:
        rel_tol: equal when ``|pred - gold| <= rel_tol * |gold|`` (a gold of 0 needs an exact 0); an integer
            gold needs that integer (up to 1e-6, float noise) unless ``rel_tol`` is a deliberate tolerance
            (>= 0.1%, FinQA's 1%).
        rounding: also require both to agree once rounded to the coarser of their two precisions, so
            ``14.3`` matches ``14.2857`` but ``14.2`` does not (FinQA's rounded gold answers).
        percent: also read the prediction as a percentage of, or in percent of, the gold (x100, /100):
            ``14.3`` matches ``0.143``. The closest reading counts.

    Raises ValueError when the gold is not a number (a data problem) and :class:`UnparseableAnswer` when the
    prediction is not one.

    >>> compare_numbers("72.0", "72")
    (True, 0.0)
    >>> compare_numbers("14.3", "0.142857", rel_tol=0.01, rounding=True, percent=True)[0]
    True
    >>> round(compare_numbers("80", "100")[1], 3)
    0.2
    >>> compare_numbers("1000000.5", "1000000")[0], compare_numbers("1/3", "0.33333333")[0]
    (False, True)
    """
    g = to_fraction(gold)
    if g is None:
        raise ValueError(f"gold answer {gold!r} is not a number")
    p = to_fraction(pred)
    if p is None:
        raise UnparseableAnswer(f"{pred!r} is not a number")
    readings = (p, p / 100, p * 100) if percent else (p,)
    tol = Fraction(rel_tol)
    best: tuple[bool, float] = (False, float("inf"))
    for c in readings:
        if g == 0:
            err = 0.0 if c == 0 else float("inf")
        else:
            try:
                err = float(abs(c - g) / abs(g))
            except OverflowError:
                err = float("inf")
        if g.denominator == 1 and not rounding and rel_tol < 1e-3:
            # An integer gold needs that integer, up to float noise (72.00000001 is 72): the default relative
            # tolerance (float noise in worked-out decimals such as 1/3) would let 1000000.5 pass for 1000000.
            equal = abs(c - g) <= Fraction(1, 10**6)
        else:
            equal = abs(c - g) <= tol * abs(g)
        if equal and rounding:
            places = min(_places(c), _places(g))
            equal = _round(c, places) == _round(g, places)
        if (equal, -err) > (best[0], -best[1]):
            best = (equal, err)
    return best
