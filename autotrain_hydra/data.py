"""Data loading, column checks and the per-trainer preprocessing (generic blocks, SFT chat sequences)."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Tuple

from autotrain_hydra import registry
from autotrain_hydra.errors import DataError

log = logging.getLogger(__name__)

FILE_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet", ".txt": "text"}


@dataclass
class Splits:
    train: Any
    valid: Optional[Any]
    source: str


def _load_file(path: str):
    from datasets import load_dataset

    ext = os.path.splitext(path)[1].lower()
    fmt = FILE_FORMATS.get(ext)
    if fmt is None:
        raise DataError(f"data file {path}: unknown format {ext!r}; use one of {', '.join(FILE_FORMATS)}")
    if (ext == ".jsonl" or ext == ".json" and _json_lines(path)) and _fingerprint(path) not in _SCANNED:
        _check_jsonl(path)
    try:
        return load_dataset(fmt, data_files=path, split="train")
    except Exception as e:  # datasets wraps parser errors in several types
        raise DataError(f"cannot read data file {path} as {fmt}: {first_line(e)}") from e


def first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def _check_jsonl(path: str) -> None:
    """Every line of a JSON-lines file is UTF-8 text holding one JSON object; the file has at least one."""
    rows = 0
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{path} line {n} is not UTF-8 text (byte {e.start + 1}); save the file as UTF-8") \
                    from e
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path} line {n} is not valid JSON ({e.msg}); fix or remove that line") from e
            if not isinstance(row, dict):
                raise DataError(f"{path} line {n} is a JSON {type(row).__name__}, not an object: each line is one row, "
                                '{"column": value, ...}; fix or remove that line')
            rows += 1
    if rows == 0:
        raise DataError(f"the data file {path} is empty: it holds no row")


def load_split(path: str, split: str):
    """A split from a file, a directory of files (train.jsonl, validation.jsonl, ...), a folder ``save_to_disk``
    wrote, or a dataset name."""
    from datasets import load_dataset, load_from_disk

    expanded = os.path.expanduser(path)
    if os.path.isfile(expanded):
        return _load_file(expanded)
    if any(os.path.isfile(os.path.join(expanded, f)) for f in ("dataset_info.json", "dataset_dict.json")):
        saved = load_from_disk(expanded)
        if hasattr(saved, "keys"):  # a DatasetDict: its split
            if split not in saved:
                raise DataError(f"the saved dataset {path} has no split {split!r}; its splits: "
                                f"{', '.join(saved.keys())}. Set data.train_split / data.valid_split to one of them")
            return saved[split]
        return saved
    if os.path.isdir(expanded):
        splits = _dir_files(expanded)
        formats = {FILE_FORMATS[os.path.splitext(f)[1].lower()] for files in splits.values() for f in files}
        if len(formats) > 1 and splits.get(split):  # datasets reads the files of one format only, or refuses
            return _load_files(splits[split], path)
    try:
        return load_dataset(expanded, split=split)
    except Exception as e:
        where = "directory" if os.path.isdir(expanded) else "dataset name (offline, the hub cannot be reached)"
        raise DataError(f"cannot load split {split!r} of {where} {path}: {first_line(e)}") from e


def _dir_files(folder: str) -> Dict[str, List[str]]:
    """Each split of a directory → its data files (of the formats this runner reads), as ``datasets`` assigns files
    to splits by their names (a directory without split names is all ``train``)."""
    from autotrain_hydra.compat.datasets import files_by_split

    return {split: sorted(f for f in files if os.path.splitext(f)[1].lower() in FILE_FORMATS)
            for split, files in files_by_split(folder).items()}


def split_files(folder: str, split: str) -> List[str]:
    """The data files of a directory's ``split`` (see ``_dir_files``)."""
    return _dir_files(folder).get(split, [])


def _load_files(files: List[str], path: str):
    """The files of a split of a directory that holds several formats, each read and concatenated in name order
    (``a.jsonl`` and ``b.csv``: ``datasets`` would read the files of its most common format only, dropping the
    others' rows without a word; ``train.jsonl`` and ``valid.csv``: it would refuse the directory).
    Files whose columns differ, or whose types cannot be made one, are a DataError naming each file."""
    from datasets import concatenate_datasets

    parts = [(f, _load_file(f)) for f in files]
    first = parts[0][1]
    if any(set(d.column_names) != set(first.column_names) for _, d in parts):
        names = "; ".join(f"{os.path.basename(f)}: {', '.join(d.column_names)}" for f, d in parts)
        raise DataError(f"the files of {path} hold different columns ({names}): every row of a data set has the "
                        "same columns\n    fix: give every file the same columns, or point the path at one file")
    try:
        same = [d.select_columns(first.column_names) for _, d in parts]
        joined = concatenate_datasets([d if d.features == first.features else d.cast(first.features) for d in same])
    except Exception as e:
        raise DataError(f"the files of {path} ({', '.join(os.path.basename(f) for f in files)}) hold the same "
                        f"columns with types that cannot be made one ({first_line(e)})\n    fix: convert the files to "
                        "one format (JSON lines), or point the path at one file") from e
    if len(parts) > 1:
        log.info("%s: read every file, of several formats: %s", path,
                 ", ".join(f"{os.path.basename(f)} ({len(d)} rows)" for f, d in parts))
    return joined


