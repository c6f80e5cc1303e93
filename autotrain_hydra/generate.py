"""``python -m autotrain_hydra.generate RUN_DIR``: try a trained model — what does it say?

- ``--prompt TEXT``: one answer, printed;
- ``--prompts FILE`` (``.txt``: a prompt a line; ``.jsonl``: a ``prompt`` — or ``text`` — per row): an answer each,
  written to ``--output FILE.jsonl`` (else printed as JSON lines);
- neither, on a terminal: a chat (``/reset`` forgets the conversation, ``/quit`` or Ctrl-D ends it).

It loads what the run dir holds: the merged model (``merged/``, with ``peft.merge_adapter=true``), else a LoRA
adapter on its base (a ``peft=qlora`` run's base in 4-bit or 8-bit, as it trained), else the full model; with the run's tokenizer and chat template (a run of sft renders a prompt as
a user turn through it), and its ``generation_config.json`` (EOS, pad). A reward run (``trainer=reward``: a
sequence-classification scorer) scores the texts instead: ``--prompt`` is the text to score.

Errors (exit 2, no traceback): a path that is no directory, a dir that holds no run and no model, a run that has
no model yet (stopped, failed, or still training). Light until a model loads: ``--help`` imports no torch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from typing import Any, Iterator, List, Optional

from autotrain_hydra import rundir
from autotrain_hydra.errors import InputError, UserError

MODEL_FILES = ("config.json", "adapter_config.json")


@dataclass
class Found:
    path: str  # the folder to load
    kind: str  # full | adapter | merged
    trainer: Optional[str]  # the run's trainer (run.json), None for a saved model that is no run
    scorer: bool  # a sequence-classification model: scores, not generates


def locate(run_dir: str) -> Found:
    """What ``run_dir`` holds to load, or an InputError saying why there is nothing."""
    path = os.path.expanduser(run_dir)
    if not os.path.isdir(path):
        raise InputError(f"{run_dir} is not a directory.\n    fix: give the output dir of a run (outputs/<trainer>/"
                         "<date>/<time>, or the output_dir=... you set)")
    manifest = rundir.read_manifest(path)
    trainer = manifest.trainer if manifest is not None else None
    merged = os.path.join(path, "merged")
    if os.path.isfile(os.path.join(merged, "config.json")):
        return Found(merged, "merged", trainer, _is_scorer(merged))
    if os.path.isfile(os.path.join(path, "adapter_config.json")):
        return Found(path, "adapter", trainer, trainer == "reward")
    if os.path.isfile(os.path.join(path, "config.json")):
        return Found(path, "full", trainer, _is_scorer(path))
    if manifest is not None:
        checkpoints = os.path.join(path, "checkpoints")
        resume = (f"; its checkpoints are in {checkpoints} (resume with output_dir={run_dir} "
                  "training.resume_from_checkpoint=true)" if os.path.isdir(checkpoints) else "")
        if manifest.status == "failed":
            error = (manifest.error or "").strip().splitlines()
            raise InputError(f"the run in {run_dir} failed before it saved a model{resume}.\n    its error: "
                             f"{error[0] if error else '(not recorded)'}\n    fix: fix that and run it again")
        raise InputError(f"the run in {run_dir} has no model yet: it is still training, or was stopped{resume}.\n"
                         "    fix: wait for it to end, or give the dir of a run that finished")
    raise InputError(f"{run_dir} holds no run and no model (no run.json, config.json or adapter_config.json).\n"
                     "    fix: give the output dir of a run (it holds the model, its tokenizer and metrics.json)")


def quantization_of(adapter_dir: str) -> Any:
    """The quantisation an adapter's base was trained in (``models.Quantization``; None: full precision), from the
    run's ``config.yaml``: the adapter's dir, or the run dir of a checkpoint (``<run>/checkpoints/checkpoint-N``).
    A run whose config cannot be read is loaded in full precision, and said so on stderr."""
    from omegaconf import OmegaConf

    from autotrain_hydra.models import Quantization

    path = os.path.abspath(adapter_dir)
    folders = (path, os.path.dirname(os.path.dirname(path)))
    for folder in folders:
        config = os.path.join(folder, "config.yaml")
        if not os.path.isfile(config):
            continue
        try:
            peft = OmegaConf.load(config).get("peft") or {}
            return Quantization(int(peft.get("bits") or 4)) if peft.get("method") == "qlora" else None
        except Exception:  # a damaged file (omegaconf's own errors, a wrong type)
            break
    else:
        if not any(os.path.isfile(os.path.join(f, rundir.MANIFEST)) for f in folders):
            return None  # an adapter saved by another tool: no run to ask
    print(f"note: {adapter_dir}: the run's config.yaml cannot be read, so how its base was trained (peft=qlora: in "
          "4/8-bit) is not known: the adapter is loaded on its base in full precision", file=sys.stderr)
    return None


def _is_scorer(path: str) -> bool:
    try:
        with open(os.path.join(path, "config.json"), encoding="utf-8") as f:
            architectures = json.load(f).get("architectures") or []
    except (OSError, ValueError):
        return False
    return any(a.endswith("ForSequenceClassification") for a in architectures)


class Model:
    """The loaded model and tokenizer, and how a prompt becomes its input."""

    def __init__(self, found: Found):
        from transformers import AutoTokenizer

        from autotrain_hydra import console

        console.quiet_libraries()  # as a run: no loading bars, no known library warnings
        self.found = found
        self.quantized: Optional[int] = None  # the bits of a peft=qlora run's base, loaded as trained
        self.tokenizer = AutoTokenizer.from_pretrained(found.path)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        try:
            self.model = self._load().eval()
        except OSError as e:  # an adapter whose base is gone, a file missing from the dir
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise InputError(f"cannot load the model in {found.path}: {first}\n    fix: an adapter loads on the base "
                             "its adapter_config.json names (base_model_name_or_path): put the base back there") from None
        self._generation_config()
        self.chat = found.trainer == "sft" and bool(self.tokenizer.chat_template)

    def _generation_config(self) -> None:
        """The run's generation_config.json (the tokens that end an answer): an adapter's base has its own."""
        path = os.path.join(self.found.path, "generation_config.json")
        if not self.found.scorer and os.path.isfile(path):
            from transformers import GenerationConfig

            self.model.generation_config = GenerationConfig.from_pretrained(self.found.path)

    def _load(self) -> Any:
        if self.found.kind == "adapter":
            from peft import AutoPeftModelForCausalLM, AutoPeftModelForSequenceClassification

            cls = AutoPeftModelForSequenceClassification if self.found.scorer else AutoPeftModelForCausalLM
            quantization = quantization_of(self.found.path)  # a peft=qlora run: its base in 4/8-bit, as trained
            if quantization is not None:
                from autotrain_hydra.compat import bitsandbytes

                model = cls.from_pretrained(self.found.path, use_safetensors=True, **quantization.load_kwargs())
                bitsandbytes.cpu_safe(model, training=False)
                self.quantized = quantization.bits
                return model
            return cls.from_pretrained(self.found.path, use_safetensors=True)
        from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

        cls = AutoModelForSequenceClassification if self.found.scorer else AutoModelForCausalLM
        return cls.from_pretrained(self.found.path, use_safetensors=True)

    def input_ids(self, messages: List[dict]) -> List[int]:
        """The model's input for a conversation (a chat run: through the chat template; else the text of its turns)."""
        if self.chat:
            return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                      return_dict=True)["input_ids"]
        return self.tokenizer("".join(m["content"] for m in messages))["input_ids"]

    def answer(self, messages: List[dict], max_new_tokens: int, temperature: float) -> str:
        import torch

        ids = torch.tensor([self.input_ids(messages)])
        sampling = dict(do_sample=True, temperature=temperature, top_p=1.0) if temperature > 0 else dict(
            do_sample=False)
        with torch.no_grad():
            out = self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                      pad_token_id=self.tokenizer.pad_token_id, **sampling)
        return self.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)

    def score(self, text: str) -> float:
        import torch

        batch = self.tokenizer(text, return_tensors="pt", truncation=True)
        with torch.no_grad():
            return float(self.model(**batch).logits.float().mean(-1)[0])


