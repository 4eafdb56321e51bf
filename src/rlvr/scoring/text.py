"""Cleaning an answer before it is read: what a human grader looks through without noticing.

Invisible characters (zero-width, bidi marks, soft hyphens) are removed; unicode spaces, digits and minus signs
become their ASCII forms; markdown emphasis, math delimiters and LaTeX wrappers (``\\boxed{}``, ``\\text{}``,
``\\frac{1}{2}`` of plain numbers) are unwrapped. Thousands separators follow one policy, written once here:
a comma, a no-break space, a thin space or a narrow no-break space between a digit and a group of exactly three
digits groups thousands (``1,234,567``, ``1 234 567`` with U+202F); a plain space never does (``1 234`` is two
numbers), and a period is always a decimal point (``1.234`` is one and a bit, never 1234).

The cues a grader reads in words are here too: a retraction (``wait``, ``actually``: the answer after it counts),
a hedge (``or``, ``maybe``: two answers, no credit), a negation (``not 7`` does not state 7) and the lead-in
phrases (``The answer is``, ``Final answer:``) that come before an answer without being part of it.

>>> clean("**\\u200b72**")
'72'
>>> clean("$\\\\boxed{\\\\text{1\\u202f234}}$")
'1,234'
>>> clean("\\u221212 and \\u0667\\u0662")
'-12 and 72'
"""

from __future__ import annotations

import re
import unicodedata

# Zero-width characters, bidi marks and embeddings, soft hyphen, word joiner, BOM: never part of an answer.
_INVISIBLE = re.compile("[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180e\u200b-\u200f\u202a-\u202e"
                        "\u2060-\u206f\ufe00-\ufe0f\ufeff]")
# No-break, thin and narrow no-break spaces between a digit and three digits: thousands separators.
_GROUPING_SPACE = re.compile(r"(?<=\d)[\u00a0\u2007\u2009\u202f](?=\d{3}(?!\d))")
_SPACES = re.compile("[\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\t]")
_MINUS = str.maketrans({"\u2212": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2010": "-", "\u2011": "-",
                        "\ufe63": "-", "\uff0d": "-", "\uff0b": "+", "\uff05": "%", "\uff0e": ".", "\uff0c": ","})
# LaTeX that only wraps or spaces its content.
_WRAPPERS = re.compile(r"\\(?:boxed|fbox|text|textbf|textit|textrm|mathrm|mathbf|mathit|mbox|operatorname)\s*\{")
_LATEX_SPACES = re.compile(r"\\[,;:!> ]|\\q?quad\b|\\displaystyle\b|\\left\b|\\right\b|~")
_LATEX_FRAC = re.compile(r"\\[dt]?frac\s*\{\s*(-?\d+(?:\.\d+)?)\s*\}\s*\{\s*(\d+(?:\.\d+)?)\s*\}|\\[dt]?frac(\d)(\d)")
_MATH_DELIMITERS = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$\$")
_DOLLAR_MATH = re.compile(r"\$(?=\S)([^$\n]*?\S)\$")  # $...$ hugging its content: maths; "$5 and $6" is money
_EMPHASIS = re.compile(r"\*\*|__|`+|(?<![\w*])\*(?=\S)|(?<=\S)\*(?![\w*])")


def ascii_digits(text: str) -> str:
    """Unicode decimal digits (Arabic-Indic, full-width, ...) to ASCII; superscripts are not digits."""
    if text.isascii():
        return text
    return "".join(str(unicodedata.decimal(c)) if c.isdecimal() and not c.isascii() else c for c in text)


def strip_invisible(text: str) -> str:
    """``text`` without zero-width characters and bidi marks (a digit split by U+200B is one number)."""
    return _INVISIBLE.sub("", text)


def unwrap(text: str) -> str:
    r"""Every ``\boxed{X}``, ``\text{X}`` (and kin) replaced by ``X``, in one pass: a stack of open braces marks
    those a wrapper opened, and their closing braces are dropped with the wrapper.

    >>> unwrap(r"\boxed{\text{42}} and \boxed{\frac{1}{2}}")
    '42 and \\frac{1}{2}'
    """
    opens = {m.start(): m.end() for m in _WRAPPERS.finditer(text)}
    out: list[str] = []
    stack: list[bool] = []  # per open brace: whether a wrapper opened it
    i = 0
    while i < len(text):
        if i in opens:
            stack.append(True)
            i = opens[i]
            continue
        c = text[i]
        escaped = i > 0 and text[i - 1] == "\\"
        if c == "{" and not escaped:
            stack.append(False)
        elif c == "}" and not escaped and stack and stack.pop():
            i += 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


