"""The data checks: what the configured data, prompt and scorer would do before any model runs.

- ``prompt_length``: every prompt, through the tokenizer's chat template as the trainer applies it, against the
  prompt budget (the loop's ``max_length``, else the model's context, less the completion budget);
- ``gold_answers``: rows refused at load because their gold answer does not read as the data's answer type (the
  ``skipped/...`` counts of the data stats);
- ``overlap``: held-out questions that also appear in training;
- ``answer_format``: the prompt asks for the format the scorer reads (it names its markers or answer line and no
  other format's), and a correct answer written that way scores correct;
- ``reward_audit``: the reward-hacking audit (:mod:`rlvr.audit`) on a few training rows.

A streamed dataset (``data.streaming=true``) is not read whole: the checks see its held-out rows and the first
``preflight.stream_rows`` training rows of the stream (:func:`stream_sample`).
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from rlvr.audit import audit
from rlvr.data.sources import BadRow
from rlvr.data.streaming import TrainStream, read
from rlvr.preflight.report import Check
from rlvr.rewards import RewardSuite
from rlvr.scoring import AnswerFormat, Scorer
from rlvr.scoring.completions import gold_completion
from rlvr.scoring.extract import HASHES

log = logging.getLogger(__name__)

# The answer formats a prompt may ask for, each by what it says when it asks (its opening marker): a prompt that
# names one the scorer does not read is asking for answers the scorer may not find.
FORMATS: dict[str, AnswerFormat] = {
    "<answer>": AnswerFormat(answer_tag="answer"),
    "<SOLUTION>": AnswerFormat(answer_start="<SOLUTION>", answer_end="</SOLUTION>"),
    HASHES: AnswerFormat(answer_style="gsm8k"),
}
BOXED = "\\boxed"


def prompt_tokens(tokenizer: Any, prompts: list[list[dict[str, Any]]]) -> list[int]:
    """Token count of each chat prompt, with the generation prompt, as the trainer tokenizes it."""
    if not prompts:
        return []
    ids = tokenizer.apply_chat_template(conversation=prompts, add_generation_prompt=True, tokenize=True,
                                        return_dict=True)["input_ids"]
    return [len(i) for i in ids]


def stream_sample(stream: TrainStream, rows: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The first ``rows`` training rows of a stream (at most ``data.train_size``), in file order and made as the run
    makes them (records refused at load skipped, held-out questions dropped), and the counts the data checks read:
    ``train_rows``, ``train_skipped`` with ``skipped/<reason>``, ``train_dropped_overlap``. The stream is read no
    further than that."""
    wanted = rows if stream.limit is None else min(rows, stream.limit)
    kept: list[dict[str, Any]] = []
    skipped: Counter = Counter()
    dropped = 0
    if wanted:
        for record in read(stream.source.open(), stream.source.where):
            try:
                row = stream.to_row(record)
            except BadRow as e:
                skipped[f"{e.field}: {e.reason}"] += 1
                continue
            if row["question"] in stream.held_out:
                dropped += 1
                continue
            kept.append(row)
            if len(kept) == wanted:
                break
    stats = {"train_rows": len(kept), "train_skipped": sum(skipped.values()), "train_dropped_overlap": dropped}
    stats.update({f"skipped/{reason}": n for reason, n in skipped.most_common()})
    return kept, stats


