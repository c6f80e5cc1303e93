"""Model and tokenizer loading, the offline tiny model, chat templates and LoRA.

Heavy module (torch, transformers): imported only once a run has passed validation.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional

from autotrain_hydra import paths
from autotrain_hydra.errors import InputError, ModelLoadError

log = logging.getLogger(__name__)

TINY = "tiny"
TINY_VERSION = 1  # bump when the recipe below changes: the cache key changes with it
TINY_SPEC = dict(vocab_size=512, hidden_size=64, intermediate_size=176, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=2048, rope_theta=10000.0, tie_word_embeddings=True)
SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<unk>", "<|im_start|>", "<|im_end|>"]

# Named chat templates (trainer.chat_template). ``null`` keeps the tokenizer's own.
CHAT_TEMPLATES = {
    "chatml": (
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    ),
    "zephyr": (
        "{% for message in messages %}{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' }}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
    ),
    "llama2": (
        "{% if messages[0]['role'] == 'system' %}{% set system = '<<SYS>>\n' + messages[0]['content'] + '\n<</SYS>>\n\n' %}"
        "{% set messages = messages[1:] %}{% else %}{% set system = '' %}{% endif %}"
        "{% for message in messages %}{% if message['role'] == 'user' %}"
        "{{ bos_token + '[INST] ' + (system if loop.first else '') + message['content'] + ' [/INST]' }}"
        "{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'] + ' ' + eos_token }}{% endif %}"
        "{% endfor %}"
    ),
    "alpaca": (
        "{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] + '\n\n' }}"
        "{% elif message['role'] == 'user' %}{{ '### Instruction:\n' + message['content'] + '\n\n' }}"
        "{% elif message['role'] == 'assistant' %}{{ '### Response:\n' + message['content'] + eos_token + '\n\n' }}"
        "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '### Response:\n' }}{% endif %}"
    ),
}


# ----------------------------------------------------------------------------------------------- tiny model
# the samples the tiny tokenizer is trained on (a later sample reuses their texts: it leaves the tiny model as it is)
CORPUS = ("chat", "chat_valid", "preference", "preference_valid", "prompts", "prompts_valid", "text", "text_valid")


def _corpus_files():
    return [paths.ASSETS_DIR / "data" / f"{name}.jsonl" for name in sorted(CORPUS)]


def _corpus_lines():
    for f in _corpus_files():
        for line in f.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            for v in row.values():
                if isinstance(v, str):
                    yield v
                elif isinstance(v, list):
                    for m in v:
                        yield f"{m.get('role', '')} {m.get('content', '')}"


def tiny_key() -> str:
    h = hashlib.sha256(json.dumps([TINY_VERSION, TINY_SPEC, SPECIAL_TOKENS, CHAT_TEMPLATES["chatml"]]).encode())
    for f in _corpus_files():
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def build_tiny_tokenizer(vocab_size: int = TINY_SPEC["vocab_size"]):
    """A byte-level BPE tokenizer trained on the shipped sample data: deterministic, offline, with pad/bos/eos and
    the ChatML template (its markers are single special tokens). Another ``vocab_size`` gives another vocabulary
    (a teacher for sequence-level distillation in the tests)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(list(_corpus_lines()), trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", tok.token_to_id("<s>"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>", padding_side="right", model_max_length=TINY_SPEC[
                                       "max_position_embeddings"])
    fast.chat_template = CHAT_TEMPLATES["chatml"]
    return fast


