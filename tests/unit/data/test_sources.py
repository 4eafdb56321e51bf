"""Where records come from: local files (jsonl/json/parquet, a directory of splits or one file split in two),
the Hub (stubbed: no network), and clear errors naming the path or key."""

from __future__ import annotations

import json

import pytest

from rlvr.data.sources import (
    BadRow,
    get_field,
    load_records,
    read_file,
    resolve_path,
    split_files,
)
from rlvr.errors import ConfigError
from tests.conftest import FIXTURES, REPO

GSM8K = FIXTURES / "gsm8k"  # 48 train and 24 test rows of the real files


def write_jsonl(path, records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def test_relative_path_is_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    assert resolve_path("tests/fixtures/gsm8k") == GSM8K.resolve()
    monkeypatch.chdir(tmp_path)
    assert resolve_path(str(GSM8K)) == GSM8K.resolve()
    with pytest.raises(ConfigError, match=f"relative to the working directory {tmp_path}"):
        resolve_path("tests/fixtures/gsm8k")


def test_missing_path_names_the_key():
    with pytest.raises(ConfigError, match="data.path: 'no/such/dir' does not exist"):
        resolve_path("no/such/dir")


@pytest.mark.parametrize(
    ("record", "path", "expected"),
    [
        ({"question": "q"}, "question", "q"),
        ({"qa": {"question": "q"}}, "qa.question", "q"),
        ({"qa": {"exe_ans": 0.5}}, "qa.exe_ans", 0.5),
        ({"qa": {"exe_ans": 0}}, "qa.exe_ans", 0),
    ],
)
def test_get_field(record, path, expected):
    assert get_field(record, path) == expected


@pytest.mark.parametrize(
    ("record", "path", "reason"),
    [({}, "question", "missing"), ({"question": "  "}, "question", "empty"), ({"question": None}, "question", "empty"),
     ({"qa": "flat"}, "qa.question", "missing")],
)
def test_get_field_bad_rows(record, path, reason):
    with pytest.raises(BadRow) as e:
        get_field(record, path)
    assert (e.value.field, e.value.reason) == (path, reason)


def test_read_jsonl_keeps_a_placeholder_for_broken_lines(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"a": 1}, "{not json", {"a": 2}])
    assert read_file(path) == [{"a": 1}, None, {"a": 2}]


@pytest.mark.parametrize(
    ("content", "expected"),
    [([{"a": 1}, {"a": 2}], [{"a": 1}, {"a": 2}]), ({"data": [{"a": 1}]}, [{"a": 1}]), ({"a": 1}, [{"a": 1}])],
)
def test_read_json(tmp_path, content, expected):
    path = tmp_path / "d.json"
    path.write_text(json.dumps(content))
    assert read_file(path) == expected


def test_read_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([{"question": "q", "answer": "1"}]), tmp_path / "d.parquet")
    assert read_file(tmp_path / "d.parquet") == [{"question": "q", "answer": "1"}]


def test_unsupported_and_invalid_files_name_the_file(tmp_path):
    (tmp_path / "d.csv").write_text("a,b")
    with pytest.raises(ConfigError, match="unsupported file type '.csv'"):
        read_file(tmp_path / "d.csv")
    (tmp_path / "d.json").write_text("{oops")
    with pytest.raises(ConfigError, match="d.json is not valid JSON"):
        read_file(tmp_path / "d.json")


def test_split_files_finds_plain_and_sharded_names(tmp_path):
    for name in ["train.jsonl", "test.json", "train-00000-of-00002.parquet", "train-00001-of-00002.parquet",
                 "trainer.jsonl", "notes.txt"]:
        (tmp_path / name).write_text("")
    assert [p.name for p in split_files(tmp_path, "train")] == [
        "train-00000-of-00002.parquet", "train-00001-of-00002.parquet", "train.jsonl"]
    assert [p.name for p in split_files(tmp_path, "test")] == ["test.json"]


