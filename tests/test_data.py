"""Data files: a missing column and a broken JSON line are named, with the file and the fix (the data is read before
any model loads, so these are quick). ``data.check_inputs`` scans every file a run reads before any model loads:
each problem counted and named as file:line; OpenAI-style content parts are text; a directory of several formats is
read whole."""

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
    with pytest.raises(DataError, match=r"d.jsonl:2: the line is not valid JSON \(Expecting value\) \[1 row: line 2\]"):
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



# ----------------------------------------------------------------------------------------------- the input scan
def jsonl(path, rows):
    import json

    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def scan_error(*overrides):
    """The DataError data.check_inputs raises for the resolved config of these overrides."""
    from autotrain_hydra import data
    from autotrain_hydra.errors import DataError
    from tests.helpers import resolved

    with pytest.raises(DataError) as e:
        data.check_inputs(resolved(*overrides))
    return str(e.value)


MSGS = [{"role": "user", "content": "What is 2 plus 2?"}, {"role": "assistant", "content": "4."}]


def test_every_bad_row_is_counted_and_named_by_file_and_line(tmp_path):
    """Bug (red team): one null in the middle of a file ended in a traceback; now every problem of the file is
    reported at once, each as file:line with its count (the first 10 places named, the rest counted)."""
    rows = [{"text": "some text"}] * 30
    for i in (3, 8, 11):
        rows[i] = {"text": None}
    rows[5], rows[6] = {"text": 12345}, {"body": "no text column here"}
    for i in range(14, 26):
        rows[i] = {"text": ["a", "b"]}
    f = jsonl(tmp_path / "d.jsonl", rows)
    message = scan_error("trainer=generic", f"data.path={f}")
    assert f"{f}:4: data.text_column ('text') is null [3 rows: lines 4, 9, 12]" in message
    assert f"{f}:6: data.text_column ('text') is a number, not text (e.g. 12345) [1 row: line 6]" in message
    assert f"{f}:7: data.text_column ('text') is missing (the row has no 'text') [1 row: line 7]" in message
    assert (f"{f}:15: data.text_column ('text') is a list, not text (e.g. [\"a\", \"b\"]) [12 rows: lines 15, 16, 17, "
            "18, 19, 20, 21, 22, 23, 24, ...]") in message
    assert "    fix: every row needs text in 'text' (data.text_column): fix or remove those rows" in message


@pytest.mark.parametrize("trainer,rows,line,what", [
    ("reward", [{"chosen": "a", "rejected": "b"}] * 3 + [{"chosen": "a", "rejected": None}] + [{"chosen": "a",
                                                                                                 "rejected": "b"}], 4,
     "data.rejected_text_column ('rejected') is null [1 row: line 4]"),
    ("sft", [{"text": MSGS}, {"text": "plain"}, {"text": MSGS}, {"text": MSGS}], 2,
     "data.text_column ('text') holds text, while 3 other rows hold chat messages (the first: line 1) [1 row: line 2]"),
    ("sft", [{"messages": MSGS}, {"messages": [{"role": "usr", "content": "hi"}]}], 2,
     "data.text_column ('messages') has a message with an unknown role ('usr') [1 row: line 2]"),
    ("sft", [{"messages": MSGS}, {"messages": [{"from": "human", "value": "hi"}]}], 2,
     "data.text_column ('messages') has a message without role and content (its keys: from, value) [1 row: line 2]"),
    ("sft", [{"messages": MSGS}, {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url":
                                                                             {"url": "x.png"}}]}]}], 2,
     "data.text_column ('messages') has a content part that is not text (type 'image_url') [1 row: line 2]"),
    ("ppo", [{"prompt": "q?"}, {"prompt": 7}], 2, "data.text_column ('prompt') is a number, not text or a list of "
                                                  "{role, content} messages (e.g. 7) [1 row: line 2]"),
])
def test_values_a_trainer_cannot_read_are_named_before_loading(tmp_path, trainer, rows, line, what):
    """Bugs (red team): sft rows mixing a message list and text, one null in a reward file, ended in tracebacks;
    unknown roles and image parts were rendered silently."""
    f = jsonl(tmp_path / "d.jsonl", rows)
    extra = ["data.rejected_text_column=rejected"] if trainer == "reward" else []
    assert f"{f}:{line}: {what}" in scan_error(f"trainer={trainer}", f"data.path={f}", *extra)


