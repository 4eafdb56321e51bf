"""Loading question/answer records from local files or the Hugging Face Hub, and turning them into rows.

Shared by every file-backed data component (GSM8K, FinQA, custom jsonl): where the records come from
(:func:`load_records`), and how each record becomes a row or is skipped and counted (:func:`build_splits`).

Local paths may be a directory holding one file per split (``train.jsonl``, ``test.parquet``, hub-style shards
``train-00000-of-00001.parquet``...) or a single file that is split by ``test_size``. A relative path is
relative to the working directory.
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rlvr.errors import ConfigError
from rlvr.interfaces import DataSplits

log = logging.getLogger(__name__)
SUFFIXES = (".jsonl", ".json", ".parquet")


class BadRow(Exception):
    """A record that cannot become a row: it is skipped and counted, never trained on."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


@dataclass
class Source:
    """The records of one split and where they came from (for messages)."""

    records: list[Any]
    where: str
    split: str
    stats: dict[str, Any] = field(default_factory=dict)


def get_field(record: Any, path: str) -> Any:
    """``record["qa"]["question"]`` for ``path="qa.question"``; raises BadRow when absent or empty."""
    value = record
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            raise BadRow(path, "missing")
        value = value[part]
    if value is None or (isinstance(value, str) and not value.strip()):
        raise BadRow(path, "empty")
    return value


def resolve_path(path: str | Path, key: str = "data.path") -> Path:
    """An existing local path: absolute, or relative to the working directory."""
    p = Path(path).expanduser()
    if p.exists():
        return p.resolve()
    where = "" if p.is_absolute() else f" (relative to the working directory {Path.cwd()})"
    raise ConfigError(f"{key}: '{path}' does not exist{where}.")


def read_file(path: Path) -> list[Any]:
    """Every record of a jsonl/json/parquet file; a jsonl line that is not JSON, or not UTF-8, becomes ``None``
    (skipped and counted by the caller) instead of failing the whole file."""
    if path.suffix == ".jsonl":
        out: list[Any] = []
        for raw in path.read_bytes().splitlines():
            if raw.strip():
                try:
                    out.append(json.loads(raw.decode("utf-8")))
                except (UnicodeDecodeError, json.JSONDecodeError):
                    out.append(None)
        return out
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as e:
            raise ConfigError(f"{path} is not UTF-8 text (byte {e.start}): re-encode it as UTF-8.") from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path} is not valid JSON: {e}") from None
        if isinstance(data, dict):  # {"data": [...]} or {"train": [...]}: the one list inside
            lists = [v for v in data.values() if isinstance(v, list)]
            data = lists[0] if len(lists) == 1 else [data]
        return list(data)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    raise ConfigError(f"{path}: unsupported file type '{path.suffix}'; use one of {', '.join(SUFFIXES)}.")


def split_files(directory: Path, split: str) -> list[Path]:
    """Files of ``split`` in ``directory`` (recursively): ``train.jsonl``, ``train-00000-of-00002.parquet``...;
    a ConfigError when there is none."""
    files = sorted(
        p for p in directory.rglob("*")
        if p.is_file() and p.suffix in SUFFIXES
        and (p.stem == split or p.stem.startswith(f"{split}-") or p.stem.startswith(f"{split}_"))
    )
    if not files:
        raise ConfigError(
            f"data.path: no file for split '{split}' in {directory} (looked for {split}.jsonl, {split}.json, "
            f"{split}.parquet or {split}-*.parquet); set data.train_split / data.test_split to the names used."
        )
    return files