def test_directory_of_splits():
    train, test = load_records(path=str(GSM8K), hub_id=None, hub_config=None, splits=("train", "test"),
                               test_size=None, seed=0)
    assert (len(train.records), len(test.records)) == (48, 24)
    assert train.where.endswith("train.jsonl") and test.where.endswith("test.jsonl")


def test_directory_without_the_split_says_what_it_looked_for(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"q": 1}])
    with pytest.raises(ConfigError, match="no file for split 'validation'.*data.test_split"):
        load_records(path=str(tmp_path), hub_id=None, hub_config=None, splits=("train", "validation"),
                     test_size=None, seed=0)


@pytest.mark.parametrize(("test_size", "n_test"), [(3, 3), (None, 2)])
def test_single_file_is_split_disjointly_and_reproducibly(tmp_path, test_size, n_test):
    path = write_jsonl(tmp_path / "all.jsonl", [{"i": i} for i in range(20)])
    train, test = load_records(path=str(path), hub_id=None, hub_config=None, splits=("train", "test"),
                               test_size=test_size, seed=7)
    again = load_records(path=str(path), hub_id=None, hub_config=None, splits=("train", "test"),
                         test_size=test_size, seed=7)[1]
    other = load_records(path=str(path), hub_id=None, hub_config=None, splits=("train", "test"),
                         test_size=test_size, seed=8)[1]
    assert len(test.records) == n_test and len(train.records) == 20 - n_test
    assert {r["i"] for r in train.records}.isdisjoint({r["i"] for r in test.records})
    assert test.records == again.records and (n_test < 3 or test.records != other.records)


def test_single_file_too_small_for_the_test_size(tmp_path):
    path = write_jsonl(tmp_path / "all.jsonl", [{"i": 0}, {"i": 1}])
    with pytest.raises(ConfigError, match="data.test_size=2 leaves no training rows"):
        load_records(path=str(path), hub_id=None, hub_config=None, splits=("train", "test"), test_size=2, seed=0)


def test_hub_source_goes_through_load_dataset(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(hub_id, config, split):
        calls.append((hub_id, config, split))
        return [{"question": f"{split} q", "answer": "#### 1"}]

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    train, test = load_records(path=None, hub_id="openai/gsm8k", hub_config="main", splits=("train", "test"),
                               test_size=None, seed=0)
    assert calls == [("openai/gsm8k", "main", "train"), ("openai/gsm8k", "main", "test")]
    assert train.records == [{"question": "train q", "answer": "#### 1"}] and test.where == "openai/gsm8k[test]"


def test_hub_failure_says_how_to_go_offline(monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(ConfigError, match="Could not load 'openai/gsm8k'.*no network.*data.path"):
        load_records(path=None, hub_id="openai/gsm8k", hub_config="main", splits=("train", "test"),
                     test_size=None, seed=0)


def test_neither_path_nor_hub():
    with pytest.raises(ConfigError, match="Set data.path"):
        load_records(path=None, hub_id=None, hub_config=None, splits=("train", "test"), test_size=None, seed=0)



def test_a_row_that_is_not_utf8_is_skipped_not_fatal(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'{"q": "a"}\n\xff\xfe{"q": "b"}\n{"q": "\xc3\xa9"}\n')
    assert read_file(path) == [{"q": "a"}, None, {"q": "é"}]  # the bad line is counted as a broken row


def test_a_json_file_that_is_not_utf8_names_the_file(tmp_path):
    path = tmp_path / "rows.json"
    path.write_bytes(b'[{"q": "\xff"}]')
    with pytest.raises(ConfigError, match="rows.json is not UTF-8 text"):
        read_file(path)


def test_an_empty_file_is_blamed_on_the_file_not_on_test_size(tmp_path):
    from rlvr.data.sources import load_records

    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(ConfigError, match="empty.jsonl holds no records"):
        load_records(path=str(tmp_path / "empty.jsonl"), hub_id=None, hub_config=None, splits=("train", "test"),
                     test_size=None, seed=0)
