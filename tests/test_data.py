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



@pytest.mark.parametrize("line,message", [
    ('{"text": null}', "row 3: data.text_column ('text') is null, neither text nor a list of {role, content} messages"),
    ('{"text": ["a", "b"]}', "row 3: data.text_column ('text') is list [\"a\", \"b\"], neither text nor"),
    ('{"text": 12345}', "row 3: data.text_column ('text') is int 12345, neither text nor"),
    ('[1, 2, 3]', "line 3 is a JSON list, not an object"),
    (b'{"text": "caf\xe9"}', "line 3 is not UTF-8 text (byte 14); save the file as UTF-8"),
])
def test_a_bad_row_is_named_with_its_file_and_row(tmp_path, line, message):
    """Bugs (red team): nulls, numbers, lists and non-UTF-8 bytes in a data file ended in tracebacks (or trained)."""
    from autotrain_hydra import data
    from autotrain_hydra.compat.hydra import compose_config
    from autotrain_hydra.errors import DataError

    f = tmp_path / "d.jsonl"
    f.write_bytes(b'{"text": "one"}\n{"text": "two"}\n' + (line if isinstance(line, bytes) else line.encode()) + b"\n")
    with pytest.raises(DataError) as e:
        data.load_text_splits(compose_config(["trainer=generic", f"data.path={f}", "data.valid_path=null"]).data)
    assert f"{f} {message}" in str(e.value)


@pytest.mark.parametrize("content,message", [("", "is empty: it holds no row"),
                                             ('{"text": ""}\n{"text": " "}\n', "has an empty data.text_column")])
def test_data_with_nothing_to_learn_is_refused(tmp_path, content, message):
    from autotrain_hydra import data
    from autotrain_hydra.compat.hydra import compose_config
    from autotrain_hydra.errors import DataError

    f = tmp_path / "d.jsonl"
    f.write_text(content)
    with pytest.raises(DataError, match=message):
        data.load_text_splits(compose_config(["trainer=generic", f"data.path={f}", "data.valid_path=null"]).data)