def build_tiny(path: Path, vocab_size: int = TINY_SPEC["vocab_size"]) -> None:
    """Build the tiny Llama (seeded random weights) and its tokenizer into ``path``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = build_tiny_tokenizer(vocab_size)
    config = LlamaConfig(**{**TINY_SPEC, "vocab_size": len(tok)}, pad_token_id=tok.pad_token_id,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    state = torch.random.get_rng_state()
    torch.manual_seed(0)
    try:
        model = LlamaForCausalLM(config)
    finally:
        torch.random.set_rng_state(state)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(path)
    tok.save_pretrained(path)


def tiny_model_dir() -> Path:
    """The cached tiny model directory, built on first use (atomically: a half-built cache is never used)."""
    target = paths.cache_dir() / f"tiny-llama-{tiny_key()}"
    if (target / "config.json").is_file() and (target / "tokenizer.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    try:
        log.info("building the tiny model into %s (first use; cached afterwards)", target)
        build_tiny(tmp)
        try:
            os.replace(tmp, target)
        except OSError:  # another process built it first
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_model_name(name: str) -> str:
    """``tiny`` → the cached local directory; anything else unchanged (a hub name or a local path)."""
    return str(tiny_model_dir()) if name == TINY else os.path.expanduser(name)


# ----------------------------------------------------------------------------------------------- loading


def allow_pickle(model_cfg: Any) -> bool:
    """``model.allow_pickle_weights``: false (the default) loads safetensors weights only."""
    return bool(getattr(model_cfg, "allow_pickle_weights", False))


def weights_kwargs(model_cfg: Any) -> dict:
    """``from_pretrained``'s weight format: safetensors only (``use_safetensors=True``: a folder or hub repo with
    pickle weights only fails to load rather than unpickling them), unless ``model.allow_pickle_weights=true``
    (then transformers' own choice, pickles through torch's ``weights_only`` loading)."""
    return {} if allow_pickle(model_cfg) else {"use_safetensors": True}


def refuse_pickle_weights(path: str, key: str, model_cfg: Any) -> None:
    """A local folder whose weights are pickles only (or a LoRA adapter on such a base) is refused before anything
    is loaded (the validator says the same before the run: ``schema.rules.paths.safetensors_only``)."""
    if allow_pickle(model_cfg):
        return
    from autotrain_hydra.schema.rules.paths import pickle_weights, pickle_weights_message

    files = pickle_weights(path)
    if files:
        message, fix = pickle_weights_message(key, path, files)
        raise InputError(f"{message}\n    fix: {fix}")


def _load(what: str, key: str, name: str, fn, safetensors: bool = False):
    try:
        return fn()
    except (OSError, ValueError) as e:  # ValueError: a folder with files but no loadable tokenizer
        first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
        local = os.path.isdir(name)
        hint = ("the directory holds no loadable model/tokenizer" if local else
                "it is not a local directory, and the model hub could not be reached (no network?)")
        pickles = ("\n    (weights are loaded from safetensors only: for a model that has pickle weights only "
                   "(pytorch_model.bin), set model.allow_pickle_weights=true if you trust it)"
                   if safetensors and "safetensors" in str(e) else "")
        raise ModelLoadError(
            f"cannot load the {what} {key}={name}: {hint}.\n    fix: download it ahead of time "
            f"and set {key}=/path/to/the/model, or use model=tiny\n    ({first_line}){pickles}") from e


def load_tokenizer(model_cfg: Any, chat_template: Optional[str] = None, name: Optional[str] = None,
                   key: str = "model.name"):
    from transformers import AutoTokenizer

    raw = name or model_cfg.name
    path = resolve_model_name(raw)
    tok = _load("tokenizer of", key, raw, lambda: AutoTokenizer.from_pretrained(
        path, revision=model_cfg.revision, trust_remote_code=model_cfg.trust_remote_code))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if chat_template is not None:
        tok.chat_template = resolve_chat_template(chat_template)
    return tok


def resolve_chat_template(value: str) -> str:
    if value in CHAT_TEMPLATES:
        return CHAT_TEMPLATES[value]
    path = os.path.expanduser(value)
    if os.path.isfile(path):
        return Path(path).read_text(encoding="utf-8")
    return value  # an inline Jinja template


@dataclass(frozen=True)
class Quantization:
    """``peft=qlora``: the base's weights in ``bits`` (4: nf4 with double quantisation; 8: LLM.int8), computing in
    ``compute_dtype`` (``float32`` | ``bfloat16`` | ``float16``, from ``training.mixed_precision``)."""

    bits: int
    compute_dtype: str = "float32"

    def config(self):
        import torch
        from transformers import BitsAndBytesConfig

        if self.bits == 8:
            return BitsAndBytesConfig(load_in_8bit=True)
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                  bnb_4bit_compute_dtype=getattr(torch, self.compute_dtype))

    def load_kwargs(self) -> dict:
        """``from_pretrained``'s arguments: the config, and each process's own GPU (a launched run's rank), else the
        CPU (bitsandbytes' CPU backend)."""
        import torch

        device = int(os.environ.get("LOCAL_RANK", 0)) if torch.cuda.is_available() else "cpu"
        return {"quantization_config": self.config(), "device_map": {"": device}}


def quantization_for(cfg: Any) -> Optional[Quantization]:
    """``peft=qlora``'s quantisation of the base (None otherwise): ``peft.bits``, computing in the run's precision
    (``training.mixed_precision``: bf16/fp16 where the run uses them, else float32)."""
    if cfg.peft.method != "qlora":
        return None
    import torch

    precision = cfg.training.mixed_precision
    bf16 = precision == "bf16" or (precision in (None, "auto") and torch.cuda.is_available()
                                    and torch.cuda.is_bf16_supported())
    dtype = "bfloat16" if bf16 else "float16" if precision == "fp16" else "float32"
    return Quantization(int(cfg.peft.bits), dtype)


def prepare_quantized(model: Any) -> Any:
    """A just-loaded quantised model made ready for LoRA training (peft's ``prepare_model_for_kbit_training``: the
    layers left in full precision cast to float32; gradient checkpointing, and the inputs that carry gradients for
    it, stay the run's choice, ``training.gradient_checkpointing``), and runnable in evaluation on any CPU."""
    from peft import prepare_model_for_kbit_training

    from autotrain_hydra.compat import bitsandbytes

    bitsandbytes.cpu_safe(model)
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)


def load_causal_lm(model_cfg: Any, key: str = "model.name", name: Optional[str] = None,
                   attn_implementation: Optional[str] = None, quantization: Optional[Quantization] = None):
    from transformers import AutoModelForCausalLM

    raw = name or model_cfg.name
    path = resolve_model_name(raw)
    extra = {"attn_implementation": attn_implementation} if attn_implementation else {}
    if attn_implementation == "varlen_sdpa":
        import autotrain_hydra.attention  # noqa: F401  (registers it)
    refuse_pickle_weights(path, key, model_cfg)
    weights = weights_kwargs(model_cfg)
    if quantization is not None:
        extra.update(quantization.load_kwargs())
    model = _load("model", key, raw, lambda: AutoModelForCausalLM.from_pretrained(
        path, revision=model_cfg.revision, trust_remote_code=model_cfg.trust_remote_code, **weights, **extra),
        safetensors=bool(weights))
    return prepare_quantized(model) if quantization is not None else model


def load_saved_causal_lm(path: str, model_cfg: Any, key: str = "output_dir",
                         quantization: Optional[Quantization] = None):
    """A run's saved causal LM: a whole model, or a LoRA adapter on the base its adapter_config.json names (a
    ``peft=qlora`` adapter: on its base quantised as it trained, ``quantization``)."""
    if os.path.isfile(os.path.join(path, "adapter_config.json")):
        from peft import AutoPeftModelForCausalLM

        refuse_pickle_weights(path, key, model_cfg)  # peft has no use_safetensors: the adapter and its base, checked
        extra = quantization.load_kwargs() if quantization is not None else {}
        model = _load("model", key, path, lambda: AutoPeftModelForCausalLM.from_pretrained(
            path, trust_remote_code=model_cfg.trust_remote_code, **extra))
        if quantization is not None:
            from autotrain_hydra.compat import bitsandbytes

            bitsandbytes.cpu_safe(model, training=False)
        return model
    return load_causal_lm(model_cfg, key=key, name=path)


def load_saved_scorer(path: str, model_cfg: Any, key: str = "output_dir"):
    """A run's saved sequence-classification model (a reward model), with the head it was saved with."""
    from transformers import AutoModelForSequenceClassification

    refuse_pickle_weights(path, key, model_cfg)
    weights = weights_kwargs(model_cfg)
    return _load("model", key, path, lambda: AutoModelForSequenceClassification.from_pretrained(
        path, trust_remote_code=model_cfg.trust_remote_code, **weights), safetensors=bool(weights))


def load_sequence_classifier(model_cfg: Any, num_labels: int = 1, name: Optional[str] = None,
                             key: str = "model.name", attn_implementation: Optional[str] = None,
                             quantization: Optional[Quantization] = None, say_new_head: bool = True):
    """A sequence classifier on the base (its new head initialised: said in one line, not transformers' table).
    Quantised, the head stays in full precision (transformers leaves a model's output layer unquantised)."""
    from transformers import AutoModelForSequenceClassification

    raw = name or model_cfg.name
    path = resolve_model_name(raw)
    extra = {"attn_implementation": attn_implementation} if attn_implementation else {}
    if attn_implementation == "varlen_sdpa":
        import autotrain_hydra.attention  # noqa: F401  (registers it)
    refuse_pickle_weights(path, key, model_cfg)
    weights = weights_kwargs(model_cfg)
    if quantization is not None:
        extra.update(quantization.load_kwargs())
    from autotrain_hydra.compat.transformers import new_head_said

    def said(keys: List[str]) -> None:
        if say_new_head:  # said once: not again when the base is reloaded to merge an adapter into it
            log.info("%s: a new %d-output head (%s) is initialised on the base, as a reward model starts", raw,
                     num_labels, ", ".join(keys))

    with new_head_said(("score", "classifier"), said):
        model = _load("model", key, raw, lambda: AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=num_labels, revision=model_cfg.revision, trust_remote_code=model_cfg.trust_remote_code,
            **weights, **extra), safetensors=bool(weights))
    return prepare_quantized(model) if quantization is not None else model


