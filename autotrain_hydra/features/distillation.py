"""Knowledge distillation (``features=[distillation]``) for the generic, sft, dpo and orpo trainers.

The mode is chosen from the two tokenizers, before the teacher's weights are loaded, and reported in the log:

- **logit distillation** when teacher and student share a vocabulary: the temperature-scaled KL divergence
  KL(teacher_T ‖ student_T) on the tokens the trainer supervises, times T², is added to the trainer's loss:
  ``loss = (1 − alpha) · own loss + alpha · T² · KL``. generic/sft: every supervised token of the batch (one
  student forward serves both terms); dpo/orpo: the prompt + chosen response of each pair, KL on the chosen
  tokens (one extra student forward over the chosen half).
- **sequence-level distillation** when they do not: before training, the teacher answers every training prompt
  (greedy, ``distillation.max_new_tokens``) from ``distillation.teacher_prompt_template``; the answers are written
  to ``<output_dir>/distillation/teacher_responses.jsonl`` and the teacher is freed. During training the student's
  next-token loss on those answers, rendered with ``distillation.student_prompt_template``, is the distillation
  term (same alpha weighting; the temperature does not apply to hard targets).

The teacher runs without gradients, in eval mode, on the student's device, in ``distillation.teacher_dtype``
(null: as saved). Evaluation (eval_loss and enhanced evaluation) measures the trainer's own loss only.

Templates hold an ``{input}`` placeholder. ``{input}`` is the row's prompt: the text (generic, plain-text sft), the
prompt column (dpo, orpo) or, for chat messages, the last user message. A chat prompt with the default template
(null for the teacher, ``{input}`` for the student) goes through that model's own chat template instead. ``\n``
and ``\t`` written as two characters (as a command line passes them) are a newline and a tab.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from autotrain_hydra import models
from autotrain_hydra.data import DataError

log = logging.getLogger(__name__)

LOGITS, SEQUENCE = "logits", "sequence"
DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


# ----------------------------------------------------------------------------------------------- the loss
def kd_loss(student_logits, teacher_logits, mask, temperature: float):
    """Mean over the masked positions of KL(softmax(t/T) ‖ softmax(s/T)), times T² (Hinton et al., 2015).

    Logits are [..., V]; a teacher with a larger (padded) output layer is cut to the student's width, the tokens
    both tokenizers share."""
    import torch.nn.functional as F

    v = min(student_logits.size(-1), teacher_logits.size(-1))
    log_s = F.log_softmax(student_logits[..., :v].float() / temperature, dim=-1)
    log_t = F.log_softmax(teacher_logits[..., :v].float() / temperature, dim=-1)
    per_token = (log_t.exp() * (log_t - log_s)).sum(-1)
    mask = mask.to(per_token.dtype)
    return (per_token * mask).sum() / mask.sum().clamp(min=1.0) * temperature ** 2


def response_nll(logits, input_ids, labels_mask):
    """Mean next-token NLL of ``input_ids`` where ``labels_mask`` is 1 (the teacher's answer tokens)."""
    import torch.nn.functional as F

    logp = F.log_softmax(logits[:, :-1].float(), -1).gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    mask = labels_mask[:, 1:].to(logp.dtype)
    return -(logp * mask).sum() / mask.sum().clamp(min=1.0)


# ----------------------------------------------------------------------------------------------- prompts


def _last_user_text(messages: List[dict]) -> str:
    users = [m["content"] for m in messages if m["role"] == "user"]
    return users[-1] if users else (messages[-1]["content"] if messages else "")


def render_prompt(tokenizer: Any, template: Optional[str], prompt: Any) -> str:
    """The prompt as the model sees it (see the module doc for the rules)."""
    if isinstance(prompt, list):
        if template in (None, "{input}") and tokenizer.chat_template:
            return tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
        prompt = _last_user_text(prompt)
    return expand_escapes(template or "{input}").replace("{input}", prompt)


def expand_escapes(template: str) -> str:
    """``\\n`` and ``\\t`` typed on a command line (where they stay two characters) become a newline and a tab."""
    return template.replace("\\n", "\n").replace("\\t", "\t")


def student_sequence(tokenizer: Any, template: str, prompt: Any, response: str) -> Dict[str, List[int]]:
    """Token ids of prompt + teacher answer for the student, and a mask of the answer tokens."""
    if isinstance(prompt, list) and template == "{input}" and tokenizer.chat_template:
        head = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True,
                                             return_dict=True)["input_ids"]
        full = tokenizer.apply_chat_template(prompt + [{"role": "assistant", "content": response}], tokenize=True,
                                             return_dict=True)["input_ids"]
        n = 0
        while n < min(len(head), len(full)) and head[n] == full[n]:
            n += 1
        ids = list(full)
    else:
        head = tokenizer(render_prompt(tokenizer, template, prompt))["input_ids"]
        ids = head + tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        n = len(head)
    return {"input_ids": ids, "labels_mask": [0] * n + [1] * (len(ids) - n)}


