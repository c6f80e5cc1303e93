"""A data set's columns, peeked without loading it."""

import json

from autotrain_hydra.schema import data_peek


def test_files_of_every_format(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "a.jsonl").write_text('\n{"prompt": "p", "chosen": "a"}\n')
    (tmp_path / "b.json").write_text(json.dumps([{"text": "x", "n": 1}]))
    (tmp_path / "c.csv").write_text("q,a\n1,2\n")
    (tmp_path / "d.txt").write_text("one line\n")
    pq.write_table(pa.table({"messages": ["x"]}), tmp_path / "e.parquet")
    assert data_peek.columns(str(tmp_path / "a.jsonl")) == ["prompt", "chosen"]
    assert data_peek.columns(str(tmp_path / "b.json")) == ["text", "n"]
    assert data_peek.columns(str(tmp_path / "c.csv")) == ["q", "a"]
    assert data_peek.columns(str(tmp_path / "d.txt")) == ["text"]
    assert data_peek.columns(str(tmp_path / "e.parquet")) == ["messages"]


def test_what_cannot_be_peeked_is_none(tmp_path):
    (tmp_path / "broken.jsonl").write_text("{not json\n")
    assert data_peek.columns(str(tmp_path / "broken.jsonl")) is None  # the loader names the line
    assert data_peek.columns("org/some-dataset") is None and data_peek.columns(None) is None
    (tmp_path / "x.bin").write_text("?")
    assert data_peek.columns(str(tmp_path / "x.bin")) is None


def test_folders_by_split_and_save_to_disk(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "train.jsonl").write_text('{"chosen": "a"}\n')
    (tmp_path / "d" / "validation.jsonl").write_text('{"other": "a"}\n')
    assert data_peek.columns(str(tmp_path / "d")) == ["chosen"]
    assert data_peek.columns(str(tmp_path / "d"), "validation") == ["other"]
    (tmp_path / "saved").mkdir()
    (tmp_path / "saved" / "dataset_info.json").write_text(json.dumps({"features": {"messages": {}, "id": {}}}))
    assert data_peek.columns(str(tmp_path / "saved")) == ["messages", "id"]