def lora_config(peft_cfg: Any, model: Any, task_type: str = "CAUSAL_LM"):
    """The LoRA config of ``peft.*`` for ``model`` (None unless ``peft.method`` trains an adapter: lora, qlora);
    target modules the model lacks are an InputError naming them and the model's linear layers (before any trainer
    is built)."""
    from omegaconf import OmegaConf
    from peft import LoraConfig

    from autotrain_hydra.schema.params import uses_lora

    if not uses_lora(peft_cfg.method):
        return None
    targets = peft_cfg.target_modules
    if not isinstance(targets, str):
        targets = list(OmegaConf.to_container(targets)) if targets is not None else None
    if isinstance(targets, list):
        import torch

        linear = sorted({name.rsplit(".", 1)[-1] for name, mod in model.named_modules()
                         if isinstance(mod, torch.nn.Linear)})
        names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
        missing = [t for t in targets if t not in names]
        if missing:
            raise InputError(f"peft.target_modules={targets}: this model has no module named {', '.join(missing)}"
                             f"\n    fix: name some of its linear layers ({', '.join(linear)}), or "
                             "peft.target_modules=all-linear")
    return LoraConfig(r=peft_cfg.lora_r, lora_alpha=peft_cfg.lora_alpha, lora_dropout=peft_cfg.lora_dropout,
                      target_modules=targets, bias="none", task_type=task_type)