# ----------------------------------------------------------------------------------------------- set-up
@dataclass
class Distiller:
    mode: str
    alpha: float
    temperature: float
    teacher: Any = None  # logit mode
    sequences: List[Dict[str, List[int]]] = field(default_factory=list)  # sequence mode
    pad_id: int = 0


def same_vocabulary(student_tok: Any, teacher_tok: Any) -> bool:
    return student_tok.get_vocab() == teacher_tok.get_vocab()


def load_teacher(cfg: Any, attn_implementation: Optional[str] = None):
    """The teacher, frozen; with the student's attention (a padding-free batch needs attention within sequences)."""
    import torch

    d = cfg.distillation
    teacher = models.load_causal_lm(cfg.model, key="distillation.teacher_model", name=d.teacher_model,
                                    attn_implementation=attn_implementation)
    if d.teacher_dtype:
        teacher = teacher.to(getattr(torch, DTYPES[d.teacher_dtype]))
    if torch.cuda.is_available():
        teacher = teacher.to("cuda")
    teacher.eval()
    teacher.requires_grad_(False)
    return teacher


def setup(job: Any, tokenizer: Any, prompts: Optional[List[Any]] = None,
          attn_implementation: Optional[str] = None) -> Optional[Distiller]:
    """The distiller for this run, or None when distillation is off. ``prompts`` (raw prompt values of the training
    rows, see ``data.prompt_of``) are needed only in sequence mode; a callable is accepted to defer reading them.
    ``attn_implementation``: the student's (the teacher sees the same batches)."""
    cfg = job.cfg
    if not cfg.distillation.enabled:
        return None
    d = cfg.distillation
    teacher_tok = models.load_tokenizer(cfg.model, name=d.teacher_model, key="distillation.teacher_model")
    mode = LOGITS if same_vocabulary(tokenizer, teacher_tok) else SEQUENCE
    if mode == LOGITS:
        note = (f"knowledge distillation: logit mode (teacher {d.teacher_model} shares the student's vocabulary of "
                f"{len(tokenizer)} tokens), T={d.temperature}, alpha={d.alpha}")
        if d.teacher_prompt_template or d.student_prompt_template != "{input}":
            note += "; the prompt templates apply to sequence-level mode only and are not used"
    else:
        note = (f"knowledge distillation: sequence-level mode (teacher {d.teacher_model} has another vocabulary: "
                f"{len(teacher_tok)} vs {len(tokenizer)} tokens); the teacher answers the training prompts, "
                f"alpha={d.alpha}")
    log.info(note)
    job.notes.append(note)
    job.metrics["distillation_mode"] = mode
    teacher = load_teacher(cfg, attn_implementation)
    distiller = Distiller(mode, float(d.alpha), float(d.temperature), pad_id=tokenizer.pad_token_id)
    if mode == LOGITS:
        distiller.teacher = teacher
        return distiller
    rows = prompts() if callable(prompts) else prompts
    if not rows:
        raise DataError("sequence-level distillation found no prompts in the training data")
    answers = generate_answers(teacher, teacher_tok, [render_prompt(teacher_tok, d.teacher_prompt_template, p)
                                                      for p in rows], d.max_new_tokens,
                               cfg.training.eval_batch_size or cfg.training.batch_size)
    del teacher
    _free_memory()
    from autotrain_hydra.processes import is_main_process

    if is_main_process():  # every rank of a launched run has the same (greedy) answers; rank 0 writes them
        out = os.path.join(job.output_dir, "distillation")
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "teacher_responses.jsonl"), "w", encoding="utf-8") as f:
            for p, a in zip(rows, answers):
                f.write(json.dumps({"prompt": p, "response": a}) + "\n")
    distiller.sequences = [student_sequence(tokenizer, d.student_prompt_template, p, a) for p, a in zip(rows, answers)]
    empty = sum(1 for a in answers if not a.strip())
    job.metrics["distillation_teacher_answers"] = len(answers)
    if empty:
        job.notes.append(f"the teacher gave {empty} empty answers of {len(answers)}")
    return distiller


def generate_answers(teacher: Any, tok: Any, prompts: List[str], max_new_tokens: int, batch_size: int) -> List[str]:
    """The teacher's greedy answers to ``prompts`` (left-padded batches)."""
    import torch

    side = tok.padding_side
    tok.padding_side = "left"
    device = next(teacher.parameters()).device
    answers: List[str] = []
    try:
        with torch.no_grad():
            for i in range(0, len(prompts), batch_size):
                batch = tok(prompts[i: i + batch_size], return_tensors="pt", padding=True).to(device)
                out = teacher.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                       pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
                answers += tok.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    finally:
        tok.padding_side = side
    return [a.strip() for a in answers]


def _free_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ----------------------------------------------------------------------------------------------- training
def _pad(rows: List[List[int]], value: int):
    import torch

    n = max(len(r) for r in rows)
    return torch.tensor([r + [value] * (n - len(r)) for r in rows], dtype=torch.long)


