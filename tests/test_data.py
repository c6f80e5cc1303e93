"""Data files: a missing column and a broken JSON line are named, with the file and the fix (the data is read before
any model loads, so these are quick)."""

import pytest

from tests.helpers import train_lm as train



def test_own_data_with_missing_column_names_it(tmp_path):
    from autotrain_hydra.errors import DataError

    f = tmp_path / "d.jsonl"
    f.write_text('{"body": "some text"}\n{"body": "more text"}\n')
    with pytest.raises(DataError, match=r"column 'text' \(data.text_column\) not found in .*d.jsonl; columns there: body"):
        train(tmp_path, "trainer=generic", f"data.path={f}")


def test_malformed_jsonl_names_line(tmp_path):
    from autotrain_hydra.errors import DataError

    f = tmp_path / "d.jsonl"
    f.write_text('{"text": "ok"}\n{"text": broken\n')
    with pytest.raises(DataError, match=r"d.jsonl line 2 is not valid JSON"):
        train(tmp_path, "trainer=generic", f"data.path={f}")

