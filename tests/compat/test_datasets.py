"""The hook on datasets' non-public API (compat/datasets.py): fails loudly when an upgrade changes it."""

from autotrain_hydra.compat.datasets import files_by_split


def test_files_are_assigned_to_splits_by_their_names(tmp_path):
    for name in ("train.jsonl", "train-extra.csv", "validation.jsonl", "test.parquet"):
        (tmp_path / name).write_text("")
    found = {split: sorted(p.rsplit("/", 1)[1] for p in files) for split, files in files_by_split(str(tmp_path)).items()}
    assert found == {"train": ["train-extra.csv", "train.jsonl"], "validation": ["validation.jsonl"],
                     "test": ["test.parquet"]}


def test_a_folder_without_split_names_is_train_and_an_empty_one_has_none(tmp_path):
    (tmp_path / "a.jsonl").write_text("")
    (tmp_path / "b.csv").write_text("")
    assert {k: len(v) for k, v in files_by_split(str(tmp_path)).items()} == {"train": 2}
    empty = tmp_path / "empty"
    empty.mkdir()
    assert files_by_split(str(empty)) == {}
