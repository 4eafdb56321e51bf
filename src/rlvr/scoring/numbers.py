"""Numbers as answers: exact canonical values and one comparison (:func:`compare_numbers`), so "equal",
"within 10%" and "correctly rounded" mean one thing in every verifier and reward."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from rlvr.scoring.extract import canonical_number


class UnparseableAnswer(Exception):
    """Raised by a verifier when the *predicted* answer cannot be read (text where a number is expected).

    The :class:`Scorer` records it as ``unparseable``; a ``ValueError`` instead means the *gold* answer is
    unusable (``bad_gold``). Deliberately not a ValueError, so the two can never be confused.
    """




def to_decimal(text: Any) -> Decimal | None:
    """The number ``text`` denotes as an exact Decimal (see :func:`canonical_number`), or None."""
    canonical = canonical_number(str(text)) if text is not None else None
    return Decimal(canonical) if canonical is not None else None


def _places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _round(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def compare_numbers(
    pred: str, gold: str, *, rel_tol: float = 1e-6, rounding: bool = False, percent: bool = False
) -> tuple[bool, float]:
    """``(equal, relative_error)`` of a predicted number against the gold one.

    Args:
        rel_tol: equal when ``|pred - gold| <= rel_tol * |gold|`` (a gold of 0 needs an exact 0); two
            integers are equal only when they are the same integer.
        rounding: also require both to agree once rounded to the coarser of their two precisions, so
            ``14.3`` matches ``14.2857`` but ``14.2`` does not (FinQA's rounded gold answers).
        percent: also read the prediction as a percentage of, or in percent of, the gold (x100, /100):
            ``14.3%`` matches ``0.143``. The closest reading counts.

    Raises ValueError when the gold is not a number (a data problem) and :class:`UnparseableAnswer` when the
    prediction is not one.

    >>> compare_numbers("72.0", "72")
    (True, 0.0)
    >>> compare_numbers("14.3%", "0.142857", rel_tol=0.01, rounding=True, percent=True)[0]
    True
    >>> round(compare_numbers("80", "100")[1], 3)
    0.2
    >>> compare_numbers("1000000.5", "1000000")[0], compare_numbers("0.3333333", "0.33333333")[0]
    (False, True)
    """
    g = to_decimal(gold)
    if g is None:
        raise ValueError(f"gold answer {gold!r} is not a number")
    p = to_decimal(pred)
    if p is None:
        raise UnparseableAnswer(f"{pred!r} is not a number")
    readings = (p, p / 100, p * 100) if percent else (p,)
    best: tuple[bool, float] = (False, float("inf"))
    with localcontext() as ctx:
        ctx.prec = max(28, len(str(p)) + len(str(g)) + 4)
        for c in readings:
            if g == 0:
                err = 0.0 if c == 0 else float("inf")
            else:
                err = float(abs(c - g) / abs(g))
            if g == g.to_integral_value() and not rounding and rel_tol < 1e-3:
                # An integer gold needs that integer, up to float noise (72.00000001 is 72): the default relative
                # tolerance (float noise in worked-out decimals such as 1/3) would let 1000000.5 or 1000001 pass
                # for 1000000. A deliberate tolerance (rel_tol >= 0.1%, e.g. FinQA's 1%) applies to integers too.
                equal = abs(c - g) <= Decimal("1e-6")
            else:
                equal = err <= rel_tol
            if equal and rounding:
                places = min(_places(c), _places(g))
                equal = _round(c, places) == _round(g, places)
            if (equal, -err) > (best[0], -best[1]):
                best = (equal, err)
    return best