# ----------------------------------------------------------------------------------------------- serving-ready output
SHARD_SIZE = "5GB"  # safetensors shards above this (what vLLM, TGI and the hub expect), with their index


def end_of_turn_ids(tokenizer: Any) -> List[int]:
    """The tokens that end an answer: the tokenizer's EOS, and the special token the chat template closes an
    assistant turn with (ChatML's ``<|im_end|>``), which a chat-trained model emits before any EOS."""
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    if tokenizer.chat_template:
        marker = "\u2063answer\u2063"  # text no template writes: where the answer ends is found by it
        try:
            text = tokenizer.apply_chat_template([{"role": "user", "content": "q"},
                                                  {"role": "assistant", "content": marker}], tokenize=False)
        except Exception:  # a template that needs other roles or fields: the EOS alone
            return ids
        if marker not in text:
            return ids
        special = set(tokenizer.all_special_ids) | {i for i, t in tokenizer.added_tokens_decoder.items() if t.special}
        tail = tokenizer(text[text.rindex(marker) + len(marker):], add_special_tokens=False)["input_ids"]
        ids += [i for i in tail if i in special and i not in ids][:1]
    return ids


def set_end_of_answer(model: Any, tokenizer: Any) -> None:
    """Make ``model``'s ``generation_config`` say how its answers end, as a server reads it: the tokens the base
    already ends on, the EOS and the chat template's end of turn; the pad token."""
    config = getattr(model, "generation_config", None)
    if config is None:
        return
    had = config.eos_token_id
    eos = list(had) if isinstance(had, (list, tuple)) else [had] if had is not None else []
    eos += [i for i in end_of_turn_ids(tokenizer) if i not in eos]
    if eos:
        config.eos_token_id = eos[0] if len(eos) == 1 else eos
    config.pad_token_id = tokenizer.pad_token_id
    if tokenizer.bos_token_id is not None:
        config.bos_token_id = tokenizer.bos_token_id


def save_for_serving(model: Any, tokenizer: Any, path: str, state_dict: Any = None) -> None:
    """``model`` and ``tokenizer`` saved into ``path`` as servers load them: safetensors in ``SHARD_SIZE`` shards,
    ``generation_config.json`` with the end-of-answer tokens (an adapter's too, beside it: peft writes none)."""
    set_end_of_answer(model, tokenizer)
    if hasattr(model, "peft_config"):  # a LoRA adapter
        model.save_pretrained(path, state_dict=state_dict)
        if getattr(model, "generation_config", None) is not None:
            model.generation_config.save_pretrained(path)
    else:
        model.save_pretrained(path, state_dict=state_dict, safe_serialization=True, max_shard_size=SHARD_SIZE)
    tokenizer.save_pretrained(path)