def load_records(
    *,
    path: str | None,
    hub_id: str | None,
    hub_config: str | None,
    splits: tuple[str, str],
    test_size: int | None,
    seed: int,
) -> tuple[Source, Source]:
    """Train and test records from ``path`` (local files) or else ``hub_id`` (``datasets.load_dataset``).

    A single file holds both splits: ``test_size`` records (default a tenth, at most 500) are drawn from it
    with ``seed`` as the held-out set.
    """
    train_split, test_split = splits
    if path:
        root = resolve_path(path)
        if root.is_file():
            records = read_file(root)
            if not records:
                raise ConfigError(f"data.path: {root} holds no records (an empty file).")
            n_test = test_size if test_size is not None else min(500, max(1, len(records) // 10))
            if n_test >= len(records):
                raise ConfigError(
                    f"data.test_size={n_test} leaves no training rows in {root} ({len(records)} records).")
            held_out = set(random.Random(seed).sample(range(len(records)), n_test))
            train = [r for i, r in enumerate(records) if i not in held_out]
            test = [r for i, r in enumerate(records) if i in held_out]
            return Source(train, str(root), "train"), Source(test, str(root), "test")
        out = []
        for split in (train_split, test_split):
            files = split_files(root, split)
            out.append(Source([r for f in files for r in read_file(f)], ", ".join(map(str, files)), split))
        return out[0], out[1]
    if not hub_id:
        raise ConfigError("Set data.path (local jsonl/json/parquet files) or data.hub_id (a Hugging Face dataset).")
    return _hub_split(hub_id, hub_config, train_split), _hub_split(hub_id, hub_config, test_split)


def _hub_split(hub_id: str, hub_config: str | None, split: str) -> Source:
    import datasets

    try:
        ds = datasets.load_dataset(hub_id, hub_config, split=split)
    except Exception as e:  # noqa: BLE001 - offline, unknown id, no such split: all fixed the same way
        raise ConfigError(
            f"Could not load '{hub_id}' (config {hub_config}, split {split}) from the Hugging Face Hub: "
            f"{type(e).__name__}: {e}. Check data.hub_id, data.hub_config and data.train_split/test_split, "
            "or point data.path at local jsonl/json/parquet files."
        ) from None
    return Source(list(ds), f"{hub_id}[{split}]", split)


Parser = Callable[[Any], tuple[str, str, dict[str, Any]]]


def make_row(record: Any, parse: Parser, prompt: Any, task: str) -> dict[str, Any]:
    """One row (``prompt``, ``question``, ``answer``, ``task``, ``entry``) from a record; raises :class:`BadRow`."""
    if not isinstance(record, dict):
        raise BadRow("<record>", "not a JSON object")
    question, answer, entry = parse(record)
    return {"prompt": prompt.messages(question), "question": question, "answer": answer, "task": task,
            "entry": json.dumps(entry, default=str)}


def build_rows(source: Source, parse: Parser, prompt: Any, task: str) -> tuple[list[dict[str, Any]], Counter]:
    """Rows (``prompt``, ``question``, ``answer``, ``task``, ``entry``) from records; bad ones skipped, counted
    by ``"field: reason"``. ``parse(record) -> (question, gold_answer, entry)`` raises :class:`BadRow`."""
    rows, skipped = [], Counter()
    for record in source.records:
        try:
            rows.append(make_row(record, parse, prompt, task))
        except BadRow as e:
            skipped[f"{e.field}: {e.reason}"] += 1
    if skipped:
        log.warning("data: skipped %d of %d rows in %s (%s)", sum(skipped.values()), len(source.records),
                    source.where, "; ".join(f"{k}: {v}" for k, v in skipped.most_common()))
    if not rows:
        reason = skipped.most_common(1)[0][0] if skipped else "the split is empty"
        raise ConfigError(
            f"No usable row in {source.where} ({source.split} split, {len(source.records)} records): {reason}. "
            "Check the file and the field names in the data config."
        )
    return rows, skipped


def build_splits(
    train: Source, test: Source, parse: Parser, prompt: Any, *, task: str, train_size: int | None,
    test_size: int | None, seed: int,
) -> DataSplits:
    """Parse both splits, subsample them to the configured sizes (seeded) and drop training rows whose
    question is also held out. Stats say how many rows were kept, skipped (and why) and dropped."""
    from datasets import Dataset

    test_rows, test_skipped = build_rows(test, parse, prompt, task)
    train_rows, train_skipped = build_rows(train, parse, prompt, task)
    test_rows = _sample(test_rows, test_size, seed)
    held_out = {r["question"] for r in test_rows}
    kept = [r for r in train_rows if r["question"] not in held_out]
    dropped = len(train_rows) - len(kept)
    if not kept:
        raise ConfigError(f"Every training question in {train.where} is also in the held-out set.")
    train_rows = _sample(kept, train_size, seed)
    stats = {
        "source": train.where if train.where == test.where else f"{train.where} | {test.where}",
        "train_rows": len(train_rows), "test_rows": len(test_rows),
        "train_skipped": sum(train_skipped.values()), "test_skipped": sum(test_skipped.values()),
        "train_dropped_overlap": dropped,
    }
    stats.update({f"skipped/{reason}": n for reason, n in (train_skipped + test_skipped).most_common()})
    return DataSplits(Dataset.from_list(train_rows), Dataset.from_list(test_rows), stats)


def _sample(rows: list[dict[str, Any]], size: int | None, seed: int) -> list[dict[str, Any]]:
    """``size`` rows drawn with ``seed`` (all of them when size is None or larger), in source order."""
    if size is None or size >= len(rows):
        return rows
    keep = sorted(random.Random(seed).sample(range(len(rows)), size))
    return [rows[i] for i in keep]
