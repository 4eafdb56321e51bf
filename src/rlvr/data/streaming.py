"""Streaming data (``data.streaming=true``): training rows read through `datasets`' iterable datasets, so a
dataset larger than memory trains in flat memory, while the held-out set stays a fixed sample in memory.

    records    datasets.load_dataset(json | parquet | a Hub id, streaming=True), one split at a time
    held out   the first test_size rows of a seeded buffered shuffle of the test split (a single file: of that
               file); the held-out questions are dropped from training
    training   TrainStream: the train split's rows in blocks of shuffle_buffer rows, each block permuted by
               (seed, epoch, block); endless, epoch after epoch (the trainer stops at max_steps)

Position. A training loop reads through a :class:`StreamReader`. Every row carries its ``stream_index``; the
reader keeps, for each block it has read and the trainer has not consumed yet, the source's own ``state_dict()``
at the block's start, so the position after any row is that state plus the row's offset in its block
(:meth:`StreamReader.state`). A checkpoint saves the position after the last row the trainer consumed
(:mod:`rlvr.train.checkpoints`). A resumed reader loads the source at the block's start (``load_state_dict``:
files and Arrow tables before it are skipped, not parsed), reads that one block again, permutes it the same way
and goes on at the offset: the resumed run sees exactly the rows the uninterrupted run would have.

Processes. Under a launcher every rank reads the same stream, and the trainer's data loader (accelerate's
``IterableDatasetShard``, which TRL's GRPO relies on so that a group's completions stay together) hands each rank
its contiguous slice of every global batch, as TRL's sampler does with an in-memory dataset. ``datasets``'
``split_dataset_by_node`` would give each rank its own files instead, but accelerate shards the loader's stream
again (by files or by batch slices), so the two together would drop or split the rows.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from rlvr.data.sources import BadRow, Parser, get_field, make_row, resolve_path, split_files
from rlvr.errors import ConfigError
from rlvr.interfaces import DataSplits

log = logging.getLogger(__name__)

TEST_SIZE = 500  # held-out rows when data.test_size is null: a stream's length is not known in advance
BLOCK = 1000  # rows per block with shuffle_buffer=0 (file order): the unit a resumed reader reads again
BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}
# Bytes of a jsonl file parsed at a time. datasets' default (10 MiB) costs about 100 MiB of peak memory whatever the
# file's size; 1 MiB about 25 MiB, at a comparable speed (bench/streaming_memory.py, README "Streaming data").
JSON_CHUNK = 1 << 20


@dataclass(frozen=True)
class Records:
    """Where one split's records stream from: local files of one type (``builder`` json or parquet,
    ``data_files``) or a split of a Hugging Face dataset (``builder`` is its id)."""

    where: str
    builder: str
    data_files: tuple[str, ...] = ()
    config: str | None = None
    split: str = "train"

    def open(self) -> Any:
        """A fresh ``datasets.IterableDataset`` of the records, at their start."""
        import datasets

        try:
            if self.data_files:
                chunk = {"chunksize": JSON_CHUNK} if self.builder == "json" else {}
                return datasets.load_dataset(self.builder, data_files=list(self.data_files), split="train",
                                             streaming=True, **chunk)
            return datasets.load_dataset(self.builder, self.config, split=self.split, streaming=True)
        except Exception as e:  # noqa: BLE001 - offline, unknown id, no such split: all fixed the same way
            raise ConfigError(f"Could not stream {self.where}: {type(e).__name__}: {e}. Check data.path or "
                              "data.hub_id, data.hub_config and data.train_split/test_split.") from None


def record_sources(path: str | None, hub_id: str | None, hub_config: str | None,
                   splits: tuple[str, str]) -> tuple[Records, Records]:
    """The train and test records of local files (a single file holds both) or of a Hub dataset."""
    if path:
        root = resolve_path(path)
        if root.is_file():
            one = _files([root])
            return one, one
        train, test = (_files(split_files(root, split)) for split in splits)
        return train, test
    if not hub_id:
        raise ConfigError("Set data.path (local jsonl/json/parquet files) or data.hub_id (a Hugging Face dataset).")
    train, test = (Records(f"{hub_id}[{split}]", hub_id, config=hub_config, split=split) for split in splits)
    return train, test


def _files(files: list[Path]) -> Records:
    kinds = {BUILDERS.get(f.suffix) for f in files}
    if None in kinds:
        raise ConfigError(f"data.path: cannot stream {files[0]}: use {', '.join(BUILDERS)} files.")
    if len(kinds) > 1:
        raise ConfigError(f"data.path: one split mixes file types ({', '.join(sorted(map(str, kinds)))}); "
                          "data.streaming reads one type per split.")
    return Records(", ".join(map(str, files)), kinds.pop(), tuple(map(str, files)))


def read(records: Any, where: str) -> Iterator[Any]:
    """The records of a stream, a record pyarrow cannot parse (a line that is not JSON, a field whose type changes)
    a ConfigError naming the file."""
    it = iter(records)
    while True:
        try:
            record = next(it)
        except StopIteration:
            return
        except ValueError as e:  # pyarrow's ArrowInvalid
            raise ConfigError(f"Cannot stream {where}: {str(e).splitlines()[0]}. A stream stops at such a record; fix "
                              "it, or set data.streaming=false (which skips and counts it).") from None
        yield record


@dataclass(frozen=True)
class RowMaker:
    """Turns a record into a row as the in-memory path does (:func:`rlvr.data.sources.make_row`), with the
    further ``columns`` read from the record; raises BadRow."""

    parse: Parser
    prompt: Any
    task: str
    columns: tuple[tuple[str, str], ...] = ()

    def __call__(self, record: Any) -> dict[str, Any]:
        row = make_row(record, self.parse, self.prompt, self.task)
        row.update({name: get_field(record, path) for name, path in self.columns})
        return row


def sample_rows(records: Records, to_row: RowMaker, size: int, seed: int, buffer: int
                ) -> tuple[list[dict[str, Any]], Counter]:
    """The first ``size`` usable rows of a seeded buffered shuffle of ``records`` (in file order with
    ``buffer=0``), and the records skipped, counted by ``"field: reason"``."""
    stream = records.open()
    if buffer:
        stream = stream.shuffle(seed=seed, buffer_size=buffer)
    rows, skipped = [], Counter()
    for record in read(stream, records.where):
        try:
            rows.append(to_row(record))
        except BadRow as e:
            skipped[f"{e.field}: {e.reason}"] += 1
            continue
        if len(rows) == size:
            break
    return rows, skipped


class TrainStream:
    """The training rows of a streamed dataset: ``source``'s records made rows by ``to_row`` (bad ones skipped
    and counted per epoch), those whose question is in ``held_out`` dropped, at most ``limit`` per epoch, in blocks
    of ``shuffle_buffer`` rows, each permuted by (``seed``, epoch, block) (``shuffle_buffer=0``: file order).
    Endless: a pass ends and the next begins. Read it through :meth:`reader`, one per training loop."""

    def __init__(self, source: Records, to_row: RowMaker, held_out: frozenset[str], seed: int, shuffle_buffer: int,
                 limit: int | None):
        self.source, self.to_row, self.held_out, self.seed, self.limit = source, to_row, held_out, seed, limit
        self.block, self.shuffle = shuffle_buffer or BLOCK, shuffle_buffer > 0

    def reader(self) -> "StreamReader":
        return StreamReader(self)

    def order(self, n: int, epoch: int, block: int) -> list[int]:
        """The order in which a block of ``n`` rows is yielded."""
        order = list(range(n))
        if self.shuffle:
            random.Random(f"{self.seed}:{epoch}:{block}").shuffle(order)
        return order

    def read_block(self, records: Iterator[Any], size: int, skipped: Counter) -> list[dict[str, Any]]:
        """The next ``size`` usable training rows of ``records`` (fewer at the end)."""
        rows: list[dict[str, Any]] = []
        for record in records:
            try:
                row = self.to_row(record)
            except BadRow as e:
                skipped[f"{e.field}: {e.reason}"] += 1
                continue
            if row["question"] not in self.held_out:
                rows.append(row)
                if len(rows) == size:
                    break
        return rows

    def __repr__(self) -> str:
        return f"TrainStream({self.source.where})"


START = {"epoch": 0, "block": 0, "source": None, "taken": 0, "offset": 0, "index": 0}


class StreamReader:
    """One training loop's pass over a :class:`TrainStream`: :meth:`dataset` is what the trainer iterates,
    :meth:`state` the position after a row to save with a checkpoint, :meth:`resume` sets where it starts."""

    def __init__(self, stream: TrainStream):
        self.stream = stream
        self.start: dict[str, Any] = dict(START)
        self._blocks: dict[int, dict[str, Any]] = {}  # first stream_index of a block -> where the block starts

    def dataset(self, transform: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None) -> Any:
        """The rows as a ``datasets.IterableDataset`` (what TRL takes), each with its ``stream_index``; with
        ``transform``, what it makes of each row (the ``stream_index`` kept), rows it maps to None left out."""
        from datasets import IterableDataset

        if transform is None:
            return IterableDataset.from_generator(self.rows)
        return IterableDataset.from_generator(self._transformed, gen_kwargs={"transform": transform})

    def _transformed(self, transform: Callable[[dict[str, Any]], dict[str, Any] | None]) -> Iterator[dict[str, Any]]:
        for row in self.rows():
            out = transform(row)
            if out is not None:
                yield {**out, "stream_index": row["stream_index"]}

    def resume(self, state: dict[str, Any]) -> None:
        """Start after the row :meth:`state` was taken at (read when the dataset is next iterated)."""
        self.start = dict(state)

    def state(self, index: int) -> dict[str, Any]:
        """The position after row ``index`` (JSON): its block's epoch, number and source state, the rows taken in
        the epoch before the block, and the offset of the next row in the block."""
        after = index + 1
        for first, block in sorted(self._blocks.items(), reverse=True):
            if first <= after <= first + block["size"]:
                return {"epoch": block["epoch"], "block": block["block"], "source": block["source"],
                        "taken": block["taken"], "offset": after - first, "index": after}
        if after == self.start["index"]:  # nothing read since the start
            return dict(self.start)
        raise RuntimeError(f"stream position {after} is no longer known (kept from {min(self._blocks, default=None)})")

    def forget(self, index: int) -> None:
        """Drop what :meth:`state` needs for positions before row ``index`` (consumed by the trainer)."""
        for first in [f for f, b in self._blocks.items() if f + b["size"] < index + 1]:
            del self._blocks[first]

    def rows(self) -> Iterator[dict[str, Any]]:
        """Yield the training rows from :attr:`start` on, endlessly."""
        s = self.stream
        epoch, block, state, taken, offset, index = (self.start[k] for k in
                                                      ("epoch", "block", "source", "taken", "offset", "index"))
        while True:
            records = s.source.open()
            if state is not None:
                records.load_state_dict(state)
            it, skipped = read(records, s.source.where), Counter()
            while s.limit is None or taken < s.limit:
                rows = s.read_block(it, s.block if s.limit is None else min(s.block, s.limit - taken), skipped)
                if not rows:
                    break
                self._blocks[index - offset] = {"epoch": epoch, "block": block, "source": state, "taken": taken,
                                                "size": len(rows)}
                for j in s.order(len(rows), epoch, block)[offset:]:
                    yield {**rows[j], "stream_index": index}
                    index += 1
                taken, block, offset, state = taken + len(rows), block + 1, 0, records.state_dict()
            if skipped:
                log.warning("data: skipped %d records of %s in pass %d (%s)", sum(skipped.values()), s.source.where,
                            epoch + 1, "; ".join(f"{k}: {v}" for k, v in skipped.most_common()))
            if taken == 0:
                raise ConfigError(f"No usable training row in {s.source.where} (every record skipped or held out).")
            epoch, block, state, taken = epoch + 1, 0, None, 0


def load_splits(*, path: str | None, hub_id: str | None, hub_config: str | None, splits: tuple[str, str],
                parse: Parser, prompt: Any, task: str, train_size: int | None, test_size: int | None, seed: int,
                shuffle_buffer: int, columns: dict[str, str]) -> DataSplits:
    """Held-out rows in memory (``test_size``, default :data:`TEST_SIZE`) and the training rows as a
    :class:`TrainStream`; nothing else of the dataset is held."""
    from datasets import Dataset

    train, test = record_sources(path, hub_id, hub_config, splits)
    to_row = RowMaker(parse, prompt, task, tuple(columns.items()))
    held_out, skipped = sample_rows(test, to_row, test_size or TEST_SIZE, seed, shuffle_buffer)
    if not held_out:
        reason = skipped.most_common(1)[0][0] if skipped else "the split is empty"
        raise ConfigError(f"No usable row in {test.where}: {reason}. Check the file and the field names in the data "
                          "config.")
    if skipped:
        log.warning("data: skipped %d records while drawing the held-out rows from %s (%s)", sum(skipped.values()),
                    test.where, "; ".join(f"{k}: {v}" for k, v in skipped.most_common()))
    stream = TrainStream(train, to_row, frozenset(r["question"] for r in held_out), seed, shuffle_buffer, train_size)
    next(stream.reader().rows())  # a stream with no training row fails now, not at the first step
    stats = {"source": train.where if train.where == test.where else f"{train.where} | {test.where}",
             "streaming": True, "test_rows": len(held_out), "test_skipped": sum(skipped.values())}
    return DataSplits(stream, Dataset.from_list(held_out), stats)
