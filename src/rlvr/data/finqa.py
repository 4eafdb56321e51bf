"""FinQA: numerical reasoning over a financial report's text and table.

Records follow the FinQA release (``pre_text``, ``table``, ``post_text``, ``qa.question``, ``qa.exe_ans`` or
``qa.answer``); flat records (``question``, ``answer``, as on the Hub) work too. The table is written into the
prompt as a Markdown table. Gold answers are numbers (often rounded, often fractions that people write as
percentages) or yes/no; the verifier accepts ``14.3%`` for ``0.14286`` and compares at the coarser precision.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from rlvr.data.difficulty import DifficultyFilter
from rlvr.data.prompts import PromptTemplate
from rlvr.data.sources import BadRow, build_splits, get_field, load_records, resolve_path
from rlvr.interfaces import AtLeastOne, DataSplits
from rlvr.schema import checked
from rlvr.scoring.extract import canonical_number
from rlvr.scoring.verifiers import YES_NO, FinQAVerifier

QUESTION_FIELDS = ("qa.question", "question")
ANSWER_FIELDS = ("qa.exe_ans", "exe_ans", "qa.answer", "answer", "final_result")


def linearise_table(table: Any) -> str:
    """A FinQA table (list of rows, the first one the header) as a Markdown table.

    >>> print(linearise_table([["", "2016", "2015"], ["revenue", "$ 1,200", "$ 1,000"]]))
    |  | 2016 | 2015 |
    | --- | --- | --- |
    | revenue | $ 1,200 | $ 1,000 |
    """
    rows = [[" ".join(str(c).replace("|", "/").split()) for c in row] for row in (table or []) if isinstance(row, list)]
    if not rows:
        return ""
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    lines = ["| " + " | ".join(r) + " |" for r in rows]
    lines.insert(1, "| " + " | ".join(["---"] * width) + " |")
    return "\n".join(lines)


def _text(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(v).strip() for v in value if str(v).strip())
    return str(value or "").strip()


def gold_answer(value: Any) -> str | None:
    """A FinQA gold answer as a canonical number string or yes/no; None when it is neither.

    >>> [gold_answer(v) for v in [0.14286, 1e-05, "94%", "$ 1,234", "(12)", "Yes", "n/a", float("nan")]]
    ['0.14286', '0.00001', '94', '1234', '-12', 'yes', None, None]
    """
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        try:
            number = Decimal(repr(value))
        except InvalidOperation:
            return None
        return canonical_number(format(number, "f")) if number.is_finite() else None
    text = str(value).strip()
    if text.casefold() in YES_NO:
        return text.casefold()
    return canonical_number(text.replace("$ ", "$"))



@checked("data")
class FinQAData:
    """FinQA rows: report text + table + question, gold answer from ``qa.exe_ans`` (or ``answer``).

    Args:
        path: the FinQA release's ``dataset/`` directory (``train.json``, ``dev.json``, ``test.json``) or any
            jsonl/json/parquet files in its format. Takes precedence over ``hub_id``.
        hub_id, hub_config: a FinQA copy on the Hugging Face Hub.
        train_split, test_split: split names (file stems, or hub splits).
        include_text: put the report's text before and after the table into the prompt (long); false keeps
            only the table and the question.
        rel_tol: relative tolerance of a correct answer (FinQA gold answers are rounded).
        train_size, test_size: rows kept per split (drawn with ``seed``); null keeps all.
        seed: seed of those draws.
        difficulty_filter: drop prompts the base model always or never solves before training, skip prompts whose
            groups keep coming out flat during it (:class:`rlvr.data.difficulty.DifficultyFilter`).
    """

    def __init__(
        self,
        path: str | None = None,
        hub_id: str | None = "ibm/finqa",
        hub_config: str | None = None,
        train_split: str = "train",
        test_split: str = "test",
        include_text: bool = True,
        rel_tol: float = 0.01,
        train_size: AtLeastOne | None = None,
        test_size: AtLeastOne | None = None,
        seed: int = 0,
        difficulty_filter: DifficultyFilter = DifficultyFilter(),  # noqa: B008 - copied into the schema
    ):
        self.path = str(resolve_path(path)) if path else None  # a missing file fails now, before anything loads
        self.hub_id, self.hub_config = hub_id, hub_config
        self.splits = (train_split, test_split)
        self.include_text, self.rel_tol = include_text, rel_tol
        self.train_size, self.test_size, self.seed = train_size, test_size, seed
        self.difficulty_filter = (difficulty_filter if isinstance(difficulty_filter, DifficultyFilter)
                                  else DifficultyFilter(**difficulty_filter))

    @property
    def verifier(self) -> FinQAVerifier:
        return FinQAVerifier(rel_tol=self.rel_tol)

    def parse(self, record: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
        """``(prompt text, gold, entry)`` of one FinQA record; raises BadRow when unusable."""
        question = str(_first(record, QUESTION_FIELDS)).strip()
        raw = _first(record, ANSWER_FIELDS)
        gold = gold_answer(raw)
        if gold is None:
            raise BadRow("qa.exe_ans", "not a number or yes/no")
        parts = []
        if self.include_text:
            parts.append(_text(record.get("pre_text")))
        parts.append(linearise_table(record.get("table")))
        if self.include_text:
            parts.append(_text(record.get("post_text")))
        parts.append(f"Question: {question}")
        qa = record.get("qa") if isinstance(record.get("qa"), dict) else record
        entry = {"id": record.get("id"), "question": question, "program": qa.get("program") or qa.get("program_re"),
                 "gold_raw": raw}
        return "\n\n".join(p for p in parts if p), gold, entry

    def load(self, prompt: PromptTemplate) -> DataSplits:
        """Both splits as rows; malformed records are skipped and counted in the stats."""
        train, test = load_records(path=self.path, hub_id=self.hub_id, hub_config=self.hub_config,
                                   splits=self.splits, test_size=self.test_size, seed=self.seed)
        return self.difficulty_filter.attach(build_splits(
            train, test, self.parse, prompt, task="finqa", train_size=self.train_size, test_size=self.test_size,
            seed=self.seed))


def _first(record: dict[str, Any], fields: tuple[str, ...]) -> Any:
    """The first of ``fields`` present and non-empty; BadRow naming the first field otherwise."""
    for name in fields:
        try:
            return get_field(record, name)
        except BadRow:
            continue
    raise BadRow(fields[0], "missing")