def check_prompt_length(train: list[int], test: list[int], limit: tuple[int, str] | None, completion: tuple[int, str],
                        eval_limit: tuple[int, str] | None, eval_completion: tuple[int, str],
                        max_share: float) -> Check:
    """Prompts (token counts per split) against ``limit - completion`` for training and ``eval_limit -
    eval_completion`` for the held-out set; each bound is ``(tokens, the setting it comes from)``; the limit is the
    loop's ``max_length`` (prompts are cut) or else the model's context (``max_position_embeddings``: they cannot
    fit)."""
    figures: dict[str, Any] = {"train_max": max(train, default=0), "test_max": max(test, default=0),
                               "train_mean": round(sum(train) / max(len(train), 1), 1)}
    parts, over_shares, advice = [], [], []
    for split, lengths, bound, budget in (("train", train, limit, completion), ("test", test, eval_limit,
                                                                                  eval_completion)):
        if bound is None or not lengths:
            continue
        room = bound[0] - budget[0]
        over = sum(n > room for n in lengths)
        share = over / len(lengths)
        figures[f"{split}_budget"], figures[f"{split}_over"], figures[f"{split}_over_share"] = room, over, share
        over_shares.append(share)
        parts.append(f"{split} up to {max(lengths)} tokens, budget {room} ({bound[0]} - {budget[0]} of "
                     f"{budget[1]}): {share:.0%} over")
        if share > max_share:
            advice.append(f"{over} of {len(lengths)} {split} prompts ({share:.0%}, the longest {max(lengths)} tokens) "
                          f"do not fit the prompt budget of {room} tokens ({bound[1]} {bound[0]} minus {budget[1]} "
                          f"{budget[0]}): {'they would be cut' if 'max_length' in bound[1] else 'they cannot fit'}. "
                          f"Raise {bound[1]}, lower {budget[1]}, or shorten the prompt (prompts.system, data).")
    if not parts:
        return Check("prompt_length", "skip", "no prompt budget known (the model's config names no context length)",
                     figures=figures)
    status = "fail" if advice else "pass"
    return Check("prompt_length", status, "; ".join(parts), " ".join(advice), figures)


