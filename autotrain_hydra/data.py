"""Data loading, column checks and the per-trainer preprocessing (generic blocks, SFT chat sequences)."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import Any, List, Optional

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
    if ext == ".jsonl":
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
    try:
        return load_dataset(expanded, split=split)
    except Exception as e:
        where = "directory" if os.path.isdir(expanded) else "dataset name (offline, the hub cannot be reached)"
        raise DataError(f"cannot load split {split!r} of {where} {path}: {first_line(e)}") from e


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
            elif not _is_message_list(value):
                raise DataError(f"{source} row {row}: {key} ({column!r}) is {_show(value)}, neither text nor a list "
                                "of {role, content} messages; fix or remove that row")
        if len(ds) and empty == len(ds):
            raise DataError(f"every row of {source} has an empty {key} ({column!r}): there is no text to learn from")


def _is_message_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in value)


def _show(value: Any) -> str:
    if value is None:
        return "null"
    text = json.dumps(value, default=str)
    return f"{type(value).__name__} {text[:60] + '...' if len(text) > 60 else text}"


def is_conversation(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(m, dict) and "role" in m and "content" in m for m in value)


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
                raise DataError(f"a row of {source} has {text_column!r} that is not a list of {{role, content}}")
            text = tokenizer.apply_chat_template(value, tokenize=False)
            special = False  # the template writes its own BOS where it wants one
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
        return list(value)
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
    chat = is_conversation(first[cols.chosen])
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
