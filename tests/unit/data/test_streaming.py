"""data.streaming=true: a fixed held-out sample in memory, kept out of training; training rows from jsonl, parquet
and a Hub-style dataset directory in a seeded block-shuffled order, pass after pass; the position after any row
saved as JSON and resumed exactly; bad records skipped; a stream's peak memory does not grow with the file
(measured in subprocesses on a file four times larger than the memory the test allows)."""

from __future__ import annotations

import itertools
import json
import random
import subprocess
import sys
import textwrap

import pytest

from rlvr.data import PromptTemplate, QAData
from rlvr.data.streaming import TrainStream
from rlvr.errors import ConfigError
from tests.conftest import REPO, build_group, compose

PROMPT = PromptTemplate(system="Solve it.", user="Q: {question}")


def records(n: int, start: int = 0) -> list[dict]:
    return [{"question": f"What is {i} + 1?", "answer": str(i + 1)} for i in range(start, start + n)]


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return str(path)


def write_parquet(path, rows, row_group_size=7):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=row_group_size)


def stream_data(**settings) -> QAData:
    return QAData(streaming=True, **settings)


def take(reader, n: int) -> list[dict]:
    return list(itertools.islice(reader.rows(), n))


def test_held_out_rows_are_a_fixed_sample_in_memory_and_never_trained_on(tmp_path):
    path = write_jsonl(tmp_path / "data.jsonl", records(60))
    splits = stream_data(path=path, test_size=8, shuffle_buffer=16, seed=3).load(PROMPT)
    again = stream_data(path=path, test_size=8, shuffle_buffer=16, seed=3).load(PROMPT)
    assert isinstance(splits.train, TrainStream) and len(splits.test) == 8
    assert splits.test.to_list() == again.test.to_list()  # the same sample every time
    held_out = set(splits.test["question"])
    assert held_out != {f"What is {i} + 1?" for i in range(8)}  # drawn from a shuffle, not the first rows
    one_pass = take(splits.train.reader(), 52)
    assert {r["question"] for r in one_pass} == {r["question"] for r in records(60)} - held_out  # each row once
    assert [r["stream_index"] for r in one_pass] == list(range(52))
    assert one_pass[0]["prompt"] == [{"role": "system", "content": "Solve it."},
                                     {"role": "user", "content": f"Q: {one_pass[0]['question']}"}]
    assert splits.stats == {"source": path, "streaming": True, "test_rows": 8, "test_skipped": 0}


def test_training_rows_come_block_shuffled_pass_after_pass(tmp_path):
    path = write_jsonl(tmp_path / "data.jsonl", records(30))
    stream = stream_data(path=path, test_size=2, train_size=10, shuffle_buffer=4).load(PROMPT).train
    rows = [r["question"] for r in take(stream.reader(), 30)]
    passes = [rows[:10], rows[10:20], rows[20:30]]
    assert all(set(p) == set(passes[0]) for p in passes) and len(set(passes[0])) == 10  # train_size rows a pass
    assert passes[0] != passes[1]  # each pass its own order
    first = [int(q.split()[2]) for q in passes[0]]
    assert first != sorted(first)
    blocks = [first[:4], first[4:8], first[8:]]  # each block a permutation of 4 consecutive rows of the file
    assert [sorted(b) for b in blocks] == [sorted(first)[:4], sorted(first)[4:8], sorted(first)[8:]]
    in_order = stream_data(path=path, test_size=2, train_size=10, shuffle_buffer=0).load(PROMPT).train
    ordered = [int(r["question"].split()[2]) for r in take(in_order.reader(), 10)]
    assert ordered == sorted(ordered)  # shuffle_buffer=0: the file's order


@pytest.mark.parametrize("kind", ["jsonl", "parquet", "hub"])
def test_the_position_after_any_row_resumes_exactly(tmp_path, kind):
    """Positions anywhere (inside a block, at a block's end, in a later pass) saved as JSON: a new reader started
    there yields exactly what the first went on to yield."""
    if kind == "jsonl":
        settings = {"path": write_jsonl(tmp_path / "data.jsonl", records(40))}
    else:
        folder = tmp_path / "dataset" / "data"
        folder.mkdir(parents=True)
        write_parquet(folder / "train-00000-of-00002.parquet", records(20))
        write_parquet(folder / "train-00001-of-00002.parquet", records(20, start=20))
        write_parquet(folder / "test-00000-of-00001.parquet", records(10, start=100))
        where = str(folder) if kind == "parquet" else str(tmp_path / "dataset")  # a Hub-style repository
        settings = {"path": where} if kind == "parquet" else {"hub_id": where}
    stream = stream_data(test_size=4, train_size=33, shuffle_buffer=6, **settings).load(PROMPT).train
    reader = stream.reader()
    rows = take(reader, 100)  # three passes of 33 rows
    for index in sorted(random.Random(kind).sample(range(99), 6)) + [5, 32, 65]:
        resumed = stream.reader()
        resumed.resume(json.loads(json.dumps(reader.state(index))))
        assert take(resumed, 100 - index - 1) == rows[index + 1:], index