def check_gold_answers(stats: dict[str, Any], max_share: float) -> Check:
    """Rows refused at load (their gold answer does not read as the answer type), from the data stats."""
    refused = int(stats.get("train_skipped", 0)) + int(stats.get("test_skipped", 0))
    kept = int(stats.get("train_rows", 0)) + int(stats.get("test_rows", 0))
    share = refused / max(refused + kept, 1)
    reasons = {k.removeprefix("skipped/"): v for k, v in stats.items() if k.startswith("skipped/")}
    top = "; ".join(f"{k}: {v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])[:3])
    summary = f"{refused} of {refused + kept} rows refused at load ({share:.0%})" + (f": {top}" if top else "")
    figures = {"refused": refused, "rows": refused + kept, "share": share, "reasons": reasons}
    if share > max_share:
        return Check("gold_answers", "fail", summary,
                     f"{share:.0%} of rows were refused because their gold answer does not read as the data's answer "
                     f"type ({top}). Check data.answer_type, data.answer_field and data.answer_pattern: a run would "
                     "train on the rest only.", figures)
    return Check("gold_answers", "pass", summary, figures=figures)


def _question(row: dict[str, Any]) -> str:
    question = row.get("question")
    if question is None:  # the last user message of the chat prompt
        question = next((m["content"] for m in reversed(row["prompt"]) if m.get("role") == "user"), "")
    return " ".join(str(question).casefold().split())


def check_overlap(train: list[dict[str, Any]], test: list[dict[str, Any]], stats: dict[str, Any],
                  max_share: float) -> Check:
    """Held-out questions (case and spacing ignored) that a training row also asks."""
    seen = {_question(r) for r in train}
    shared = sum(_question(r) in seen for r in test)
    share = shared / max(len(test), 1)
    dropped = int(stats.get("train_dropped_overlap", 0))
    summary = f"{shared} of {len(test)} held-out questions also in training ({share:.0%})" + (
        f"; {dropped} training rows dropped at load for being held out" if dropped else "")
    figures = {"shared": shared, "test_rows": len(test), "share": share, "dropped_at_load": dropped}
    if share > max_share:
        return Check("overlap", "fail", summary,
                     f"{shared} held-out questions are also training questions: the evaluation would measure recall, "
                     "not learning. Use disjoint files (data.path) or splits, or a different data.seed.", figures)
    return Check("overlap", "pass", summary, figures=figures)


def _prompt_text(prompts: Any) -> str:
    return " ".join(t for t in (prompts.system, prompts.user) if t)


def _correct_share(rows: list[dict[str, Any]], fmt: AnswerFormat, scorer: Scorer, boxed: bool = False) -> float:
    """Share of ``rows`` whose gold answer, written in ``fmt`` (or in ``\\boxed{}``), ``scorer`` reads as correct."""
    if not rows:
        return 0.0
    texts = [f"The answer is {BOXED}{{{r['answer']}}}." if boxed else gold_completion(str(r["answer"]), fmt)
             for r in rows]
    return sum(scorer(t, r).correct for t, r in zip(texts, rows)) / len(rows)


def _where(fmt: AnswerFormat) -> str:
    if fmt.answer_markers:
        return f"between {fmt.answer_markers[0]} and {fmt.answer_markers[1]}"
    return f"after '{HASHES}'" if fmt.answer_style == "gsm8k" else "as the reply's last number"


def check_answer_format(prompts: Any, rows: list[dict[str, Any]], scorer: Scorer, min_share: float) -> Check:
    """Whether the prompt asks for the format the scorer reads, and whether that format carries the answers."""
    fmt, text = scorer.fmt, _prompt_text(prompts)
    own = _correct_share(rows, fmt, scorer)
    figures: dict[str, Any] = {"reads": _where(fmt), "gold_in_format_correct": own}
    problems = []
    markers = [m for pair in (fmt.answer_markers, fmt.reasoning_markers) if pair for m in pair]
    if fmt.answer_style == "gsm8k":
        markers.append(HASHES)
    missing = [m for m in markers if m not in text]
    if missing:
        problems.append(f"the prompt never names {', '.join(missing)}, and the scorer reads the answer {_where(fmt)}: "
                        "ask for it in prompts.system (${get_marker:answer_start} names the configured marker)")
    asked = {k: f for k, f in FORMATS.items() if k in text and k not in markers}
    if BOXED in text:
        asked[BOXED] = fmt
    figures["asks_for_other"] = sorted(asked)
    for marker, other in asked.items():
        share = _correct_share(rows, other, scorer, boxed=marker == BOXED)
        figures[f"gold_as_{marker}_correct"] = share
        if share < min_share:
            problems.append(f"the prompt asks for '{marker}', but the scorer reads the answer {_where(fmt)}: a correct "
                            f"answer written as asked scores correct on {share:.0%} of rows. Pick the prompts option "
                            "of that format (prompts=gsm8k, xml_tags, working_out) or change prompts.system")
    if own < min_share:
        problems.append(f"a correct answer written {_where(fmt)} scores correct on only {own:.0%} of rows: this format "
                        f"cannot carry {scorer.verifier.answer_type} answers (a word where the last number is read?); "
                        "ask for an answer block (prompts=xml_tags)")
    summary = (f"the scorer reads the answer {_where(fmt)}; the prompt "
               + ("asks for it" if not missing else f"never names {', '.join(missing)}")
               + (f" and also for {', '.join(sorted(asked))}" if asked else "")
               + f"; gold answers in that format score correct on {own:.0%} of {len(rows)} rows")
    if problems:
        return Check("answer_format", "fail", summary, "; ".join(problems) + ".", figures)
    return Check("answer_format", "pass", summary, figures=figures)


def check_audit(rows: list[dict[str, Any]], scorer: Scorer, suite: RewardSuite, max_hack_fraction: float,
                seed: int) -> Check:
    """The reward-hacking audit on ``rows`` (see :mod:`rlvr.audit`)."""
    if not rows:
        return Check("reward_audit", "skip", "no rows (preflight.audit_rows=0)")
    try:
        report = audit(rows, scorer, suite, max_hack_fraction, seed)
    except ValueError as e:  # no row's gold can be written in the prompt's format: answer_format says why
        return Check("reward_audit", "skip", f"nothing to audit against: {e}")
    worst = max(report.hacks, key=lambda h: h.share)
    figures = {"rows": report.rows, "correct": report.correct, "wrong": report.wrong,
               "hacks": {h.name: round(h.share, 3) for h in report.hacks}}
    summary = (f"{report.rows} rows: correct {report.correct:.2f}, wrong {report.wrong:.2f}; the best hack, "
               f"{worst.name}, earns {worst.share:.0%} of the difference")
    if report.passed:
        return Check("reward_audit", "pass", summary, figures=figures)
    return Check("reward_audit", "fail", summary, report.verdict().removeprefix("FAIL: ")
                 + " (python -m rlvr.audit shows each hack).", figures)