def read_prompts(path: str) -> Iterator[str]:
    """The prompts of a ``.txt`` (a line each) or ``.jsonl`` file (``prompt``, else ``text``, per row)."""
    if not os.path.isfile(path):
        raise InputError(f"--prompts {path}: no such file.\n    fix: give a .txt (a prompt a line) or .jsonl file")
    try:
        with open(path, encoding="utf-8", errors="strict") as f:
            lines = f.read().splitlines()
    except UnicodeDecodeError as e:
        raise InputError(f"--prompts {path}: not UTF-8 text (byte {e.start}).\n    fix: save it as UTF-8") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if not path.endswith(".jsonl"):
            yield line
            continue
        try:
            row = json.loads(line)
        except ValueError as e:
            raise InputError(f"{path}:{n} is not valid JSON ({e}).\n    fix: one JSON object a line") from None
        value = row.get("prompt", row.get("text")) if isinstance(row, dict) else None
        if not isinstance(value, str):
            raise InputError(f"{path}:{n} has no text in \"prompt\" (or \"text\").\n    fix: give each row "
                             "{\"prompt\": \"...\"}")
        yield value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m autotrain_hydra.generate", description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", help="the output dir of a run")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--prompt", help="one prompt (a reward run: the text to score)")
    source.add_argument("--prompts", help="a .txt (a prompt a line) or .jsonl ({\"prompt\": ...}) file")
    p.add_argument("--output", help="write the answers here (.jsonl), with --prompts")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--temperature", type=float, default=0.0, help="0: greedy (the default)")
    return p