def load_splits(data_cfg: Any) -> Splits:
    """The train and validation splits of ``data_cfg`` (a resolved config: its text column is already the one to
    read, see schema.resolve)."""
    path, split, max_samples = data_cfg.path, data_cfg.train_split, data_cfg.max_samples
    valid_path, valid_split, valid_fraction = data_cfg.valid_path, data_cfg.valid_split, data_cfg.valid_fraction
    train = load_split(path, split)
    valid = None
    if valid_path:
        valid = load_split(valid_path, "train")
    elif valid_split:
        valid = load_split(path, valid_split)
    if max_samples:
        train = train.select(range(min(len(train), max_samples)))
    if valid is None and valid_fraction:
        if len(train) < 2:
            raise DataError(f"the training data {path} is too small to hold out a validation slice")
        parts = train.train_test_split(test_size=valid_fraction, seed=0)
        train, valid = parts["train"], parts["test"]
        log.info("held out %d of %d training rows as validation data (data.valid_fraction=%s)", len(valid),
                 len(valid) + len(train), valid_fraction)
    if len(train) == 0:
        raise DataError(f"the training data {path} is empty")
    if valid is not None and len(valid) == 0:
        raise DataError(f"the validation data {valid_path or valid_split} is empty")
    return Splits(train, valid, path)


def load_text_splits(data_cfg: Any) -> Splits:
    """Splits for the generic and sft trainers, with ``data.text_column`` checked in each."""
    splits = load_splits(data_cfg)
    require_columns(splits.train, [data_cfg.text_column], splits.source, ["data.text_column"])
    if splits.valid is not None:
        require_columns(splits.valid, [data_cfg.text_column], "the validation data", ["data.text_column"])
    return splits


def require_columns(ds: Any, columns: List[str], source: str, keys: List[str]) -> None:
    """Each column present and holding, in every row, text or a list of {role, content} messages (a null, a number,
    a list of strings is named with its row), and not only empty texts; else a DataError naming the key and the fix."""
    for column, key in zip(columns, keys):
        if column not in ds.column_names:
            raise DataError(f"column {column!r} ({key}) not found in {source}; columns there: "
                            f"{', '.join(ds.column_names)}. Set {key}=<one of them>")
        empty = 0
        for row, value in enumerate(ds[column], 1):
            if isinstance(value, str):
                empty += not value.strip()
            elif _is_message_like(value) and chat_problem(value):
                what, example = chat_problem(value)
                raise DataError(f"{source} row {row}: {key} ({column!r}) {what}"
                                f"{f' ({example})' if example else ''}; fix or remove that row")
            elif not _is_message_like(value):
                raise DataError(f"{source} row {row}: {key} ({column!r}) is {_show(value)}, neither text nor a list "
                                "of {role, content} messages; fix or remove that row")
        if len(ds) and empty == len(ds):
            raise DataError(f"every row of {source} has an empty {key} ({column!r}): there is no text to learn from")


def _is_message_like(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(m, dict) for m in value)


def _show(value: Any) -> str:
    if value is None:
        return "null"
    text = json.dumps(value, default=str)
    return f"{type(value).__name__} {text[:60] + '...' if len(text) > 60 else text}"


def is_conversation(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(m, dict) and "role" in m and "content" in m for m in value)


# ----------------------------------------------------------------------------------------------- messages
# The roles of chat messages (OpenAI's, and the tool roles chat templates know); another role is a DataError.
ROLES = ("system", "user", "assistant", "tool", "developer", "function", "ipython")


def _text_part(part: Any) -> Optional[str]:
    if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
        return part["text"]
    return None


