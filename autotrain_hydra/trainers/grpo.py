"""trainer=grpo: Group Relative Policy Optimization with TRL's GRPOTrainer.

For each prompt (``data.prompt_text_column``, else ``data.text_column``; chat messages are rendered through the chat
template with the generation prompt, then truncated to their last ``trainer.grpo.max_prompt_length`` tokens, and so
that prompt + completion fit in ``training.block_size``), the
policy samples ``num_generations`` completions (``max_completion_length``, ``temperature``); each is scored by every
reward source — the functions of ``trainer.grpo.reward_funcs`` (resolved and checked by
``autotrain_hydra.reward_funcs``, as validation did) and the reward model of ``trainer.grpo.reward_model_path``
(scored like PPO's: its own tokenizer, the mean of its heads) — weighted by ``reward_weights`` and summed; a
completion's advantage is its reward against its group's (TRL: mean, scaled by the group's std). The loss is TRL's
(``loss_type``, clip ``epsilon``, KL ``beta`` to the reference model: the starting policy, or with LoRA the adapter
disabled; ``num_iterations`` passes per generated batch). Every completion of a step is in the effective batch, so
``num_generations`` divides ``training.batch_size`` × ``training.gradient_accumulation`` × processes (checked before
load).

Reported: the mean reward (and per function) during training, from TRL's log; the mean reward of the policy's
samples on the held-out prompts before and after training (``eval_mean_reward_before``/``_after``, and
``eval_rewards/<name>_before``/``_after``): the eval prompts are ``eval.dataset_path`` with ``features=[eval]``, else
the validation prompts, else the first 16 training prompts, each sampled until at least 128 completions are scored
with a fixed seed (the same draws before and after); ``completions.jsonl`` in the output dir holds the completions
after training with their rewards, and a few are logged.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import os
from typing import Any, Dict, List, Tuple

from autotrain_hydra import data as data_mod
from autotrain_hydra import console, models, reward_funcs, rundir
from autotrain_hydra.errors import InputError, RunError
from autotrain_hydra.trainers.common import (Job, attn_implementation, sampling_seed, save_model, train_and_collect,
                                             trainer_class, training_kwargs, quantization)

log = logging.getLogger(__name__)

EVAL_SAMPLES = 128  # completions scored for the mean reward before and after training
EVAL_PROMPTS_FALLBACK = 16  # training prompts used when there are no eval prompts
LOGGED_SAMPLES = 3  # completions written to the log after training
REWARD_MODEL = "reward_model"  # its metrics: rewards/reward_model/mean


class Checked:
    """A reward function as GRPO calls it, under its name (TRL's metrics are ``rewards/<name>``), checked at every
    call: what it raises (``SystemExit`` too) and what it returns that is not one number (or None) per completion
    end the run with an error naming the function as it was given (``trainer.grpo.reward_funcs[i]``)."""

    def __init__(self, func: Any, name: str, item: Any, index: int):
        self.func, self.__name__, self.item, self.index = func, name, item, index

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            values = self.func(*args, **kwargs)
        except (Exception, SystemExit) as e:
            raise self._error(f"raised {type(e).__name__}: {e}") from e
        return self.checked(values, len(kwargs.get("completions") or ()))

    def checked(self, values: Any, n: int) -> List[Any]:
        if isinstance(values, (str, bytes, set, dict)) or not hasattr(values, "__len__"):
            raise self._error(f"returned {type(values).__name__} {values!r:.60}, not a list of rewards")
        try:
            values = list(values)
        except TypeError:  # a 0-d array
            raise self._error(f"returned {type(values).__name__} {values!r:.60}, not a list of rewards") from None
        if len(values) != n:
            raise self._error(f"returned {len(values)} reward{'s' if len(values) != 1 else ''} for {n} completions")
        out: List[Any] = []
        for v in values:
            number = None if v is None or isinstance(v, (str, bytes, bool)) else _number(v)
            if v is not None and (number is None or math.isinf(number)):
                raise self._error(f"returned {type(v).__name__} {v!r:.60} as a reward (a finite number, or None)")
            out.append(None if v is None or math.isnan(number) else number)  # nan: no reward, as None
        return out

    def _error(self, what: str) -> RunError:
        fix = ("fix the error in the function (HYDRA_FULL_ERROR=1 shows its traceback)" if what.startswith("raised")
               else f"return one float (or None) per completion: {reward_funcs.SIGNATURE}")
        return RunError(f"the reward function {reward_funcs.KEY}[{self.index}]={reward_funcs.shown(self.item)} "
                        f"{what}.\n    fix: {fix}")


class CheckedAsync(Checked):
    """``Checked`` for an async reward function (TRL awaits it, with the others)."""

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            values = await self.func(*args, **kwargs)
        except (Exception, SystemExit) as e:
            raise self._error(f"raised {type(e).__name__}: {e}") from e
        return self.checked(values, len(kwargs.get("completions") or ()))


def _number(v: Any) -> Any:
    """``v`` as a float, None when it is no number (an int too large for a float is none either)."""
    try:
        return float(v)
    except (TypeError, ValueError, OverflowError):
        return None


class RewardModelReward:
    """``trainer.grpo.reward_model_path`` as a reward function: prompt + completion scored by the reward model."""

    __name__ = REWARD_MODEL

    def __init__(self, job: Job, tokenizer: Any, device: Any):
        cfg = job.cfg
        self.scorer = models.RewardScorer(os.path.expanduser(cfg.trainer.grpo.reward_model_path), tokenizer, device,
                                          cfg.training.block_size, cfg.model, key="trainer.grpo.reward_model_path")

    def __call__(self, prompts: List[Any], completions: List[Any], **kwargs: Any) -> List[float]:
        from autotrain_hydra.rewards import completion_text

        texts = [completion_text(p) + completion_text(c) for p, c in zip(prompts, completions)]
        out: List[float] = []
        for i in range(0, len(texts), 16):
            out += self.scorer.score_texts(texts[i: i + 16]).tolist()
        return out


# ----------------------------------------------------------------------------------------------- prompts
def prompt_rows(job: Job, ds: Any, source: str, tokenizer: Any, key: str, column: str) -> Any:
    """The rows as GRPO reads them: ``prompt`` (text: rendered, truncated) and the data's other columns (the
    reward functions' keyword arguments)."""
    from datasets import Dataset

    data_mod.require_columns(ds, [column], source, [key])
    g = job.cfg.trainer.grpo
    room = max(1, job.cfg.training.block_size - g.max_completion_length)  # block_size caps prompt + completion
    limit = min(g.max_prompt_length, room) if g.max_prompt_length else room
    rows, truncated = [], 0
    for row in ds:
        value = row[column]
        if data_mod.is_conversation(value):
            text = tokenizer.apply_chat_template(data_mod.chat_messages(value), add_generation_prompt=True,
                                                 tokenize=False)
        elif isinstance(value, str):
            text = value
        else:
            raise data_mod.DataError(f"a prompt of {source} ({key}={column!r}) is {type(value).__name__}, neither "
                                     "text nor a list of messages")
        if limit:
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            if len(ids) > limit:
                text, truncated = tokenizer.decode(ids[-limit:]), truncated + 1
        rows.append({**{k: v for k, v in row.items() if k != column}, "prompt": text})
    if truncated:
        job.notes.append(f"{truncated} of {len(rows)} prompts of {source} were longer than {limit} tokens "
                         f"(trainer.grpo.max_prompt_length={g.max_prompt_length}, and training.block_size="
                         f"{job.cfg.training.block_size} less trainer.grpo.max_completion_length): they keep their "
                         f"last {limit}")
        log.warning(job.notes[-1])
    return Dataset.from_list(rows)


def load_prompts(job: Job, tokenizer: Any) -> Dict[str, Any]:
    cfg = job.cfg
    splits = data_mod.load_splits(cfg.data)
    column = cfg.data.prompt_text_column or cfg.data.text_column
    key = "data.prompt_text_column" if cfg.data.prompt_text_column else "data.text_column"
    out = {"train": prompt_rows(job, splits.train, splits.source, tokenizer, key, column), "valid": None,
           "eval": None}
    if splits.valid is not None:
        out["valid"] = prompt_rows(job, splits.valid, "the validation prompts", tokenizer, key, column)
    if cfg.eval.enabled and cfg.eval.dataset_path:  # enhanced evaluation's prompts: the mean reward's
        ds = data_mod.load_split(cfg.eval.dataset_path, "train")
        out["eval"] = prompt_rows(job, ds, cfg.eval.dataset_path, tokenizer, key, column)
    elif out["valid"] is not None:
        out["eval"] = out["valid"]
    else:
        out["eval"] = out["train"].select(range(min(EVAL_PROMPTS_FALLBACK, len(out["train"]))))
        job.notes.append(f"no eval prompts (data.valid_path, data.valid_split, data.valid_fraction): the mean reward "
                         f"before and after is measured on the first {len(out['eval'])} training prompts, not held "
                         "out")
        log.warning(job.notes[-1])
    if len(out["eval"]) > EVAL_SAMPLES:  # each prompt once: the first EVAL_SAMPLES
        out["eval"] = out["eval"].select(range(EVAL_SAMPLES))
    return out


# ----------------------------------------------------------------------------------------------- rewards
def reward_functions(job: Job, columns: List[str]) -> List[Any]:
    """The reward functions, resolved and checked as validation did (a ``_target_`` without ``_partial_`` is made
    here: validation only checked that it can be called)."""
    try:
        found = reward_funcs.resolve(reward_funcs.items_of(job.cfg.trainer.grpo.reward_funcs), columns, make=True)
    except reward_funcs.RewardFuncError as e:  # checked before load; here when the code changed since
        raise InputError(f"{e.key}: {e.message}\n    fix: {e.fix}") from None
    return [(CheckedAsync if is_async(f.func) else Checked)(f.func, f.name, f.item, i) for i, f in enumerate(found)]


def is_async(func: Any) -> bool:
    """Whether calling ``func`` returns a coroutine (a partial's function, a class's ``__call__`` too)."""
    import functools

    while isinstance(func, functools.partial):
        func = func.func
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(getattr(func, "__call__", None))


def with_reward_model(job: Job, functions: List[Any], tokenizer: Any, device: Any) -> List[Any]:
    """The reward sources in order: the functions, then the reward model (on this process's device)."""
    path = job.cfg.trainer.grpo.reward_model_path
    sources = functions + ([RewardModelReward(job, tokenizer, device)] if path else [])
    if path:
        job.notes.append(f"reward model: {path}")
    job.notes.append("rewards: " + ", ".join(source_names(sources)))
    return sources


def source_names(sources: List[Any]) -> List[str]:
    return [reward_funcs.name_of(s) for s in sources]


def score(sources: List[Any], weights: List[float], prompts: List[str], completions: List[str],
          completion_ids: List[List[int]], columns: Dict[str, List[Any]], state: Any
          ) -> Tuple[Dict[str, List[float]], List[float]]:
    """Every source's reward of each completion (by source name; None → nan), and their weighted sum per completion,
    as TRL sums them: a nan of one source counts as 0; a completion no source scored is nan (left out of means)."""
    per_source: Dict[str, List[float]] = {}
    for name, func in zip(source_names(sources), sources):
        values = func(prompts=prompts, completions=completions, completion_ids=completion_ids, trainer_state=state,
                      log_extra=lambda *a, **k: None, log_metric=lambda *a, **k: None, **columns)
        if inspect.isawaitable(values):
            import asyncio

            values = asyncio.run(values)
        per_source[name] = [float("nan") if v is None else float(v) for v in values]
    totals = [sum(w * v for w, v in zip(weights, vals) if not math.isnan(v))
              if not all(math.isnan(v) for v in vals) else float("nan") for vals in zip(*per_source.values())]
    return per_source, totals


def _json_number(value: float) -> Any:
    """A reward as JSON has it: null where no source scored (nan and inf are no JSON)."""
    return value if math.isfinite(value) else None


def _mean(values: List[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else float("nan")


def evaluate_policy(job: Job, trainer: Any, tokenizer: Any, rows: Any, sources: List[Any],
                    weights: List[float]) -> Dict[str, Any]:
    """Sample completions of the trainer's policy for the eval prompts (each prompt repeated until EVAL_SAMPLES are
    drawn, with a fixed seed) and score them: the mean total reward, the mean of each source, and the samples. The
    policy is unwrapped for generation as TRL does it (FSDP and ZeRO-3 gather their shards: every rank takes part)."""
    import torch
    from trl.models import unwrap_model_for_generation

    g, t = job.cfg.trainer.grpo, job.cfg.training
    repeats = math.ceil(EVAL_SAMPLES / len(rows))
    prompts = [p for p in rows["prompt"] for _ in range(repeats)]
    columns = {c: [v for v in rows[c] for _ in range(repeats)] for c in rows.column_names if c != "prompt"}
    size = max(t.eval_batch_size or t.batch_size, 8)
    completions: List[str] = []
    completion_ids: List[List[int]] = []
    with sampling_seed(t.seed + 1), torch.no_grad(), \
            unwrap_model_for_generation(trainer.model_wrapped, trainer.accelerator) as model:
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        bar = console.progress(len(prompts), "generating (evaluation)", unit="completion", leave=False)
        for i in range(0, len(prompts), size):
            bar.update(len(prompts[i: i + size]))
            ids, mask = data_mod.left_pad([tokenizer(p)["input_ids"] for p in prompts[i: i + size]],
                                          tokenizer.pad_token_id)
            out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), do_sample=True,
                                 temperature=g.temperature, top_k=0, top_p=1.0, max_new_tokens=g.max_completion_length,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
            for row in out[:, ids.shape[1]:].tolist():
                if tokenizer.eos_token_id in row:
                    row = row[: row.index(tokenizer.eos_token_id) + 1]
                completion_ids.append(row)
                completions.append(tokenizer.decode(row, skip_special_tokens=True))
        bar.close()
        model.train(was_training)
    per_source, totals = score(sources, weights, prompts, completions, completion_ids, columns, trainer.state)
    samples = [{"prompt": p, "completion": c, "reward": _json_number(totals[i]),
                "rewards": {n: _json_number(v[i]) for n, v in per_source.items()}}
               for i, (p, c) in enumerate(zip(prompts, completions))]
    return {"mean": _mean(totals), "per_source": {n: _mean(v) for n, v in per_source.items()}, "samples": samples}


def _record(metrics: Dict[str, Any], result: Dict[str, Any], when: str) -> None:
    metrics[f"eval_mean_reward_{when}"] = result["mean"]
    for name, value in result["per_source"].items():
        metrics[f"eval_rewards/{name}_{when}"] = value


# ----------------------------------------------------------------------------------------------- training
def grpo_config(job: Job, has_eval: bool, sources: int) -> Any:
    """TRL's GRPOConfig from ours, built before any model loads (what it refuses is a config error, exit 2)."""
    from trl import GRPOConfig

    g = job.cfg.trainer.grpo
    weights = list(g.reward_weights) if g.reward_weights is not None else [1.0] * sources
    try:
        return GRPOConfig(**training_kwargs(job, has_eval), num_generations=g.num_generations,
                          max_completion_length=g.max_completion_length, temperature=g.temperature, beta=g.beta,
                          epsilon=g.epsilon, loss_type=g.loss_type, num_iterations=g.num_iterations,
                          use_vllm=g.use_vllm, vllm_mode="colocate", reward_weights=weights, top_k=0,
                          log_completions=False, shuffle_dataset=True)
    except ValueError as e:  # what the rules check before load, should TRL's checks differ
        raise InputError(f"TRL's GRPOConfig refuses these settings: {e}\n    fix: change the setting it names "
                         "(docs/usage.md, GRPO)") from None


def train(job: Job) -> Dict[str, Any]:
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from trl import GRPOTrainer

    cfg = job.cfg
    tokenizer = models.load_tokenizer(cfg.model)
    prompts = load_prompts(job, tokenizer)
    columns = [c for c in prompts["train"].column_names if c != "prompt"]
    has_eval = prompts["valid"] is not None
    functions = reward_functions(job, columns)
    args = grpo_config(job, has_eval, len(functions) + bool(cfg.trainer.grpo.reward_model_path))
    sources = with_reward_model(job, functions, tokenizer, args.device)  # the config chose this process's device
    weights = list(args.reward_weights)
    model = models.load_causal_lm(cfg.model, attn_implementation=attn_implementation(cfg),
                                  quantization=quantization(cfg))
    peft_config = models.lora_config(cfg.peft, model)
    if cfg.trainer.grpo.beta:
        job.notes.append("reference model: " + ("the base model with the LoRA adapter disabled" if peft_config
                                                else "a frozen copy of the base model"))
    trainer = trainer_class(GRPOTrainer)(model=model, reward_funcs=sources, args=args,
                                         train_dataset=prompts["train"], eval_dataset=prompts["valid"],
                                         processing_class=tokenizer, peft_config=peft_config)
    before = evaluate_policy(job, trainer, tokenizer, prompts["eval"], sources, weights)
    metrics = train_and_collect(job, trainer, has_eval=has_eval)
    after = evaluate_policy(job, trainer, tokenizer, prompts["eval"], sources, weights)
    _record(metrics, before, "before")
    _record(metrics, after, "after")
    history = [e for e in trainer.state.log_history if "reward" in e]
    if history:
        metrics["mean_reward"] = history[-1]["reward"]
        metrics["history"]["mean_reward"] = [(e["step"], e["reward"]) for e in history]
        metrics["history"]["completion_length"] = [(e["step"], e["completions/mean_length"]) for e in history
                                                   if "completions/mean_length" in e]
        for name in source_names(sources):
            key = f"rewards/{name}/mean"
            if key in history[-1]:
                metrics[f"rewards/{name}"] = history[-1][key]
                metrics["history"][f"rewards/{name}"] = [(e["step"], e[key]) for e in history if key in e]
    for s in after["samples"][:LOGGED_SAMPLES]:
        log.info("after training: %r -> %r (reward %s)", s["prompt"][-60:], s["completion"][:120], s["reward"])
    save_model(job, trainer.model, tokenizer, trainer)
    write_samples(job, after["samples"])
    return metrics


def write_samples(job: Job, samples: List[Dict[str, Any]]) -> None:
    """``completions.jsonl``: the completions sampled after training, with their rewards (committed with the model;
    rank 0 writes it, as it writes the model)."""
    from autotrain_hydra.processes import rank_and_world

    if rank_and_world()[0] != 0:
        return
    with open(os.path.join(rundir.staging(job.output_dir), "completions.jsonl"), "w", encoding="utf-8") as f:
        for s in samples:
            f.write(json.dumps(s, ensure_ascii=False, allow_nan=False) + "\n")