def test_a_json_file_line_that_is_not_an_object_is_named_by_its_line(tmp_path):
    """Bug (red team): a .json file in JSON-lines form with a line that is valid JSON but not an object was reported
    as "row 0" (pyarrow's words)."""
    from autotrain_hydra import data
    from autotrain_hydra.compat.hydra import compose_config
    from autotrain_hydra.errors import DataError

    f = tmp_path / "d.json"
    f.write_text('{"text": "one"}\n{"text": "two"}\n[1, 2]\n')
    assert f"{f}:3: the line is a list, not a JSON object ([1, 2]) [1 row: line 3]" in \
        scan_error("trainer=generic", f"data.path={f}")
    with pytest.raises(DataError, match="line 3 is a JSON list, not an object"):  # loaded without the scan
        data.load_text_splits(compose_config(["trainer=generic", f"data.path={f}", "data.valid_path=null"]).data)


def test_csv_values_pandas_reads_as_null_are_named(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text("text,n\nhello,1\n,2\nNone,3\nfine,4\n")
    assert f"{f}:3: data.text_column ('text') is null [2 rows: lines 3, 4]" in \
        scan_error("trainer=generic", f"data.path={f}")


def test_non_utf8_and_broken_lines_are_all_counted(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_bytes(b'{"text": "ok"}\n{"text": "caf\xe9"}\n{oops\n{"text": "ok"}\n{"text": "\xff"}\n')
    message = scan_error("trainer=generic", f"data.path={f}")
    assert f"{f}:2: the line is not UTF-8 text (byte 14) [2 rows: lines 2, 5]" in message
    assert f"{f}:3: the line is not valid JSON" in message and "    fix: save the file as UTF-8" in message


def test_eval_data_is_scanned_before_training(tmp_path):
    """Bug (red team): features=[eval] with an eval.dataset_path whose column is all null trained, then failed with a
    KeyError and a traceback, leaving a model and no metrics."""
    f = jsonl(tmp_path / "eval.jsonl", [{"text": None}] * 3)
    message = scan_error("trainer=generic", "features=[eval]", f"eval.dataset_path={f}")
    assert f"{f}:1: data.text_column ('text') is null [3 rows: lines 1, 2, 3]" in message
    g = jsonl(tmp_path / "chat_eval.jsonl", [{"messages": MSGS}, {"messages": MSGS[:1]}])
    assert f"{g}:2: data.text_column ('messages') has no assistant message [1 row: line 2]" in \
        scan_error("trainer=sft", "features=[eval]", f"eval.dataset_path={g}")


def test_rows_beyond_max_samples_are_parsed_but_not_checked(tmp_path):
    from autotrain_hydra import data
    from tests.helpers import resolved

    f = jsonl(tmp_path / "d.jsonl", [{"text": "a"}] * 4 + [{"text": None}])
    assert data.check_inputs(resolved("trainer=generic", f"data.path={f}", "data.max_samples=4")) == []
    assert f"{f}:5: data.text_column ('text') is null" in scan_error("trainer=generic", f"data.path={f}")
    g = jsonl(tmp_path / "e.jsonl", [{"text": "a"}] * 4 + ["{broken"])
    assert f"{g}:5: the line is not valid JSON" in scan_error("trainer=generic", f"data.path={g}",
                                                              "data.max_samples=4")


def tokenizer():
    from transformers import AutoTokenizer

    from autotrain_hydra.models import tiny_model_dir

    return AutoTokenizer.from_pretrained(tiny_model_dir())


def parts(messages):
    """``messages`` with OpenAI-style content: each text split into two text parts."""
    return [{**m, "content": [{"type": "text", "text": m["content"][:2]}, {"type": "text", "text": m["content"][2:]}]}
            for m in messages]


def test_openai_content_parts_are_read_as_text(tmp_path):
    """Bug (red team): OpenAI-style content (a list of {"type": "text", "text": ...} parts, common in real chat data)
    was rendered as the list's repr. The parts are joined with newlines wherever messages are rendered: sft, the
    preference pairs, PPO's and evaluation's prompts, distillation's prompts."""
    from datasets import Dataset

    from autotrain_hydra import data
    from tests.helpers import resolved

    joined = [{**m, "content": m["content"][:2] + "\n" + m["content"][2:]} for m in MSGS]
    tok = tokenizer()
    f = jsonl(tmp_path / "chat.jsonl", [{"messages": parts(MSGS)}] * 3)
    assert data.check_inputs(resolved("trainer=sft", f"data.path={f}")) == []
    ds = data.load_split(str(f), "train")
    got = data.sft_sequences(ds, tok, "messages", True, "chat")["input_ids"][0]
    want = data.sft_sequences(Dataset.from_list([{"messages": joined}]), tok, "messages", True, "x")["input_ids"][0]
    assert got == want
    assert data.prompt_of(parts(MSGS)) == joined[:1]

    cols = data.PreferenceColumns("prompt", "chosen", "rejected")
    bad = [{"role": "assistant", "content": "5."}]
    pairs = Dataset.from_list([{"prompt": parts(MSGS[:1]), "chosen": parts(MSGS[1:]), "rejected": bad}])
    plain = Dataset.from_list([{"prompt": joined[:1], "chosen": joined[1:], "rejected": bad}])
    assert data.preference_sequences(pairs, tok, cols, "p")[0] == data.preference_sequences(plain, tok, cols, "p")[0]


def test_a_directory_of_several_formats_is_read_whole(tmp_path):
    """Bug (red team): a directory holding a.jsonl and b.csv trained on the rows of one file only, without a word."""
    from autotrain_hydra import data
    from autotrain_hydra.errors import DataError

    d = tmp_path / "d"
    d.mkdir()
    jsonl(d / "a.jsonl", [{"text": f"from a {i}"} for i in range(3)])
    (d / "b.csv").write_text("text\nfrom b 0\nfrom b 1\n")
    assert sorted(data.load_split(str(d), "train")["text"]) == ["from a 0", "from a 1", "from a 2", "from b 0",
                                                                "from b 1"]
    (d / "b.csv").write_text("body\nfrom b 0\n")
    with pytest.raises(DataError, match=r"the files of .*d hold different columns \(a.jsonl: text; b.csv: body\)"):
        data.load_split(str(d), "train")
    assert f"column 'text' (data.text_column) not found in {d / 'b.csv'}; columns there: body" in \
        scan_error("trainer=generic", f"data.path={d}")
    (d / "b.csv").write_text("text\n\n,\n")  # one row, its text null
    assert f"{d / 'b.csv'}:3: data.text_column ('text') is null" in scan_error("trainer=generic", f"data.path={d}")
    s = tmp_path / "splits"  # a split per format: datasets refused the directory
    s.mkdir()
    jsonl(s / "train.jsonl", [{"text": "t1"}, {"text": "t2"}])
    (s / "validation.csv").write_text("text\nv1\n")
    assert data.load_split(str(s), "train")["text"] == ["t1", "t2"]
    assert data.load_split(str(s), "validation")["text"] == ["v1"]


def pairs_file(tmp_path, same, total):
    return jsonl(tmp_path / "p.jsonl", [{"prompt": "Q?", "chosen": "yes", "rejected": "yes" if i < same else "no"}
                                        for i in range(total)])


@pytest.mark.parametrize("trainer", ["dpo", "reward"])
def test_pairs_that_are_all_identical_are_refused(tmp_path, trainer):
    """Minor (red team): every pair with chosen == rejected trained without a word (DPO learns nothing)."""
    f = pairs_file(tmp_path, 4, 4)
    message = scan_error(f"trainer={trainer}", f"data.path={f}", "data.prompt_text_column=prompt",
                         "data.text_column=chosen", "data.rejected_text_column=rejected")
    assert f"every pair of {f} has chosen equal to rejected (4 pairs): the {trainer} trainer learns nothing" in message


def test_identical_pairs_are_warned_about_once(tmp_path, caplog):
    """Some identical pairs (or all of them for ORPO, which still learns its NLL term on chosen): a warning, logged
    once per file (a sweep's later trials do not repeat it)."""
    import logging

    from autotrain_hydra import data
    from tests.helpers import resolved

    cols = ["data.prompt_text_column=prompt", "data.text_column=chosen", "data.rejected_text_column=rejected"]
    f = pairs_file(tmp_path, 2, 6)
    cfg = resolved("trainer=dpo", f"data.path={f}", *cols)
    with caplog.at_level(logging.WARNING, logger="autotrain_hydra.data"):
        warned = data.check_inputs(cfg)
        assert data.check_inputs(cfg) == []
    assert warned == [f"2 of 6 preference pairs of {f} have chosen equal to rejected (lines 1, 2): they teach no "
                      "preference"]
    assert [r.getMessage() for r in caplog.records] == warned
    (tmp_path / "all").mkdir()
    g = pairs_file(tmp_path / "all", 3, 3)
    assert data.check_inputs(resolved("trainer=orpo", f"data.path={g}", *cols))[0].startswith("3 of 3 preference")


@pytest.mark.parametrize("case", ["eval data all null", "sft text and messages mixed", "generic null mid-file",
                                  "reward null mid-file"])
def test_bad_data_is_refused_before_any_model_loads(tmp_path, monkeypatch, capsys, case):
    """Bugs (red team): eval data was read only after training (KeyError, a traceback, a model written); sft rows
    mixing messages and text, and one null in the middle of a generic or reward file, ended in tracebacks. Each is
    now exit 2, its file:line named, no traceback, no model or tokenizer loaded, nothing written."""
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    if case == "eval data all null":
        f = jsonl(tmp_path / "eval.jsonl", [{"text": None}] * 3)
        argv, where = ["trainer=generic", "features=[eval]", f"eval.dataset_path={f}"], f"{f}:1: "
    elif case == "sft text and messages mixed":
        f = jsonl(tmp_path / "d.jsonl", [{"text": "plain"}, {"text": msgs}, {"text": "plain"}])
        argv, where = ["trainer=sft", f"data.path={f}"], f"{f}:2: "
    elif case == "generic null mid-file":
        f = jsonl(tmp_path / "d.jsonl", [{"text": "a b"}] * 5 + [{"text": None}] + [{"text": "c d"}] * 5)
        argv, where = ["trainer=generic", f"data.path={f}"], f"{f}:6: "
    else:
        f = jsonl(tmp_path / "d.jsonl", [{"chosen": "a", "rejected": "b"}] * 3 + [{"chosen": None, "rejected": "b"}])
        argv, where = ["trainer=reward", f"data.path={f}", "data.rejected_text_column=rejected"], f"{f}:4: "
    from autotrain_hydra import models
    from autotrain_hydra.__main__ import main

    for name in ("load_causal_lm", "load_tokenizer", "load_sequence_classifier", "load_saved_causal_lm"):
        monkeypatch.setattr(models, name, lambda *a, **k: pytest.fail("a model or tokenizer was loaded"))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and where in err and "Traceback" not in err, err[-2000:]
    written = [p for p in cwd.rglob("*") if p.is_file() and ".hydra" not in p.parts and p.name != "train.log"]
    assert written == []



def test_tokenised_data_are_reused_only_for_the_same_data_tokenizer_and_settings(tmp_path):
    """A sweep's next trial (or another worker) gets the tokenised rows of the last from datasets' cache when
    nothing that shapes them changed: the cache file is named by a hash of the data's fingerprint and of the
    tokenising function with everything it holds (the tokenizer, pickled, and the settings). A change to any of them
    tokenises again."""
    from autotrain_hydra import data, models
    from autotrain_hydra.compat.hydra import compose_config

    path = tmp_path / "chats.jsonl"
    path.write_text('{"text": "hello there"}\n{"text": "general kenobi"}\n')
    model = compose_config(["model=tiny"]).model

    def tokenise(eos=True, template=None, split_special=False):
        tok = models.load_tokenizer(model, template)  # a fresh tokenizer each time, as each trial loads its own
        tok.split_special_tokens = split_special
        out = data.sft_sequences(data.load_split(str(path), "train"), tok, "text", eos, "the data")
        return out["input_ids"], out.cache_files[0]["filename"]

    first, cache = tokenise()
    assert tokenise() == (first, cache)  # served from the same cache file
    assert tokenise(eos=False)[1] != cache  # another setting
    assert tokenise(template="zephyr")[1] != cache  # another chat template
    assert tokenise(split_special=True)[1] != cache  # any tokenizer state
    path.write_text('{"text": "hello there"}\n{"text": "general grievous"}\n')  # the file rewritten
    changed, other = tokenise()
    assert other != cache and changed != first