def merged_in_full_precision(model_cfg: Any, adapter_model: Any, num_labels: Optional[int] = None) -> Any:
    """``adapter_model``'s LoRA adapter (and the weights it trains in full, a scorer's head) merged into the base
    reloaded in its own precision: the way to merge a ``peft=qlora`` adapter, never into 4-bit weights (rounding
    them again, and saving a model no server loads as it is). ``num_labels``: the base as a sequence classifier."""
    from peft import PeftModel

    with tempfile.TemporaryDirectory(prefix="autotrain-hydra-adapter-") as adapter:
        adapter_model.save_pretrained(adapter)
        base = (load_causal_lm(model_cfg) if num_labels is None else
                load_sequence_classifier(model_cfg, num_labels=num_labels, say_new_head=False))
        merged = PeftModel.from_pretrained(base, adapter).merge_and_unload()
    pad = getattr(getattr(adapter_model, "config", None), "pad_token_id", None)  # set by the trainer (a scorer
    if pad is not None:  # batches by it): a base whose config has none would be saved without it
        merged.config.pad_token_id = pad
    return merged


def sequence_logps(model: Any, prompt_ids, completion_ids, pad_id: int):
    """Sum of log-probabilities of each completion given its prompt (one forward pass for the batch)."""
    import torch

    seqs = [p + c for p, c in zip(prompt_ids, completion_ids)]
    n = max(len(s) for s in seqs)
    device = next(model.parameters()).device
    ids = torch.full((len(seqs), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), n), dtype=torch.long)
    target = torch.zeros((len(seqs), n), dtype=torch.bool)
    for i, (p, c) in enumerate(zip(prompt_ids, completion_ids)):
        ids[i, : len(p) + len(c)] = torch.tensor(p + c)
        mask[i, : len(p) + len(c)] = 1
        target[i, len(p): len(p) + len(c)] = True
    ids, mask, target = ids.to(device), mask.to(device), target.to(device)
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    logp = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    return (logp * target[:, 1:]).sum(-1)


# ----------------------------------------------------------------------------------------------- reward models
class RewardScorer:
    """A trained reward model (``trainer=reward``'s output: ppo's ``trainer.rl.reward_model_path``, grpo's
    ``trainer.grpo.reward_model_path``): scores prompt + response (the mean of its heads), in its own tokenizer's
    terms; safetensors weights only unless ``model.allow_pickle_weights`` (``model_cfg``: the run's model node)."""

    def __init__(self, path: str, policy_tokenizer: Any, device: Any, max_length: Optional[int],
                 model_cfg: Any = None, key: str = "trainer.rl.reward_model_path"):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        refuse_pickle_weights(path, key, model_cfg)
        self.model = AutoModelForSequenceClassification.from_pretrained(
            path, **weights_kwargs(model_cfg)).to(device).eval()
        self.model.requires_grad_(False)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if self.model.config.pad_token_id is None:
            self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.policy_tokenizer = policy_tokenizer
        self.same_vocab = self.tokenizer.get_vocab() == policy_tokenizer.get_vocab()
        self.device, self.max_length = device, max_length

    def __call__(self, sequences: List[List[int]]) -> Any:
        """``sequences``: prompt + response token ids of the policy (no padding)."""
        import torch

        if not self.same_vocab:  # decoded and re-tokenized for the reward model
            return self.score_texts(self.policy_tokenizer.batch_decode(sequences, skip_special_tokens=True))
        n = max(len(s) for s in sequences)  # fast path: the ids mean the same to both
        ids = torch.full((len(sequences), n), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, s in enumerate(sequences):
            ids[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = 1
        return self._score({"input_ids": ids, "attention_mask": mask})

    def score_texts(self, texts: List[str]) -> Any:
        """Scores of prompt + response texts, tokenized by the reward model's tokenizer (cut to max_length)."""
        return self._score(self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                                          return_tensors="pt"))

    def _score(self, batch: Any) -> Any:
        import torch

        with torch.no_grad():
            return self.model(**{k: v.to(self.device) for k, v in batch.items()}).logits.float().mean(-1)
