"""Dirs and files: a run dir claimed atomically, a file replaced whole or not at all."""

import os

import pytest

from autotrain_hydra import paths


def test_claim_dir_makes_a_new_dir_each_call(tmp_path):
    base = str(tmp_path / "outputs" / "sft" / "12-00-00")
    assert paths.claim_dir(base) == base
    assert paths.claim_dir(base) == base + "_1"
    assert paths.claim_dir(base) == base + "_2"
    assert sorted(os.listdir(tmp_path / "outputs" / "sft")) == ["12-00-00", "12-00-00_1", "12-00-00_2"]


def test_written_whole_replaces_a_file_whole_or_not_at_all(tmp_path):
    target = tmp_path / "trials.csv"
    target.write_text("earlier")
    with pytest.raises(RuntimeError):
        with paths.written_whole(str(target)) as tmp, open(tmp, "w") as f:
            f.write("half")
            raise RuntimeError("the writer died")
    assert target.read_text() == "earlier" and os.listdir(tmp_path) == ["trials.csv"]
    with paths.written_whole(str(target)) as tmp, open(tmp, "w") as f:
        f.write("new")
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["trials.csv"]