def clean(text: str, plain_latex: bool = True) -> str:
    """``text`` as a grader sees it: see the module docstring. Lengths change: spans are not the original's.
    ``plain_latex=False`` keeps LaTeX commands other than the wrappers (``\\frac``, ``\\times``) for an
    expression parser; delimiters and wrappers go either way."""
    text = strip_invisible(text)
    text = ascii_digits(text).translate(_MINUS)
    text = _GROUPING_SPACE.sub(",", text)
    text = _SPACES.sub(" ", text)
    if "\\" in text:
        text = unwrap(text)
        text = _LATEX_SPACES.sub(" ", text)
        text = text.replace(r"\$", "$").replace(r"\%", "%")
        if plain_latex:
            text = _LATEX_FRAC.sub(lambda m: f" {m[1] or m[3]}/{m[2] or m[4]}", text)
            text = text.replace(r"\times", "×").replace(r"\cdot", "·")
        text = _MATH_DELIMITERS.sub(" ", text)
    if "$" in text:
        text = _DOLLAR_MATH.sub(r"\1", text)
    text = _EMPHASIS.sub("", text)
    return re.sub(r" {2,}", " ", text).strip()


# --- cues in words -------------------------------------------------------------------------------------------

# A self-correction: what follows replaces what came before.
RETRACTION = re.compile(
    r"\b(?:wait|actually|correction|oops|sorry|scratch that|i mean|i made (?:a|an) (?:mistake|error)|"
    r"let me (?:recalculate|recompute|redo|reconsider|recount|correct)|on second thought|not quite)\b|\bno\s*,",
    re.IGNORECASE,
)
# Two candidate answers, or no commitment to one.
HEDGE = re.compile(
    r"\b(?:or|either|maybe|perhaps|possibly|probably|likely|might|guess|unsure|not sure|could be|"
    r"and/or|vs|versus|somewhere between|between)\b|\+/-|±",
    re.IGNORECASE,
)
# Words that deny or judge what stands next to them: "not 7", "7 is wrong".
NEGATION = re.compile(
    r"\b(?:not|never|no longer|neither|nor|cannot|can't|isn't|aren't|wasn't|won't|doesn't|don't|except|"
    r"other than|instead of|rather than|anything but|wrong|incorrect|false|invalid)\b|≠|!=|=/=",
    re.IGNORECASE,
)
# Phrases that introduce an answer without being part of it.
LEAD_IN = re.compile(
    r"^(?:(?:so|thus|hence|therefore|then|finally|in total|in all|altogether|overall)\s*,?\s*)?"
    r"(?:(?:the\s+)?(?:final\s+|correct\s+|short\s+)?(?:answer|result|solution|total|value)"
    r"(?:\s+(?:is|was|would be|will be|=))?\s*[:=]?\s*|(?:it|this|that)(?:\s+is|'s)\s+|"
    r"(?:we\s+)?(?:get|have|obtain|find)\s+)",
    re.IGNORECASE,
)


def after_retraction(text: str) -> str:
    """What ``text`` says after its last self-correction (``"40, wait, 42"`` -> ``"42"``); all of it when it
    has none. When nothing follows the last cue (``"42. Actually, let me check."``), what came before counts."""
    last = None
    for last in RETRACTION.finditer(text):
        pass
    if last is None:
        return text
    after = text[last.end() :].strip(" ,.:;!-")
    return after if after else text[: last.start()].strip()


def strip_lead_in(text: str) -> str:
    """``text`` without a leading ``The answer is`` / ``Final answer:`` / ``So the total is``.

    >>> [strip_lead_in(t) for t in ["The final answer is: 42", "so the total = 7", "It's Paris", "42"]]
    ['42', '7', 'Paris', '42']
    """
    stripped = LEAD_IN.sub("", text.strip(), count=1).strip()
    return stripped or text.strip()