def distillation_trainer(base: type, distiller: Optional[Distiller], own: str) -> type:
    """``base`` (a transformers/TRL trainer class) with the distillation term added to its training loss.

    ``own``: ``"lm"`` (generic, sft: the model's own next-token loss on the batch; one forward serves both terms),
    ``"dpo"`` or ``"orpo"`` (the trainer's preference loss; the chosen half of the batch is distilled)."""
    if distiller is None:
        return base

    class DistillationTrainer(base):
        # both terms are per-micro-batch means: the Trainer divides them by the gradient accumulation steps
        loss_is_scaled_for_ga = False

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._distiller = distiller
            self._kd_sums = {"distill_loss": 0.0, "student_loss": 0.0, "n": 0}
            self._seq_order: List[int] = []
            self._seq_pos = 0

        # -- the distillation term
        def _teacher_logits(self, batch: Dict[str, Any]):
            import torch

            teacher = self._distiller.teacher
            device = batch["input_ids"].device
            if next(teacher.parameters()).device != device:
                teacher.to(device)
            with torch.no_grad():
                return teacher(**batch, use_cache=False).logits

        def _next_sequences(self, n: int, device: Any):
            import torch

            seqs = self._distiller.sequences
            out = []
            for _ in range(n):
                if self._seq_pos >= len(self._seq_order):  # a new shuffled pass over the teacher's answers
                    g = torch.Generator().manual_seed(self.args.seed + len(self._seq_order) + self._seq_pos)
                    self._seq_order = torch.randperm(len(seqs), generator=g).tolist()
                    self._seq_pos = 0
                out.append(seqs[self._seq_order[self._seq_pos]])
                self._seq_pos += 1
            ids = _pad([s["input_ids"] for s in out], self._distiller.pad_id).to(device)
            mask = _pad([s["labels_mask"] for s in out], 0).to(device)
            attn = _pad([[1] * len(s["input_ids"]) for s in out], 0).to(device)
            return ids, attn, mask

        def _sequence_term(self, model, n: int, device: Any):
            ids, attn, mask = self._next_sequences(n, device)
            logits = model(input_ids=ids, attention_mask=attn, use_cache=False).logits
            return response_nll(logits, ids, mask)

        def _chosen_batch(self, inputs: Dict[str, Any]):
            if own == "dpo":  # TRL's DPO batch: [chosen; rejected] rows, completion_mask on the responses
                b = inputs["input_ids"].shape[0] // 2
                batch = {"input_ids": inputs["input_ids"][:b], "attention_mask": inputs["attention_mask"][:b]}
                return batch, inputs["completion_mask"][:b]
            batch = {"input_ids": inputs["chosen_input_ids"], "attention_mask": inputs["chosen_attention_mask"]}
            return batch, (inputs["chosen_labels"] != -100).long()

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if not model.training:  # evaluation measures the trainer's own loss
                return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                            num_items_in_batch=num_items_in_batch)
            d = self._distiller
            if own == "lm":
                fwd = {k: v for k, v in inputs.items() if k != "labels"}
                out = model(**fwd, labels=inputs["labels"], use_cache=False)
                own_loss = out.loss
                if d.mode == LOGITS:
                    mask = (inputs["labels"][:, 1:] != -100)
                    term = kd_loss(out.logits[:, :-1], self._teacher_logits(fwd)[:, :-1], mask, d.temperature)
                else:  # as many teacher answers as the batch has sequences (a padding-free row holds several)
                    n = int((inputs["position_ids"] == 0).sum()) if "position_ids" in inputs \
                        else inputs["input_ids"].shape[0]
                    term = self._sequence_term(model, n, inputs["input_ids"].device)
            else:
                inputs = dict(inputs)
                chosen, mask = self._chosen_batch(inputs)
                own_loss = super().compute_loss(model, inputs, num_items_in_batch=num_items_in_batch)
                if d.mode == LOGITS:
                    logits = model(**chosen, use_cache=False).logits
                    term = kd_loss(logits[:, :-1], self._teacher_logits(chosen)[:, :-1], mask[:, 1:], d.temperature)
                else:
                    term = self._sequence_term(model, chosen["input_ids"].shape[0], chosen["input_ids"].device)
            loss = (1.0 - d.alpha) * own_loss + d.alpha * term
            sums = self._kd_sums
            sums["distill_loss"] += float(term.detach())
            sums["student_loss"] += float(own_loss.detach())
            sums["n"] += 1
            return (loss, None) if return_outputs else loss

        def log(self, logs, *args, **kwargs):
            sums = self._kd_sums
            if sums["n"] and "loss" in logs:
                logs["distill_loss"] = round(sums["distill_loss"] / sums["n"], 4)
                logs["student_loss"] = round(sums["student_loss"] / sums["n"], 4)
                self._kd_sums = {"distill_loss": 0.0, "student_loss": 0.0, "n": 0}
            return super().log(logs, *args, **kwargs)

    DistillationTrainer.__name__ = f"Distillation{base.__name__}"
    return DistillationTrainer
