"""Question/answer datasets from files or the Hub with configurable fields: GSM8K and your own jsonl.

``data=gsm8k`` and ``data=jsonl`` are two configs of :class:`QAData`: GSM8K is a question field and an answer
field whose gold number follows ``####``; a custom file names its own fields (dotted paths reach nested ones)
and says whether its answers are numbers, text or math expressions.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from rlvr.data.difficulty import DifficultyFilter
from rlvr.data.prompts import PromptTemplate
from rlvr.data.sources import BadRow, build_splits, get_field, load_records, resolve_path
from rlvr.data.streaming import load_splits
from rlvr.errors import ConfigError
from rlvr.interfaces import AtLeastOne, Count, DataSplits, Verifier
from rlvr.schema import checked
from rlvr.scoring.verifiers import (
    ChoiceVerifier,
    ListVerifier,
    MathVerifier,
    NumberVerifier,
    TextVerifier,
)


@checked("data")
class QAData:
    """Rows of (question, gold answer) from local jsonl/json/parquet files or a Hugging Face dataset.

    Args:
        path: local file or directory (``train.jsonl`` + ``test.jsonl``, or parquet/json), relative to the
            working directory. Takes precedence over ``hub_id``.
        hub_id, hub_config: a dataset on the Hugging Face Hub (``openai/gsm8k``, ``main``).
        train_split, test_split: split names (file stems in a directory, or hub splits).
        question_field, answer_field: where the question and the answer are (``qa.question`` for nested).
        answer_pattern: optional regex whose first group is the gold answer inside the answer field
            (GSM8K: ``####\\s*(.+?)\\s*$``); a row it does not match is skipped and counted.
        answer_type: what kind of answer the rows have, so it is read and compared by its kind (see
            :mod:`rlvr.scoring.verifiers`): ``integer``, ``number`` (decimals, fractions, percents; within
            ``rel_tol``), ``expression`` (symbolic, through math-verify), ``string`` (the whole text, case and
            spacing ignored), ``choice`` (one option letter of ``choices``) or ``list`` (comma-separated items).
            A gold answer that does not read as this type is refused at load time and counted.
        rel_tol: relative tolerance of ``number`` answers.
        choices: the option letters of ``choice`` answers.
        ordered: whether the order of ``list`` items matters.
        task: value of the ``task`` column (per-task accuracy, task-specific rewards).
        train_size, test_size: rows kept per split (drawn with ``seed``); null keeps all. With a single file,
            ``test_size`` rows of it are held out (default a tenth, at most 500).
        seed: seed of those draws.
        columns: further row columns and the record fields they come from (dotted paths), e.g. a preference
            dataset's ``{chosen: chosen, rejected: rejected}`` (or ``{completion: output, label: is_good}`` for
            KTO), which ``train.preferences=dataset`` trains on and ``eval=pairwise`` scores; a record lacking
            one is skipped and counted.
        streaming: read the records through ``datasets``' iterable datasets instead of loading them
            (:mod:`rlvr.data.streaming`): training rows stream in flat memory, a run resumes at the exact row;
            ``test_size`` rows (default 500) are held out in memory. ``train=grpo`` and ``train=sft`` train on it.
        shuffle_buffer: with ``streaming``, training rows are shuffled within blocks of this many rows (seeded
            by ``seed`` and the pass); 0 keeps the file's order.
        difficulty_filter: drop prompts the base model always or never solves before training, skip prompts whose
            groups keep coming out flat during it (:class:`rlvr.data.difficulty.DifficultyFilter`).
    """

    def __init__(
        self,
        path: str | None = None,
        hub_id: str | None = None,
        hub_config: str | None = None,
        train_split: str = "train",
        test_split: str = "test",
        question_field: str = "question",
        answer_field: str = "answer",
        answer_pattern: str | None = None,
        answer_type: Literal["integer", "number", "expression", "string", "choice", "list"] = "number",
        rel_tol: float = 1e-6,
        choices: str = "ABCDE",
        ordered: bool = True,
        task: str = "qa",
        train_size: AtLeastOne | None = None,
        test_size: AtLeastOne | None = None,
        seed: int = 0,
        columns: dict[str, str] = {},  # noqa: B006
        streaming: bool = False,
        shuffle_buffer: Count = 1000,
        difficulty_filter: DifficultyFilter = DifficultyFilter(),  # noqa: B008 - copied into the schema
    ):
        try:
            self.pattern = re.compile(answer_pattern, flags=re.DOTALL | re.MULTILINE) if answer_pattern else None
        except re.error as e:
            raise ConfigError(f"data.answer_pattern {answer_pattern!r} is not a valid regex: {e}") from None
        if self.pattern is not None and self.pattern.groups < 1:
            raise ConfigError(f"data.answer_pattern {answer_pattern!r} needs a group (...) around the answer.")
        if not path and not hub_id:
            raise ConfigError("Set data.path (local jsonl/json/parquet files) or data.hub_id (a Hugging Face dataset).")
        self.path = str(resolve_path(path)) if path else None  # a missing file fails now, before anything loads
        self.hub_id, self.hub_config = hub_id, hub_config
        self.splits = (train_split, test_split)
        self.question_field, self.answer_field, self.answer_type = question_field, answer_field, answer_type
        self.rel_tol, self.choices, self.ordered, self.task = rel_tol, choices, ordered, task
        self.train_size, self.test_size, self.seed = train_size, test_size, seed
        taken = {"prompt", "question", "answer", "task", "entry"} & set(columns)
        if taken:
            raise ConfigError(f"data.columns: {', '.join(sorted(taken))} is a column of every row already; "
                              "give the extra column another name.")
        self.columns = dict(columns)
        self.streaming, self.shuffle_buffer = streaming, shuffle_buffer
        self.difficulty_filter = (difficulty_filter if isinstance(difficulty_filter, DifficultyFilter)
                                  else DifficultyFilter(**difficulty_filter))
        if streaming and (self.difficulty_filter.samples or self.difficulty_filter.flat_epochs):
            raise ConfigError("data.difficulty_filter samples every training prompt before training and revisits "
                              "prompts by epoch, which a stream (data.streaming=true) cannot give: set "
                              "data.streaming=false or data.difficulty_filter.samples=0 and flat_epochs=0.")

    @property
    def verifier(self) -> Verifier:
        if self.answer_type in ("integer", "number"):
            return NumberVerifier(rel_tol=self.rel_tol, integer=self.answer_type == "integer")
        if self.answer_type == "choice":
            return ChoiceVerifier(self.choices)
        if self.answer_type == "list":
            return ListVerifier(self.ordered)
        return MathVerifier() if self.answer_type == "expression" else TextVerifier()

    def parse(self, record: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
        """``(question, gold, entry)`` of one record; raises BadRow (skipped and counted) when unusable."""
        question = str(get_field(record, self.question_field)).strip()
        raw = str(get_field(record, self.answer_field))
        gold = raw.strip()
        if self.pattern is not None:
            m = self.pattern.search(raw)
            if m is None or not (m.group(1) or "").strip():
                raise BadRow(self.answer_field, "does not match answer_pattern")
            gold = m.group(1).strip()
        for path in self.columns.values():
            get_field(record, path)  # present and not empty, or the record is skipped and counted
        return question, self._check_gold(gold), record

    def _check_gold(self, gold: str) -> str:
        try:
            return self.verifier.gold(gold)
        except ValueError as e:
            raise BadRow(self.answer_field, f"not a valid {self.answer_type} answer") from e

    def load(self, prompt: PromptTemplate) -> DataSplits:
        """Both splits as rows; malformed records are skipped and counted in the stats."""
        if self.streaming:
            return load_splits(path=self.path, hub_id=self.hub_id, hub_config=self.hub_config, splits=self.splits,
                               parse=self.parse, prompt=prompt, task=self.task, train_size=self.train_size,
                               test_size=self.test_size, seed=self.seed, shuffle_buffer=self.shuffle_buffer,
                               columns=self.columns)
        train, test = load_records(path=self.path, hub_id=self.hub_id, hub_config=self.hub_config,
                                   splits=self.splits, test_size=self.test_size, seed=self.seed)
        splits = build_splits(train, test, self.parse, prompt, task=self.task, train_size=self.train_size,
                              test_size=self.test_size, seed=self.seed)
        if self.columns:
            splits.train, splits.test = self._with_columns(splits.train), self._with_columns(splits.test)
        return self.difficulty_filter.attach(splits)

    def _with_columns(self, rows: Any) -> Any:
        """``rows`` with a column per ``self.columns`` entry, read from each row's source record."""
        entries = [json.loads(e) for e in rows["entry"]]
        for name, path in self.columns.items():
            rows = rows.add_column(name, [get_field(e, path) for e in entries])
        return rows