def test_a_reader_forgets_what_was_consumed(tmp_path):
    stream = stream_data(path=write_jsonl(tmp_path / "d.jsonl", records(40)), test_size=2,
                         shuffle_buffer=5).load(PROMPT).train
    reader = stream.reader()
    take(reader, 30)
    reader.forget(20)
    assert reader.state(20)["index"] == 21
    with pytest.raises(RuntimeError, match="no longer known"):
        reader.state(3)


def test_bad_records_are_skipped_and_counted(tmp_path, caplog):
    bad = [{"question": "no answer"}, {"question": "", "answer": "3"}, {"question": "What?", "answer": "many"}]
    path = write_jsonl(tmp_path / "data.jsonl", bad + records(10))
    splits = stream_data(path=path, test_size=2, shuffle_buffer=0).load(PROMPT)
    rows = take(splits.train.reader(), 16)  # two passes of 8
    assert {r["question"] for r in rows} == {f"What is {i} + 1?" for i in range(10)} - set(splits.test["question"])
    assert "skipped 3 records" in caplog.text and "answer: not a valid number answer: 1" in caplog.text


def test_a_line_that_is_not_json_is_a_one_line_error_naming_the_file(tmp_path):
    path = write_jsonl(tmp_path / "data.jsonl", [*records(5), "{not json", *records(5, start=5)])
    with pytest.raises(ConfigError, match=r"Cannot stream .*data.jsonl: JSON parse error") as e:
        stream_data(path=path, test_size=2, shuffle_buffer=0).load(PROMPT)
    assert "\n" not in str(e.value)


def test_a_stream_without_a_training_row_fails_when_loaded(tmp_path):
    path = write_jsonl(tmp_path / "data.jsonl", records(3))
    with pytest.raises(ConfigError, match="No usable training row"):
        stream_data(path=path, test_size=3).load(PROMPT)


def test_data_jsonl_streaming_composes_with_its_settings(tmp_path):
    path = write_jsonl(tmp_path / "data.jsonl", records(20))
    data = build_group(compose(["data=jsonl", f"data.path={path}", "data.streaming=true", "data.test_size=4",
                                "data.shuffle_buffer=8"]), "data")
    assert data.streaming and data.shuffle_buffer == 8
    assert isinstance(data.load(PROMPT).train, TrainStream)


MEASURE = textwrap.dedent("""
    import sys, psutil
    from pathlib import Path
    from rlvr.data import PromptTemplate, QAData

    def peak_mib():  # this process's own peak resident memory (ru_maxrss would count a parent's before exec)
        status = Path("/proc/self/status").read_text().splitlines()
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 2**10

    def one_pass(path, rows):
        stream = QAData(path=path, streaming=True, test_size=2, shuffle_buffer=16).load(PromptTemplate()).train
        for row in stream.reader().rows():
            if row["stream_index"] + 1 == rows:
                return

    one_pass(sys.argv[3], 2)  # every library the stream uses is loaded now
    before = psutil.Process().memory_info().rss / 2**20
    one_pass(sys.argv[1], int(sys.argv[2]))
    print(peak_mib() - before)
""")


def test_peak_memory_stays_flat_on_a_file_larger_than_it(tmp_path):
    """One pass over a 32 MiB and a 128 MiB file, each in a fresh process: the peak resident memory above the
    process's memory before the pass (libraries loaded) stays under 32 MiB for both, a quarter of the large file,
    and grows by less than 8 MiB from the small file to the large one."""
    allowed = 32
    text = "x" * 32000  # 32 kB questions: few rows, so the test is quick
    sizes = {}
    for name, n in (("small", 1050), ("large", 4200)):
        path = tmp_path / f"{name}.jsonl"
        with path.open("w") as f:
            for i in range(n):
                f.write(json.dumps({"question": f"What is {i} + 1? {text}", "answer": str(i + 1)}) + "\n")
        sizes[name] = (path, n)
    write_jsonl(tmp_path / "tiny.jsonl", records(5))
    peaks = {}
    for name, (path, n) in sizes.items():
        proc = subprocess.run([sys.executable, "-c", MEASURE, str(path), str(n - 2), str(tmp_path / "tiny.jsonl")],
                              capture_output=True, text=True, timeout=300, cwd=REPO)
        assert proc.returncode == 0, proc.stderr[-2000:]
        peaks[name] = float(proc.stdout.split()[-1])
    large_mb = sizes["large"][0].stat().st_size / 2**20
    assert large_mb >= 4 * allowed
    assert peaks["small"] < allowed and peaks["large"] < allowed, peaks
    assert abs(peaks["large"] - peaks["small"]) < 8, peaks  # flat: the file grew by 96 MiB