def run(args: argparse.Namespace) -> int:
    if args.max_new_tokens < 1 or args.temperature < 0:
        raise InputError("--max-new-tokens must be >= 1 and --temperature >= 0")
    if args.output and not args.prompts:
        raise InputError("--output needs --prompts (a file of prompts to answer)")
    found = locate(args.run_dir)
    if args.prompt is None and args.prompts is None and not sys.stdin.isatty():
        raise InputError("give --prompt TEXT or --prompts FILE (a chat needs a terminal)")
    prompts = list(read_prompts(args.prompts)) if args.prompts else None
    if args.output:  # before the model loads: a file that cannot be written is said at once
        parent = os.path.dirname(os.path.abspath(args.output))
        if os.path.isdir(args.output) or not os.path.isdir(parent) or not os.access(parent, os.W_OK):
            raise InputError(f"--output {args.output}: cannot write a file there (a directory, or a folder that "
                             "does not exist or cannot be written).\n    fix: give a .jsonl file in a folder that exists")
    model = Model(found)
    say = (lambda text: {"text": text, "score": model.score(text)}) if found.scorer else (
        lambda text: {"prompt": text, "answer": model.answer([{"role": "user", "content": text}],
                                                             args.max_new_tokens, args.temperature)})
    if args.prompt is not None:
        result = say(args.prompt)
        print(result["score"] if found.scorer else result["answer"])
        return 0
    if prompts is not None:
        out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
        try:
            for text in prompts:
                out.write(json.dumps(say(text), ensure_ascii=False) + "\n")
        finally:
            if out is not sys.stdout:
                out.close()
        if args.output:
            print(f"{len(prompts)} answers written to {args.output}", file=sys.stderr)
        return 0
    return chat(model, args)


def chat(model: Model, args: argparse.Namespace) -> int:
    """A conversation on the terminal: each turn answered in the context of the earlier ones (a chat run's template)."""
    what = "scores each text" if model.found.scorer else "answers"
    print(f"{model.found.path} ({model.found.trainer or 'a saved model'}, {model.found.kind}) {what}; /reset, "
          "/quit", file=sys.stderr)
    messages: List[dict] = []
    while True:
        try:
            text = input("> ")
        except EOFError:
            print(file=sys.stderr)
            return 0
        if text.strip() in ("/quit", "/exit"):
            return 0
        if text.strip() == "/reset":
            messages = []
            continue
        if model.found.scorer:
            print(model.score(text))
            continue
        messages.append({"role": "user", "content": text})
        reply = model.answer(messages if model.chat else messages[-1:], args.max_new_tokens, args.temperature)
        messages.append({"role": "assistant", "content": reply})
        print(reply)


def main(argv: Optional[List[str]] = None) -> int:
    args = parser().parse_args(argv)
    try:
        return run(args)
    except UserError as e:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(e.render(), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
