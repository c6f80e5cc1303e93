"""The column names of a data set, read cheaply before anything is loaded (no ``datasets``, no torch).

Used where the config is resolved: a default ``data.text_column`` the data lack falls back to the trainer's
conventional column. Local files are peeked: the first JSON line of a ``.jsonl`` (or ``.json`` in JSON-lines form),
the header of a ``.csv``, the schema of a ``.parquet``; ``.txt`` has one column, ``text``. A directory is peeked
through its first data file for the split, or the ``dataset_info.json`` that ``save_to_disk`` writes. A dataset
name (the hub) cannot be peeked: None, and the loader names the missing column and the fix.
"""

from __future__ import annotations

import csv
import json
import os
from typing import List, Optional

DATA_EXTENSIONS = (".jsonl", ".json", ".csv", ".parquet", ".txt")
JSON_ARRAY_LIMIT = 64 * 1024 * 1024  # a .json array larger than this is not read whole to peek at it


def _jsonl_columns(path: str) -> Optional[List[str]]:
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                return None  # a broken line: the loader names it
            return list(row) if isinstance(row, dict) else None
    return []


def _json_columns(path: str) -> Optional[List[str]]:
    with open(path, encoding="utf-8", errors="replace") as f:
        head = f.read(1)
        while head and head.isspace():
            head = f.read(1)
    if head == "{":
        return _jsonl_columns(path)
    if head == "[" and os.path.getsize(path) <= JSON_ARRAY_LIMIT:
        try:
            with open(path, encoding="utf-8") as f:
                rows = json.load(f)
        except (ValueError, UnicodeDecodeError):
            return None
        if isinstance(rows, list) and rows and isinstance(rows[0], dict):
            return list(rows[0])
    return None


def _file_columns(path: str) -> Optional[List[str]]:
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".jsonl":
            return _jsonl_columns(path)
        if ext == ".json":
            return _json_columns(path)
        if ext == ".csv":
            with open(path, encoding="utf-8", errors="replace", newline="") as f:
                return next(csv.reader(f), [])
        if ext == ".txt":
            return ["text"]
        if ext == ".parquet":
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
    except (OSError, ValueError, ImportError):
        return None
    return None


def split_file(folder: str, split: str) -> Optional[str]:
    """The first data file of a directory for ``split`` (its name holds the split's name), as ``datasets`` infers
    splits from file names; a directory without split names is all ``train``."""
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files += [os.path.join(root, n) for n in sorted(names) if n.lower().endswith(DATA_EXTENSIONS)]
    named = [f for f in files if split.lower() in os.path.basename(f).lower()]
    if named:
        return named[0]
    if split == "train" and files and not any(s in os.path.basename(f).lower() for f in files
                                              for s in ("test", "valid", "eval", "dev")):
        return files[0]
    return None


def columns(path: Optional[str], split: str = "train") -> Optional[List[str]]:
    """The column names of the data at ``path`` (a file or a directory), or None when they cannot be peeked."""
    if not isinstance(path, str):
        return None
    path = os.path.expanduser(path)
    if os.path.isfile(path):
        return _file_columns(path)
    if os.path.isdir(path):
        saved = _saved_columns(path, split)
        if saved is not None:
            return saved
        found = split_file(path, split)
        return _file_columns(found) if found else None
    return None


def _saved_columns(folder: str, split: str) -> Optional[List[str]]:
    """The columns of a ``save_to_disk`` folder: a Dataset's ``dataset_info.json``, or a DatasetDict's split's."""
    for info in (os.path.join(folder, "dataset_info.json"), os.path.join(folder, split, "dataset_info.json")):
        if os.path.isfile(info):
            try:
                with open(info, encoding="utf-8") as f:
                    return list(json.load(f).get("features") or {})
            except (OSError, ValueError):
                return None
    return None