def message_text(content: Any) -> Optional[str]:
    """The text of a message's ``content``: a string as is; OpenAI-style content parts
    (``[{"type": "text", "text": ...}, ...]``) joined with newlines, as vLLM joins them; None for anything else (a
    non-text part, a null)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [_text_part(p) for p in content]
        if all(t is not None for t in texts):
            return "\n".join(texts)
    return None


def chat_problem(value: Any) -> Optional[Tuple[str, Optional[str]]]:
    """What makes a list of messages one this runner cannot render, as (what, an example), or None: each message an
    object with a known ``role`` and a ``content`` that is text or text parts."""
    if not isinstance(value, list) or not value:
        return ("is an empty list", None) if isinstance(value, list) else ("is not a list of messages", _show(value))
    for m in value:
        if not isinstance(m, dict):
            return "has a message that is not an object {role, content}", _show(m)
        if "role" not in m or "content" not in m:
            return "has a message without role and content", "its keys: " + ", ".join(map(str, m))
        if m["role"] not in ROLES:
            return "has a message with an unknown role", repr(m["role"])
        content = m["content"]
        if message_text(content) is not None:
            continue
        if isinstance(content, list):
            for part in content:
                if _text_part(part) is None:
                    kind = part.get("type") if isinstance(part, dict) else None
                    if isinstance(kind, str) and kind != "text":
                        return "has a content part that is not text", f"type {kind!r}"
                    return 'has a content part that is not {"type": "text", "text": ...}', _show(part)
        return "has a message whose content is neither text nor a list of text parts", _show(content)
    return None


def chat_messages(value: List[dict]) -> List[dict]:
    """A copy of the messages ``value`` whose content is text: content parts joined (see ``message_text``). A
    message that has no text (a non-text part) is a DataError."""
    out = []
    for m in value:
        text = message_text(m.get("content"))
        if text is None:
            problem = chat_problem([m]) or ("has a message without text", None)
            raise DataError(f"a message {problem[0]}{f' ({problem[1]})' if problem[1] else ''}: this runner trains "
                            "on text\n    fix: give every message text content (a string, or parts of type text)")
        out.append({**m, "content": text})
    return out


def normalized(value: Any) -> Any:
    """A row value as the renderers take it: messages with text content (``chat_messages``), anything else as is."""
    return chat_messages(value) if is_conversation(value) and value else value


# ----------------------------------------------------------------------------------------------- the input check
# Before any model loads, every data file the run will read is scanned (streamed: one row in memory at a time) for
# the columns its trainer reads; every problem is counted and its first places named (file:line), all of them in
# one DataError. A dataset name (the hub) or a saved dataset cannot be scanned: the loaders check those rows.
EXAMPLES = 10  # places named per problem; every one is counted
TEXT, CHAT, BOOL = "text", "chat", "boolean"
# what pandas (the csv reader of ``datasets``) reads as a boolean in a column of booleans
CSV_BOOLS = {"True": True, "TRUE": True, "true": True, "False": False, "FALSE": False, "false": False}
# what pandas (the csv reader of ``datasets``) reads as a missing value
CSV_NULLS = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
                       "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"})
MESSAGE_FIX = ("a message is {\"role\": one of " + ", ".join(ROLES) + ", \"content\": text or a list of "
               "{\"type\": \"text\", \"text\": ...} parts}; convert other layouts (ShareGPT's {from, value}) to it, "
               "or remove those rows")


@dataclass(frozen=True)
class ColumnCheck:
    """What a run reads in one column: the kinds of value it takes (text, a list of chat messages); ``one_kind``:
    every row holds the same kind (the trainer renders a column one way, decided by its first row); ``learned``:
    a column whose texts are all empty leaves nothing to learn; ``reference``: evaluation takes a conversation's
    last assistant message as the reference answer; ``optional``: the column may be absent from the file."""

    column: str
    key: str
    kinds: Tuple[str, ...] = (TEXT, CHAT)
    one_kind: bool = False
    learned: bool = False
    reference: bool = False
    optional: bool = False


@dataclass(frozen=True)
class InputSource:
    """A data set the run reads: ``path`` (a file, a directory, a dataset name) and its split, the key that names
    it, the columns it reads, how many of its rows are read (data.max_samples), and whether it holds the training
    pairs (pairs whose chosen equals rejected are counted)."""

    path: str
    split: str
    key: str
    checks: Tuple[ColumnCheck, ...]
    limit: Optional[int] = None
    pairs: bool = False


@dataclass
class _Problem:
    what: str
    fix: str
    example: Optional[str] = None
    count: int = 0
    at: List[int] = field(default_factory=list)


class _Scan:
    """What scanning one file found: each problem counted, with its first EXAMPLES places (lines, rows, items)."""

    def __init__(self, path: str, unit: str = "line"):
        self.path, self.unit = path, unit
        self.problems: Dict[str, _Problem] = {}
        self.headlines: List[Tuple[str, str]] = []  # (message, fix): problems of the whole file
        self.parse_problems = 0
        self.unread = False  # a file this scan cannot read (an unknown format, a broken parquet): the loader says why
        self.rows = 0
        self.columns: Dict[str, None] = {}  # seen, in order

    def add(self, at: int, what: str, fix: str, example: Optional[str] = None) -> None:
        p = self.problems.setdefault(what, _Problem(what, fix, example))
        p.count += 1
        if len(p.at) < EXAMPLES:
            p.at.append(at)

    def place(self, at: int) -> str:
        return f"{self.path}:{at}" if self.unit == "line" else f"{self.path} {self.unit} {at}"

    def render(self) -> List[Tuple[str, str]]:
        out = list(self.headlines)
        for p in sorted(self.problems.values(), key=lambda p: p.at[0]):
            places = ", ".join(map(str, p.at)) + (", ..." if p.count > len(p.at) else "")
            rows = f"{p.count} row{'s' if p.count > 1 else ''}: {self.unit}{'s' if p.count > 1 else ''} {places}"
            example = f" ({p.example})" if p.example else ""
            out.append((f"{self.place(p.at[0])}: {p.what}{example} [{rows}]", p.fix))
        return out


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, dict):
        return "a JSON object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "text"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"


def _short(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text[:60] + "..." if len(text) > 60 else text


def _fingerprint(path: str) -> Tuple[str, int, int]:
    st = os.stat(path)
    return os.path.abspath(path), st.st_size, st.st_mtime_ns


_SCANNED: set = set()  # files whose every line parsed (fingerprints): _load_file need not parse them again
_CLEAN: set = set()  # sources scanned without a problem, as they were then: not scanned again (a sweep's trials)


def _json_lines(path: str) -> bool:
    """A ``.json`` file in JSON-lines form (not one JSON array)."""
    with open(path, "rb") as f:
        head = f.read(1)
        while head and head.isspace():
            head = f.read(1)
    return head != b"["


def _decode(scan: _Scan, n: int, raw: bytes) -> Optional[str]:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        scan.parse_problems += 1
        scan.add(n, "the line is not UTF-8 text", "save the file as UTF-8", f"byte {e.start + 1}")
        return None


def _jsonl_rows(path: str, scan: _Scan) -> Iterator[Tuple[int, dict]]:
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            line = _decode(scan, n, raw)
            if line is None or not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                scan.parse_problems += 1
                scan.add(n, "the line is not valid JSON", "fix or remove those lines: each line is one JSON object, "
                         '{"column": value, ...}', e.msg)
                continue
            if not isinstance(row, dict):
                scan.parse_problems += 1
                scan.add(n, f"the line is {_json_type(row)}, not a JSON object",
                         'fix or remove those lines: each line is one row, {"column": value, ...}', _short(row))
                continue
            yield n, row


def _json_array_rows(path: str, scan: _Scan) -> Iterator[Tuple[int, dict]]:
    scan.unit = "item"
    with open(path, "rb") as f:
        raw = f.read()
    try:
        items = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        scan.parse_problems += 1
        scan.unit = "line"
        scan.add(raw.count(b"\n", 0, e.start) + 1, "the line is not UTF-8 text", "save the file as UTF-8",
                 f"byte {e.start + 1}")
        return
    except json.JSONDecodeError as e:
        scan.parse_problems += 1
        scan.unit = "line"
        scan.add(e.lineno, "the file is not valid JSON",
                 "fix the file: one JSON array of objects, or one object a line", e.msg)
        return
    if not isinstance(items, list):
        scan.unread = True  # not rows: the loader says so
        return
    for n, row in enumerate(items, 1):
        if not isinstance(row, dict):
            scan.parse_problems += 1
            scan.add(n, f"the item is {_json_type(row)}, not a JSON object",
                     'each item is one row, {"column": value, ...}', _short(row))
            continue
        yield n, row


def _csv_rows(path: str, scan: _Scan) -> Iterator[Tuple[int, dict]]:
    import csv

    with open(path, "rb") as f:
        def lines():
            for n, raw in enumerate(f, 1):
                line = _decode(scan, n, raw)
                yield raw.decode("utf-8", "replace") if line is None else line

        reader = csv.reader(lines())
        header = next(reader, None)
        if header is None:
            return
        scan.columns.update(dict.fromkeys(header))
        for values in reader:
            if values:
                yield reader.line_num, {h: None if v in CSV_NULLS else v for h, v in zip(header, values)}


def _txt_rows(path: str, scan: _Scan) -> Iterator[Tuple[int, dict]]:
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            line = _decode(scan, n, raw)
            if line is not None:
                yield n, {"text": line.rstrip("\r\n")}


def _parquet_rows(path: str, scan: _Scan, wanted: List[str]) -> Iterator[Tuple[int, dict]]:
    import pyarrow.parquet as pq

    scan.unit = "row"
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # not parquet
        scan.unread = True
        scan.headlines.append((f"cannot read data file {path} as parquet: {first_line(e)}",
                               "give a parquet file, or another format: .jsonl, .json, .csv, .txt"))
        return
    names = list(pf.schema_arrow.names)
    scan.columns.update(dict.fromkeys(names))
    read = [c for c in wanted if c in names] or names[:1]
    n = 0
    for batch in pf.iter_batches(columns=read):
        for row in batch.to_pylist():
            n += 1
            yield n, row


def _rows(path: str, scan: _Scan, wanted: List[str]) -> Iterator[Tuple[int, dict]]:
    ext = os.path.splitext(path)[1].lower()
    if ext == ".jsonl" or ext == ".json" and _json_lines(path):
        return _jsonl_rows(path, scan)
    if ext == ".json":
        return _json_array_rows(path, scan)
    if ext == ".csv":
        return _csv_rows(path, scan)
    if ext == ".txt":
        return _txt_rows(path, scan)
    if ext == ".parquet":
        return _parquet_rows(path, scan, wanted)
    scan.unread = True
    scan.headlines.append((f"data file {path}: unknown format {ext!r}", f"use one of {', '.join(FILE_FORMATS)}"))
    return iter(())


@dataclass
class _ColumnState:
    present: int = 0
    missing: List[int] = field(default_factory=list)
    missing_count: int = 0
    kinds: Dict[str, List[int]] = field(default_factory=dict)  # kind → first places
    kind_counts: Dict[str, int] = field(default_factory=dict)
    nonempty: int = 0
    texts: int = 0


def _value_fix(check: ColumnCheck) -> str:
    if check.kinds == (BOOL,):
        return (f"every row needs true (desirable) or false (undesirable) in {check.column!r} ({check.key}): fix or "
                "remove those rows")
    wants = "text" if check.kinds == (TEXT,) else "text or a list of {role, content} messages"
    return f"every row needs {wants} in {check.column!r} ({check.key}): fix or remove those rows"


def _check_value(scan: _Scan, at: int, check: ColumnCheck, value: Any, state: _ColumnState) -> None:
    subject = f"{check.key} ({check.column!r})"
    if check.kinds == (BOOL,):  # kto's label: true (desirable) or false (undesirable), nothing else
        if scan.path.endswith(".csv") and value in CSV_BOOLS:  # a CSV holds text: pandas (the csv reader of
            value = CSV_BOOLS[value]  # ``datasets``) reads these as booleans
        if not isinstance(value, bool):
            scan.add(at, f"{subject} is {_json_type(value)}, not a boolean", _value_fix(check), f"e.g. {_short(value)}")
        else:
            state.kind_counts[BOOL] = state.kind_counts.get(BOOL, 0) + 1
        return
    if value is None:
        scan.add(at, f"{subject} is null", _value_fix(check))
        return
    if isinstance(value, str):
        kind = TEXT
        state.texts += 1
        state.nonempty += bool(value.strip())
    elif _is_message_like(value):
        problem = chat_problem(value)
        if problem:
            what, example = problem
            fix = MESSAGE_FIX if "part" not in what else ("this runner trains on text: remove the parts that are "
                                                           "not text (images, audio), or those rows")
            scan.add(at, f"{subject} {what}", fix, example)
            return
        kind = CHAT
        if check.reference and not any(m.get("role") == "assistant" for m in value):
            scan.add(at, f"{subject} has no assistant message", "evaluation compares the model's answer with a "
                     "conversation's last assistant message: give every eval conversation one, or remove those rows")
    else:
        wants = "text" if check.kinds == (TEXT,) else "text or a list of {role, content} messages"
        scan.add(at, f"{subject} is {_json_type(value)}, not {wants}", _value_fix(check), f"e.g. {_short(value)}")
        return
    if kind not in check.kinds:
        scan.add(at, f"{subject} is a list of chat messages, not text", f"the {check.key} of this trainer is plain "
                 "text: use trainer=sft for chat messages, or give text")
        return
    state.kind_counts[kind] = state.kind_counts.get(kind, 0) + 1
    places = state.kinds.setdefault(kind, [])
    if len(places) < EXAMPLES:
        places.append(at)


def _finish_columns(scan: _Scan, checks: Tuple[ColumnCheck, ...], states: List[_ColumnState]) -> None:
    """Per column of a scanned file: not there at all, missing from some rows, text and messages mixed, all empty."""
    for check, state in zip(checks, states):
        subject = f"{check.key} ({check.column!r})"
        if not state.present:
            if scan.rows and not check.optional:
                found = f"column {check.column!r} ({check.key}) not found in {scan.path}; columns there: "
                scan.headlines.append((found + ", ".join(scan.columns), f"set {check.key}=<one of them>"))
            continue
        if state.missing_count:
            p = _Problem(f"{subject} is missing (the row has no {check.column!r})", _value_fix(check), None,
                         state.missing_count, state.missing)
            scan.problems[p.what] = p
        if check.one_kind and len(state.kind_counts) > 1:
            odd = min(state.kind_counts, key=lambda k: (state.kind_counts[k], k))
            other = CHAT if odd == TEXT else TEXT
            names = {TEXT: "text", CHAT: "chat messages"}
            p = _Problem(f"{subject} holds {names[odd]}, while {state.kind_counts[other]} other rows hold "
                         f"{names[other]} (the first: {scan.unit} {state.kinds[other][0]})",
                         "a column holds text in every row or messages in every row: convert the odd rows, or "
                         "split the file", None, state.kind_counts[odd], state.kinds[odd])
            scan.problems[p.what] = p
        if check.learned and state.texts and not state.nonempty and not state.kind_counts.get(CHAT):
            empty = (f"every row of {scan.path} has an empty {check.key} ({check.column!r}): there is no text to "
                     "learn from")
            scan.headlines.append((empty, f"fill the column, or set {check.key} to another one"))


def _source_files(source: InputSource) -> Optional[List[str]]:
    if not isinstance(source.path, str):
        return None
    path = os.path.expanduser(source.path)
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path) or any(os.path.isfile(os.path.join(path, f))
                                      for f in ("dataset_info.json", "dataset_dict.json")):
        return None  # a dataset name, a saved dataset: not files to scan
    return split_files(path, source.split)


def _scan_source(source: InputSource, files: List[str]) -> Tuple[List[_Scan], List[int], int, str]:
    """Scan the files of a source: (a scan per file, the places of identical pairs, the rows whose values were
    checked, what a place is: line, row, item)."""
    scans, identical, rows = [], [], 0
    chosen_rejected = [c.column for c in source.checks if c.key in ("data.text_column", "data.rejected_text_column")]
    for path in files:
        scan = _Scan(path)
        states = [_ColumnState() for _ in source.checks]
        wanted = [c.column for c in source.checks]
        for at, row in _rows(path, scan, wanted):
            scan.rows += 1
            for k in row:
                if k not in scan.columns:
                    scan.columns[k] = None
            rows += 1
            if source.limit and rows > source.limit:
                continue  # not read by the run (data.max_samples): the rest is parsed only
            for check, state in zip(source.checks, states):
                if check.column not in row:
                    state.missing_count += 1
                    if len(state.missing) < EXAMPLES:
                        state.missing.append(at)
                    continue
                state.present += 1
                _check_value(scan, at, check, row[check.column], state)
            if source.pairs and len(chosen_rejected) == 2:
                chosen, rejected = (row.get(c) for c in chosen_rejected)
                if chosen is not None and chosen == rejected:
                    identical.append(at)
        _finish_columns(scan, source.checks, states)
        if not scan.parse_problems:
            _SCANNED.add(_fingerprint(path))
        scans.append(scan)
    if files and not rows and not any(s.parse_problems or s.unread for s in scans):
        where = files[0] if len(files) == 1 else f"{source.path} ({', '.join(map(os.path.basename, files))})"
        scans[0].headlines.append((f"the data file {where} is empty: it holds no row", "give it rows"))
    return scans, identical, min(rows, source.limit) if source.limit else rows, scans[0].unit if scans else "line"


def _trainer_reads(cfg: Any, column: str, reference: bool = False, shape: Optional[str] = None,
                   ) -> Tuple[ColumnCheck, ...]:
    """The columns a data set of this run is read for: the trainer's data shape's (``shape``, else the trainer's)."""
    d = cfg.data
    shape = shape or registry.spec(cfg.trainer.name).data_shape
    if shape == "text":
        return (ColumnCheck(column, "data.text_column", (TEXT,), learned=True),)
    if shape == "chat":
        return (ColumnCheck(column, "data.text_column", one_kind=True, learned=True, reference=reference),)
    if shape == "preference":
        checks = [ColumnCheck(column, "data.text_column", one_kind=True, reference=reference)]
        if d.prompt_text_column:
            checks.insert(0, ColumnCheck(d.prompt_text_column, "data.prompt_text_column", one_kind=True))
        if d.rejected_text_column:
            checks.append(ColumnCheck(d.rejected_text_column, "data.rejected_text_column", one_kind=True))
        return tuple(checks)
    if shape == "feedback":  # kto: unpaired (a boolean label per row), or pairs (data.rejected_text_column)
        checks = [ColumnCheck(column, "data.text_column", one_kind=True, reference=reference)]
        if d.prompt_text_column:
            checks.insert(0, ColumnCheck(d.prompt_text_column, "data.prompt_text_column", one_kind=True))
        if d.rejected_text_column:
            checks.append(ColumnCheck(d.rejected_text_column, "data.rejected_text_column", one_kind=True))
        else:
            checks.append(ColumnCheck(d.label_column, "data.label_column", (BOOL,)))
        return tuple(checks)
    if d.prompt_text_column:  # prompts (ppo, grpo)
        return (ColumnCheck(d.prompt_text_column, "data.prompt_text_column"),)
    return (ColumnCheck(column, "data.text_column"),)


def input_sources(cfg: Any) -> List[InputSource]:
    """Every data set a run of the resolved ``cfg`` reads, with the columns it reads there: the training data, the
    validation data (data.valid_path, or data.valid_split), and with features=[eval] eval.dataset_path (as
    features/evaluation.py and the PPO trainer read it: the text in the trainer's conventional column where
    data.text_column is left at its default and the file lacks it)."""
    from autotrain_hydra.schema import data_peek
    from autotrain_hydra.schema.resolve import text_column_for

    d, spec = cfg.data, registry.spec(cfg.trainer.name)
    evaluation = spec.evaluation if cfg.eval.enabled else None
    eval_path = cfg.eval.dataset_path if evaluation else None
    # where a generator's evaluation takes its reference answers: eval.dataset_path, else the validation data,
    # else the held-out training rows
    reference = None if evaluation != "generator" or eval_path else (
        "data.valid_path" if d.valid_path else "data.valid_split" if d.valid_split else "data.path")
    sources = [InputSource(d.path, d.train_split or "train", "data.path",
                           _trainer_reads(cfg, d.text_column, reference == "data.path"), limit=d.max_samples,
                           pairs=spec.data_shape == "preference"
                           or bool(spec.data_shape == "feedback" and d.rejected_text_column))]
    if d.valid_path:
        sources.append(InputSource(d.valid_path, "train", "data.valid_path",
                                   _trainer_reads(cfg, d.text_column, reference == "data.valid_path")))
    elif d.valid_split:
        sources.append(InputSource(d.path, d.valid_split, "data.valid_split",
                                   _trainer_reads(cfg, d.text_column, reference == "data.valid_split")))
    if eval_path:
        present = data_peek.columns(eval_path) or []
        column = text_column_for(present, cfg.trainer.name, d.text_column) or d.text_column
        if evaluation == "generator":
            checks = [ColumnCheck(column, "data.text_column", reference=True)]
            if d.prompt_text_column:
                checks.append(ColumnCheck(d.prompt_text_column, "data.prompt_text_column", optional=True))
            checks = tuple(checks)
        else:  # scorer: pairs; policy: prompts
            checks = _trainer_reads(cfg, column, shape="preference" if evaluation == "scorer" else "prompts")
        sources.append(InputSource(eval_path, "train", "eval.dataset_path", checks))
    return sources


def check_inputs(cfg: Any) -> List[str]:
    """Scan every data file a run of the resolved ``cfg`` reads, before any model loads: invalid JSON, lines that
    are not objects, bytes that are not UTF-8, and in the columns the trainer reads null, missing or mistyped
    values, messages it cannot render (unknown roles, non-text parts), text and messages mixed in a column. Every
    problem of every file in one DataError (exit 2), each as ``file:line`` with its count and first places; the
    warnings (preference pairs whose chosen is their rejected) are logged once and returned."""
    lines: List[Tuple[str, str]] = []
    warnings: List[str] = []
    for source in input_sources(cfg):
        files = _source_files(source)
        if not files:
            continue  # a dataset name, a saved dataset, a path that is not there: the loader says what it finds
        key = (tuple(_fingerprint(f) for f in files), source.checks, source.limit, source.pairs)
        if key in _CLEAN:
            continue
        scans, identical, rows, unit = _scan_source(source, files)
        found = [line for s in scans for line in s.render()]
        if identical:
            found += _identical_pairs(cfg, source, identical, rows, unit, warnings)
        lines += found
        if not found:
            _CLEAN.add(key)
    if lines:
        fixes = list(dict.fromkeys(fix for _, fix in lines))
        raise DataError("the data has rows this run cannot read (found before any model was loaded):\n" +
                        "\n".join(f"  {message}" for message, _ in dict.fromkeys(lines)) + "\n" +
                        "\n".join(f"    fix: {fix}" for fix in fixes))
    for w in warnings:
        log.warning(w)
    return warnings


def _identical_pairs(cfg: Any, source: InputSource, identical: List[int], rows: int, unit: str,
                     warnings: List[str]) -> List[Tuple[str, str]]:
    """Pairs whose chosen equals their rejected teach no preference. All of them: nothing to learn for dpo
    (without distillation) and reward, an error; orpo still learns its NLL term on chosen, a warning. Some: a
    warning naming them."""
    trainer = cfg.trainer.name
    places = ", ".join(map(str, identical[:EXAMPLES])) + (", ..." if len(identical) > EXAMPLES else "")
    what = (f"{len(identical)} of {rows} preference pairs of {source.path} have chosen equal to rejected "
            f"({unit}s {places}): they teach no preference")
    if len(identical) == rows and trainer in ("dpo", "reward") and not (trainer == "dpo" and cfg.distillation.enabled):
        nothing = (f"every pair of {source.path} has chosen equal to rejected ({rows} pairs): the {trainer} trainer "
                   "learns nothing from them (its loss and gradient are the same for every pair)")
        fix = "give pairs whose rejected response differs from the chosen one (is data.rejected_text_column right?)"
        return [(nothing, fix)]
    warnings.append(what)
    return []


# ----------------------------------------------------------------------------------------------- generic
def lm_blocks(ds: Any, tokenizer: Any, text_column: str, block_size: int, source: str):
    """``training.packing=true``: tokenize texts, append EOS, concatenate and cut into ``block_size`` blocks (the
    last, shorter one kept); a block is one example."""
    _require_text(ds, text_column, source)
    eos = tokenizer.eos_token_id

    def tokenize(batch):
        ids = tokenizer(batch[text_column], add_special_tokens=True)["input_ids"]
        return {"input_ids": [x + [eos] for x in ids]}

    def group(batch):
        flat = [t for seq in batch["input_ids"] for t in seq]
        blocks = [flat[i:i + block_size] for i in range(0, len(flat), block_size)]
        if len(blocks) > 1 and len(blocks[-1]) < block_size // 4:
            blocks.pop()  # a scrap too short to be worth a step
        return {"input_ids": blocks}

    tokenized = ds.map(tokenize, batched=True, remove_columns=ds.column_names, desc="tokenize")
    return tokenized.map(group, batched=True, batch_size=len(tokenized), desc=f"blocks of {block_size}")


def _require_text(ds: Any, text_column: str, source: str) -> None:
    sample = ds[0][text_column]
    if not isinstance(sample, str):
        raise DataError(f"column {text_column!r} of {source} holds {type(sample).__name__}, not text: the generic "
                        f"trainer needs plain strings (use trainer=sft for chat messages)")


def lm_sequences(ds: Any, tokenizer: Any, text_column: str, block_size: int, source: str):
    """Tokenize each text with EOS appended; a text longer than ``block_size`` tokens becomes several examples of at
    most ``block_size`` (no text is cut away; a last piece of a single token, which has no next token to learn, is
    left out). One text (or piece), one example: ``training.batch_size`` counts them."""
    _require_text(ds, text_column, source)
    eos = tokenizer.eos_token_id

    def tokenize(batch):
        out = []
        for ids in tokenizer(batch[text_column], add_special_tokens=True)["input_ids"]:
            ids = ids + [eos]
            out += [ids[i:i + block_size] for i in range(0, len(ids), block_size) if len(ids[i:i + block_size]) > 1]
        return {"input_ids": out}

    return ds.map(tokenize, batched=True, remove_columns=ds.column_names, desc="tokenize")


class FlatCollator:
    """Padding-free batches: the batch's sequences concatenated into one row, no padding, position ids restarting at
    each sequence (attention stays within a sequence: varlen attention), and no label across a boundary (the first
    token of each sequence is not a target)."""

    def __call__(self, features):
        import torch

        ids = [torch.tensor(f["input_ids"]) for f in features]
        positions = torch.cat([torch.arange(len(x)) for x in ids])[None]
        input_ids = torch.cat(ids)[None]
        labels = input_ids.clone()
        labels[positions == 0] = -100
        return {"input_ids": input_ids, "position_ids": positions, "labels": labels}


class PadCollator:
    """Pads ``input_ids`` right; labels are the inputs with -100 on padding (EOS tokens inside blocks stay
    supervised even when the tokenizer's pad token is its EOS)."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, features):
        import torch

        n = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), n), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(features), n), dtype=torch.long)
        for i, f in enumerate(features):
            ids[i, : len(f["input_ids"])] = torch.tensor(f["input_ids"])
            mask[i, : len(f["input_ids"])] = 1
        labels = ids.masked_fill(mask == 0, -100)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


# ----------------------------------------------------------------------------------------------- sft
def sft_sequences(ds: Any, tokenizer: Any, text_column: str, add_eos_token: bool, source: str):
    """Render each row (chat messages through the chat template, or plain text) and tokenize it.

    ``add_eos_token`` appends the EOS token when the rendered text does not already end with it."""
    sample = ds[0][text_column]
    chat = is_conversation(sample)
    if chat and not tokenizer.chat_template:
        raise DataError(f"{source} holds chat messages but the tokenizer has no chat template; set "
                        f"trainer.chat_template=chatml (or zephyr, llama2, alpaca)")
    if not chat and not isinstance(sample, str):
        raise DataError(f"column {text_column!r} of {source} holds neither text nor a list of "
                        f"{{role, content}} messages (found {type(sample).__name__})")
    eos = tokenizer.eos_token

    def render(row):
        value = row[text_column]
        if chat:
            if not is_conversation(value):
                raise DataError(f"a row of {source} has {text_column!r} that is not a list of {{role, content}} "
                                "messages, where its first row is one: a column holds one kind in every row")
            text = tokenizer.apply_chat_template(chat_messages(value), tokenize=False)
            special = False  # the template writes its own BOS where it wants one
        elif not isinstance(value, str):
            raise DataError(f"a row of {source} has {text_column!r} that is not text, where its first row is text: "
                            "a column holds one kind in every row")
        else:
            text, special = value, True
        if add_eos_token and not text.rstrip("\n").endswith(eos):
            text = text + eos
        return {"input_ids": tokenizer(text, add_special_tokens=special)["input_ids"]}

    return ds.map(render, remove_columns=ds.column_names, desc="render + tokenize")


def truncated(ds: Any, max_length: int):
    """The sequences of ``ds`` cut to their first ``max_length`` tokens (None stays None)."""
    if ds is None:
        return None
    return ds.map(lambda row: {"input_ids": row["input_ids"][:max_length]}, desc=f"truncate to {max_length}")


# ----------------------------------------------------------------------------------------------- preference
@dataclass
class PreferenceColumns:
    prompt: Optional[str]
    chosen: str
    rejected: str

    @classmethod
    def from_cfg(cls, data_cfg: Any) -> "PreferenceColumns":
        return cls(data_cfg.prompt_text_column, data_cfg.text_column, data_cfg.rejected_text_column)

    def require(self, ds: Any, source: str) -> None:
        cols = [(self.chosen, "data.text_column"), (self.rejected, "data.rejected_text_column")]
        if self.prompt:
            cols.insert(0, (self.prompt, "data.prompt_text_column"))
        require_columns(ds, [c for c, _ in cols], source, [k for _, k in cols])


def _common_prefix(a: List[int], b: List[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _as_messages(value: Any, role: str, what: str, source: str) -> List[dict]:
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    if is_conversation(value):
        return chat_messages(value)
    raise DataError(f"{what} in {source} is neither text nor a list of {{role, content}} messages")


def preference_sequences(ds: Any, tokenizer: Any, cols: PreferenceColumns, source: str,
                         max_prompt_length: Optional[int] = None, max_completion_length: Optional[int] = None):
    """Tokenize preference pairs into ``prompt_ids``, ``chosen_ids`` and ``rejected_ids``.

    Plain form: prompt/chosen/rejected strings; the completion is what the tokenized prompt+completion adds after
    the prompt, with EOS appended. Conversational form: chosen/rejected are message lists (the prompt a message
    list, a string taken as a user turn, or left out: then the messages chosen and rejected share are the prompt),
    rendered with the tokenizer's chat template. Truncation: the prompt keeps its last ``max_prompt_length`` tokens
    (cut from the left), each completion its first ``max_completion_length`` tokens (cut from the right).
    Adds ``prompt_truncated``/``completion_truncated`` flags that the caller can count.
    """
    first = ds[0]
    chat = any(is_conversation(first[c]) for c in (cols.prompt, cols.chosen, cols.rejected) if c)
    if chat and not tokenizer.chat_template:
        raise DataError(f"{source} holds chat messages but the tokenizer has no chat template; use a model whose "
                        f"tokenizer has one, or give the pairs as plain prompt/chosen/rejected text")
    eos = tokenizer.eos_token_id

    def encode(row):
        prompt = row[cols.prompt] if cols.prompt else None
        chosen, rejected = row[cols.chosen], row[cols.rejected]
        if chat:
            chosen_m = _as_messages(chosen, "assistant", "chosen", source)
            rejected_m = _as_messages(rejected, "assistant", "rejected", source)
            if prompt is None:
                n = 0
                while n < min(len(chosen_m), len(rejected_m)) - 1 and chosen_m[n] == rejected_m[n]:
                    n += 1
                prompt_m, chosen_m, rejected_m = chosen_m[:n], chosen_m[n:], rejected_m[n:]
            else:
                prompt_m = _as_messages(prompt, "user", "prompt", source)
            template = lambda msgs, gen=False: tokenizer.apply_chat_template(  # noqa: E731
                msgs, tokenize=True, add_generation_prompt=gen, return_dict=True)["input_ids"]
            prompt_ids = template(prompt_m, True) if prompt_m else []
            full_c, full_r = template(prompt_m + chosen_m), template(prompt_m + rejected_m)
        else:
            for what, value in (("prompt", prompt), ("chosen", chosen), ("rejected", rejected)):
                if value is not None and not isinstance(value, str):
                    raise DataError(f"{what} in {source} is {type(value).__name__}, not text (all three columns "
                                    f"must be text, or chosen/rejected message lists)")
            prompt = prompt or ""
            prompt_ids = tokenizer(prompt)["input_ids"] if prompt else []
            full_c = tokenizer(prompt + chosen)["input_ids"] + [eos]
            full_r = tokenizer(prompt + rejected)["input_ids"] + [eos]
        n = min(_common_prefix(prompt_ids, full_c), _common_prefix(prompt_ids, full_r)) if prompt_ids else 0
        p, c, r = prompt_ids[:n], full_c[n:], full_r[n:]
        if not p and full_c and full_r and full_c[0] == full_r[0] == tokenizer.bos_token_id:
            p, c, r = full_c[:1], c[1:], r[1:]  # a shared BOS belongs to the prompt
        prompt_cut = bool(max_prompt_length) and len(p) > max_prompt_length
        completion_cut = bool(max_completion_length) and max(len(c), len(r)) > max_completion_length
        if prompt_cut:
            p = p[-max_prompt_length:]
        if max_completion_length:
            c, r = c[:max_completion_length], r[:max_completion_length]
        return {"prompt_ids": p, "chosen_ids": c, "rejected_ids": r, "prompt_truncated": prompt_cut,
                "completion_truncated": completion_cut}

    out = ds.map(encode, remove_columns=ds.column_names, desc="tokenize pairs")
    empty = sum(1 for c, r in zip(out["chosen_ids"], out["rejected_ids"]) if not c or not r)
    if empty == len(out):
        raise DataError(f"every pair in {source} has an empty chosen or rejected response")
    return out


def truncation_counts(ds: Any) -> dict:
    return {"prompts_truncated": int(sum(ds["prompt_truncated"])),
            "completions_truncated": int(sum(ds["completion_truncated"]))}


# ----------------------------------------------------------------------------------------------- shared pieces
def prompt_of(value: Any) -> Any:
    """The prompt part of a row value: a string as is; a conversation up to (not including) its last assistant
    message."""
    if is_conversation(value):
        value = normalized(value)
        last = max((i for i, m in enumerate(value) if m["role"] == "assistant"), default=len(value))
        return list(value[:last])
    return value


def scorer_inputs(prompt: List[int], completion: List[int], max_length: int) -> List[int]:
    """prompt + response, at most ``max_length`` tokens: the first token (BOS/CLS) and the end are kept."""
    ids = prompt + completion
    if len(ids) <= max_length:
        return ids
    return ids[:1] + ids[len(ids) - (max_length - 1):]


def left_pad(seqs: List[List[int]], pad_id: int):
    """Left-padded ids and attention mask of ``seqs`` (prompts ready for generation)."""
    import torch

    n = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), n), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, s in enumerate(seqs):
        ids[i, n - len(s):] = torch.tensor(s)
        mask[i, n - len(s):] = 1
    return ids, mask
