"""trainer=ppo: Proximal Policy Optimization against a trained reward model (our own implementation on
transformers + accelerate; TRL removed its PPO trainer).

One PPO **iteration**:
  1. roll out: take ``trainer.rl.chunk_size`` prompts (the rollout size; the prompt set is reshuffled and cycled
     through), sample a response for each from the policy (``trainer.rl.max_new_tokens``,
     ``trainer.rl.temperature``, stopping at EOS when ``trainer.rl.stop_on_eos``), generation batched by
     ``training.batch_size``;
  2. score every prompt + response with the reward model (its own tokenizer when it differs from the policy's:
     the text is decoded and re-tokenized; the token ids are passed as they are when the vocabularies match);
  3. per-token rewards: −``kl_coef`` × (log π(token) − log π_ref(token)) on every response token, plus the
     reward model's score on the last one. π_ref is a frozen copy of the starting policy (with LoRA: the policy
     with its adapter disabled, no second copy);
  4. advantages by GAE (``gamma``, ``gae_lambda``) over the response tokens, from the value estimates of a
     **value head on the policy** (a linear layer on the policy's last hidden state, shared backbone), then
     whitened; returns = advantages + values;
  5. ``num_ppo_epochs`` passes over the rollout in shuffled mini-batches of ``mini_batch_size`` (one optimizer step
     each, split in ``training.gradient_accumulation`` micro-batches): loss = clipped policy loss (``clip_range``)
     + ``value_loss_coef`` × ½·(value − return)².
Tokens after the first EOS are masked out everywhere. The number of iterations is
ceil(``training.epochs`` × prompts / ``chunk_size``), or ``training.max_steps`` when set. Every
``training.logging_steps`` iterations (and the last) the log and the trackers get the mean reward, the KL to the
reference, the clip fraction, the value and policy losses and the entropy.

The ``training`` keys it reads are the registry's (``registry.SPECS["ppo"].reads``): the optimizer, schedule (warm-up
from the first step, never at learning rate 0), precision, ``gradient_checkpointing``, ``attn_implementation``,
``max_grad_norm``, ``logging_steps``, ``eval_batch_size`` (batches of the before/after evaluation), checkpoints and
resume. The others (``torch_compile``, ``use_liger_kernel``, ``eval_strategy``, ``packing``) are transformers'
Trainer's and are warned about. The mean reward before and after is measured on the eval prompts: ``eval.dataset_path``
with ``features=[eval]``, else the validation prompts, else the first ``chunk_size`` training prompts.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from autotrain_hydra import data as data_mod
from autotrain_hydra import models
from autotrain_hydra import console, rundir, tracking
from autotrain_hydra.features import pruning
from autotrain_hydra.paths import stamp_checkpoint
from autotrain_hydra.processes import stop_requested
from autotrain_hydra.schema.params import uses_lora
from autotrain_hydra.trainers.common import (Job, attn_implementation, fingerprint, precision_flags,
                                             remove_empty_checkpoints, sampling_seed, save_model, scheduler,
                                             weights_changed, quantization)

log = logging.getLogger(__name__)

EVAL_SAMPLES = 256  # responses scored for the mean reward before and after training


# ----------------------------------------------------------------------------------------------- the math
def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1)


def whiten(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    return (x - mean) * torch.rsqrt(var + eps) * mask


def response_mask(response_ids: torch.Tensor, eos_id: Optional[int], stop_on_eos: bool) -> torch.Tensor:
    """1 for the response tokens up to and including the first EOS, 0 after it (and for padding)."""
    mask = torch.ones_like(response_ids, dtype=torch.float)
    if stop_on_eos and eos_id is not None:
        is_eos = (response_ids == eos_id).long()
        after_eos = (is_eos.cumsum(1) - is_eos) > 0  # positions strictly after the first EOS
        mask = mask.masked_fill(after_eos, 0.0)
    return mask


def kl_penalised_rewards(scores: torch.Tensor, logprobs: torch.Tensor, ref_logprobs: torch.Tensor,
                         mask: torch.Tensor, kl_coef: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-token rewards −kl_coef·(log π − log π_ref), plus the score on each sequence's last token.
    Returns (rewards, kl per token)."""
    kl = (logprobs - ref_logprobs) * mask
    rewards = -kl_coef * kl
    last = (mask.sum(1).long() - 1).clamp(min=0)
    rewards[torch.arange(len(scores)), last] += scores
    return rewards * mask, kl


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float,
        lam: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over the response tokens; values after the last token count as 0."""
    values = values * mask
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    n = rewards.shape[1]
    for t in reversed(range(n)):
        next_value = values[:, t + 1] if t + 1 < n else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = (delta + gamma * lam * running) * mask[:, t]
        advantages[:, t] = running
    return advantages, advantages + values


def clipped_policy_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor,
                        mask: torch.Tensor, clip_range: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate loss and the fraction of tokens where the clip was active."""
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1 - clip_range, 1 + clip_range)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    clip_fraction = masked_mean((clipped > unclipped).float(), mask)
    return loss, clip_fraction


def value_loss(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return 0.5 * masked_mean((values - returns) ** 2, mask)


# ----------------------------------------------------------------------------------------------- models
class ValueHead(nn.Module):
    """V(s_t) from the policy's last hidden state before token t."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.linear = nn.Linear(hidden_size, 1)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.linear(hidden.float()).squeeze(-1)


def policy_forward(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, n_query: int,
                   temperature: float, value_head: Optional[ValueHead] = None):
    """Log-probabilities of the response tokens (those after ``n_query``), their entropy, and values."""
    positions = (attention_mask.cumsum(1) - 1).clamp(min=0)
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions,
                output_hidden_states=value_head is not None, use_cache=False)
    logits = out.logits[:, n_query - 1: -1].float() / temperature
    targets = input_ids[:, n_query:]
    logp_all = F.log_softmax(logits, -1)
    logprobs = logp_all.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    values = value_head(out.hidden_states[-1][:, n_query - 1: -1]) if value_head is not None else None
    return logprobs, entropy, values


# ----------------------------------------------------------------------------------------------- rollout
@dataclass
class Rollout:
    input_ids: torch.Tensor  # (B, Lq + Lr): left-padded prompt, then response
    attention_mask: torch.Tensor
    n_query: int
    mask: torch.Tensor  # (B, Lr) valid response tokens
    logprobs: torch.Tensor
    ref_logprobs: torch.Tensor
    values: torch.Tensor
    scores: torch.Tensor
    advantages: Optional[torch.Tensor] = None
    returns: Optional[torch.Tensor] = None
    kl: Optional[torch.Tensor] = None


def unpadded(q_ids, q_mask, r_ids, r_mask) -> List[List[int]]:
    """Prompt + response token ids of each row, padding removed (what the reward model scores)."""
    return [q[m.bool()].tolist() + r[k.bool()].tolist() for q, m, r, k in zip(q_ids, q_mask, r_ids, r_mask)]


@torch.no_grad()
def generate(policy: Any, prompts: List[List[int]], tokenizer: Any, rl: Any, device) -> Tuple[torch.Tensor, ...]:
    ids, mask = data_mod.left_pad(prompts, tokenizer.pad_token_id)
    ids, mask = ids.to(device), mask.to(device)
    out = policy.generate(input_ids=ids, attention_mask=mask, do_sample=True, temperature=rl.temperature,
                          top_k=0, top_p=1.0, max_new_tokens=rl.max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                          eos_token_id=tokenizer.eos_token_id if rl.stop_on_eos else None)
    response = out[:, ids.shape[1]:]
    rmask = response_mask(response, tokenizer.eos_token_id, rl.stop_on_eos)
    response = response.masked_fill(rmask == 0, tokenizer.pad_token_id)
    return ids, mask, response, rmask


# ----------------------------------------------------------------------------------------------- training
class PPO:
    def __init__(self, job: Job):
        from accelerate import Accelerator

        self.job, self.cfg, self.rl = job, job.cfg, job.cfg.trainer.rl
        flags = precision_flags(self.cfg.training.mixed_precision)
        mp = "bf16" if flags["bf16"] else "fp16" if flags["fp16"] else "no"
        self.accelerator = Accelerator(mixed_precision=mp, cpu=not torch.cuda.is_available())
        self.device = self.accelerator.device
        torch.manual_seed(self.cfg.training.seed)
        self.rng = random.Random(self.cfg.training.seed)
        self._order: List[int] = []  # prompt indices left in the current pass

        self.tokenizer = models.load_tokenizer(self.cfg.model)
        self.tokenizer.padding_side = "left"
        self.prompts = self._load_prompts()
        model = models.load_causal_lm(self.cfg.model, attn_implementation=attn_implementation(self.cfg),
                                     quantization=quantization(self.cfg))
        self.lora = uses_lora(self.cfg.peft.method)
        if self.cfg.training.gradient_checkpointing:  # recompute activations in the backward pass: less memory
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            if self.lora:
                model.enable_input_require_grads()
        if self.lora:
            from peft import get_peft_model

            model = get_peft_model(model, models.lora_config(self.cfg.peft, model))
            self.ref = None  # the adapter is disabled to get the reference
        else:
            import copy

            self.ref = copy.deepcopy(model).eval().requires_grad_(False).to(self.device)
        self.value_head = ValueHead(model.config.get_text_config().hidden_size)
        self.scorer = models.RewardScorer(os.path.expanduser(self.rl.reward_model_path), self.tokenizer, self.device,
                                   self.cfg.training.block_size, self.cfg.model)
        self.policy, self.value_head, self.optimizer = self.accelerator.prepare(
            model, self.value_head, self._optimizer(model))
        self.iterations = self._iterations()
        steps = self.iterations * self.rl.num_ppo_epochs * math.ceil(self.rl.chunk_size / self.rl.mini_batch_size)
        self.scheduler = scheduler(self.cfg.training.scheduler, self.optimizer,
                                   math.ceil(self.cfg.training.warmup_ratio * steps), steps)
        self.accelerator.register_for_checkpointing(self.scheduler)
        self.history: List[Dict[str, float]] = []

    # -- setup
    def _load_prompts(self) -> Dict[str, List[List[int]]]:
        cfg = self.cfg
        splits = data_mod.load_splits(cfg.data)
        column = cfg.data.prompt_text_column or cfg.data.text_column
        key = "data.prompt_text_column" if cfg.data.prompt_text_column else "data.text_column"
        data_mod.require_columns(splits.train, [column], splits.source, [key])
        limit = max(1, cfg.training.block_size - self.rl.max_new_tokens)
        out = {"train": self._encode(splits.train[column], limit)}
        valid, source = splits.valid, "the validation prompts"
        if cfg.eval.enabled and cfg.eval.dataset_path:  # enhanced evaluation's prompts: the mean reward's
            valid, source = data_mod.load_split(cfg.eval.dataset_path, "train"), cfg.eval.dataset_path
        if valid is not None:
            data_mod.require_columns(valid, [column], source, [key])
            out["valid"] = self._encode(valid[column], limit)
        return out

    def _encode(self, prompts: List[Any], limit: int) -> List[List[int]]:
        encoded = []
        for p in prompts:
            if data_mod.is_conversation(p):
                ids = self.tokenizer.apply_chat_template(data_mod.chat_messages(p), add_generation_prompt=True,
                                                         tokenize=True, return_dict=True)["input_ids"]
            elif isinstance(p, str):
                ids = self.tokenizer(p)["input_ids"]
            else:
                raise data_mod.DataError(f"a prompt is {type(p).__name__}, neither text nor a list of messages")
            encoded.append(ids[-limit:])  # long prompts keep their end
        return encoded

    def _optimizer(self, model: Any):
        t = self.cfg.training
        params = [p for p in model.parameters() if p.requires_grad] + list(self.value_head.parameters())
        if t.optimizer == "sgd":
            return torch.optim.SGD(params, lr=t.lr, weight_decay=t.weight_decay)
        if t.optimizer == "adafactor":
            from transformers.optimization import Adafactor

            return Adafactor(params, lr=t.lr, weight_decay=t.weight_decay, relative_step=False, scale_parameter=False)
        return torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay, fused=torch.cuda.is_available())

    def _iterations(self) -> int:
        if self.cfg.training.max_steps > 0:
            return self.cfg.training.max_steps
        return max(1, math.ceil(self.cfg.training.epochs * len(self.prompts["train"]) / self.rl.chunk_size))

    # -- rollout
    def _next_chunk(self) -> List[List[int]]:
        """The next chunk_size prompts: the prompt set reshuffled and cycled through."""
        chunk = []
        while len(chunk) < self.rl.chunk_size:
            if not self._order:
                self._order = list(range(len(self.prompts["train"])))
                self.rng.shuffle(self._order)
            chunk.append(self.prompts["train"][self._order.pop()])
        return chunk

    @torch.no_grad()
    def rollout(self, prompts: List[List[int]]) -> Rollout:
        policy = self.accelerator.unwrap_model(self.policy)
        policy.eval()
        parts = []
        for i in range(0, len(prompts), self.cfg.training.batch_size):
            batch = prompts[i: i + self.cfg.training.batch_size]
            q_ids, q_mask, r_ids, r_mask = generate(policy, batch, self.tokenizer, self.rl, self.device)
            ids, attn = torch.cat([q_ids, r_ids], 1), torch.cat([q_mask, r_mask.long()], 1)
            n_query = q_ids.shape[1]
            with self.accelerator.autocast():
                logprobs, _, values = policy_forward(policy, ids, attn, n_query, self.rl.temperature, self.value_head)
                if self.lora:
                    with policy.disable_adapter():
                        ref_logprobs, _, _ = policy_forward(policy, ids, attn, n_query, self.rl.temperature)
                else:
                    ref_logprobs, _, _ = policy_forward(self.ref, ids, attn, n_query, self.rl.temperature)
            scores = self.scorer(unpadded(q_ids, q_mask, r_ids, r_mask))
            parts.append((q_ids, q_mask, r_ids, r_mask, logprobs, ref_logprobs, values, scores))
        return self._collate(parts)

    def _collate(self, parts) -> Rollout:
        """Batches of different prompt/response lengths → one rollout (prompts left-padded, responses right)."""
        lq = max(p[0].shape[1] for p in parts)
        lr = max(p[2].shape[1] for p in parts)
        pad = self.tokenizer.pad_token_id

        def pad_to(x, n, value, left):
            extra = n - x.shape[1]
            if extra == 0:
                return x
            filler = torch.full((x.shape[0], extra), value, dtype=x.dtype, device=x.device)
            return torch.cat([filler, x] if left else [x, filler], 1)

        q_ids = torch.cat([pad_to(p[0], lq, pad, True) for p in parts])
        q_mask = torch.cat([pad_to(p[1], lq, 0, True) for p in parts])
        r_ids = torch.cat([pad_to(p[2], lr, pad, False) for p in parts])
        r_mask = torch.cat([pad_to(p[3], lr, 0, False) for p in parts])
        cat = lambda j: torch.cat([pad_to(p[j].float(), lr, 0.0, False) for p in parts])  # noqa: E731
        return Rollout(input_ids=torch.cat([q_ids, r_ids], 1), attention_mask=torch.cat([q_mask, r_mask.long()], 1),
                       n_query=lq, mask=r_mask, logprobs=cat(4), ref_logprobs=cat(5), values=cat(6),
                       scores=torch.cat([p[7].float() for p in parts]))

    def advantages(self, ro: Rollout) -> None:
        rewards, ro.kl = kl_penalised_rewards(ro.scores, ro.logprobs, ro.ref_logprobs, ro.mask, self.rl.kl_coef)
        adv, ro.returns = gae(rewards, ro.values, ro.mask, self.rl.gamma, self.rl.gae_lambda)
        ro.advantages = whiten(adv, ro.mask)

    # -- optimisation
    def optimise(self, ro: Rollout) -> Dict[str, float]:
        self.policy.train()
        stats: Dict[str, List[float]] = {"policy_loss": [], "value_loss": [], "clip_fraction": [], "entropy": []}
        n = ro.input_ids.shape[0]
        micro = max(1, self.rl.mini_batch_size // self.cfg.training.gradient_accumulation)
        for _ in range(self.rl.num_ppo_epochs):
            order = torch.randperm(n, generator=torch.Generator().manual_seed(self.rng.randrange(2**31)))
            for start in range(0, n, self.rl.mini_batch_size):
                mb = order[start: start + self.rl.mini_batch_size]
                self.optimizer.zero_grad()
                for m0 in range(0, len(mb), micro):
                    idx = mb[m0: m0 + micro]
                    with self.accelerator.autocast():
                        logprobs, entropy, values = policy_forward(
                            self.policy, ro.input_ids[idx], ro.attention_mask[idx], ro.n_query, self.rl.temperature,
                            self.value_head)
                    mask = ro.mask[idx]
                    pg, clipfrac = clipped_policy_loss(logprobs, ro.logprobs[idx], ro.advantages[idx], mask,
                                                       self.rl.clip_range)
                    vl = value_loss(values, ro.returns[idx], mask)
                    loss = (pg + self.rl.value_loss_coef * vl) * len(idx) / len(mb)
                    self.accelerator.backward(loss)
                    stats["policy_loss"].append(pg.item())
                    stats["value_loss"].append(vl.item())
                    stats["clip_fraction"].append(clipfrac.item())
                    stats["entropy"].append(masked_mean(entropy, mask).item())
                if self.cfg.training.max_grad_norm:
                    params = [p for g in self.optimizer.param_groups for p in g["params"]]
                    self.accelerator.clip_grad_norm_(params, self.cfg.training.max_grad_norm)
                self.optimizer.step()
                self.scheduler.step()
        return {k: sum(v) / len(v) for k, v in stats.items()}

    @torch.no_grad()
    def mean_reward(self, prompts: List[List[int]]) -> float:
        """Mean score of fresh samples of the policy for these prompts, each sampled several times so that at least
        EVAL_SAMPLES responses are scored (a fixed seed, so that before and after compare like for like)."""
        prompts = prompts * math.ceil(EVAL_SAMPLES / len(prompts))
        with sampling_seed(self.cfg.training.seed + 1):
            policy = self.accelerator.unwrap_model(self.policy)
            policy.eval()
            scores = []
            size = self.cfg.training.eval_batch_size or self.cfg.training.batch_size
            bar = console.progress(len(prompts), "generating (evaluation)", unit="response", leave=False)
            for i in range(0, len(prompts), size):
                q, qm, r, rm = generate(policy, prompts[i: i + size], self.tokenizer, self.rl, self.device)
                scores.append(self.scorer(unpadded(q, qm, r, rm)))
                bar.update(len(prompts[i: i + size]))
            bar.close()
            return float(torch.cat(scores).mean())

    # -- checkpoints (the same layout and completeness rule as the Trainer's: trainer_state.json written last)
    def save_checkpoint(self, it: int, before: float) -> None:
        from autotrain_hydra.trainers.common import disk_full_said, non_finite_loss, non_finite_weights

        bad = non_finite_weights(self.accelerator.unwrap_model(self.policy))
        if bad is not None:  # no checkpoint is written from a NaN/inf weight
            raise non_finite_loss(self.job, f"the weight {bad} became NaN or infinite at iteration {it}",
                                  "lower training.lr or trainer.rl.clip_range")
        with disk_full_said(self.job):
            self._write_checkpoint(it, before)

    def _write_checkpoint(self, it: int, before: float) -> None:
        import json
        import shutil
        import tempfile

        folder = os.path.join(self.job.output_dir, "checkpoints")
        os.makedirs(folder, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".saving-", dir=folder)
        self.accelerator.save_state(tmp)  # policy, value head, optimizer, scheduler, RNG states
        state = {"global_step": it, "history": self.history, "order": self._order, "rng": self.rng.getstate(),
                 "eval_mean_reward_before": before}
        stamp_checkpoint(tmp, rundir.stamp(self.job.output_dir, "ppo", str(self.cfg.model.name)))
        with open(os.path.join(tmp, "trainer_state.json"), "w", encoding="utf-8") as f:
            json.dump(state, f)
        os.replace(tmp, os.path.join(folder, f"checkpoint-{it}"))  # a folder appears whole or not at all
        limit = self.cfg.training.save_total_limit
        steps = sorted(int(n.split("-")[1]) for n in os.listdir(folder) if n.startswith("checkpoint-"))
        for old in steps[:-limit] if limit else []:
            shutil.rmtree(os.path.join(folder, f"checkpoint-{old}"), ignore_errors=True)

    def load_checkpoint(self, path: str) -> Dict[str, Any]:
        import json

        self.accelerator.load_state(path)
        with open(os.path.join(path, "trainer_state.json"), encoding="utf-8") as f:
            state = json.load(f)
        self.history, self._order = state["history"], state["order"]
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        return state

    def train(self) -> Dict[str, Any]:
        from autotrain_hydra.trainers.common import checkpoint_to_resume, nothing_left

        eval_prompts = self.prompts.get("valid") or self.prompts["train"][: self.rl.chunk_size]
        start_print = fingerprint(self.accelerator.unwrap_model(self.policy))  # the starting policy's weights
        resume = checkpoint_to_resume(self.job)
        if resume:
            state = self.load_checkpoint(resume)
            before, start = state["eval_mean_reward_before"], state["global_step"] + 1
            if start > self.iterations:
                nothing_left(self.job, resume, state["global_step"])
        else:
            before, start = self.mean_reward(eval_prompts), 1
        metrics: Dict[str, Any] = {"eval_mean_reward_before": before}
        trackers = tracking.Trackers(self.cfg, self.job.output_dir)  # report_to, under the Trainer's names
        try:
            if start == 1:
                trackers.log({"eval_mean_reward": before}, 0)
            self._iterate(start, before, trackers)
            after = self.mean_reward(eval_prompts)
            trackers.log({"eval_mean_reward": after}, self.iterations)
        finally:
            trackers.close()
        last = self.history[-1]
        end_print = fingerprint(self.accelerator.unwrap_model(self.policy))
        metrics["weights_changed"] = weights_changed(start_print, end_print)
        metrics.update({"eval_mean_reward_after": after, "mean_reward": last["mean_reward"],
                        "kl": last["kl"], "train_loss": last["loss"], "first_train_loss": self.history[0]["loss"],
                        "global_step": self.iterations, "ppo_iterations": self.iterations,
                        "history": {"train": [(r["iteration"], r["loss"]) for r in self.history],
                                    "mean_reward": [(r["iteration"], r["mean_reward"]) for r in self.history],
                                    "kl": [(r["iteration"], r["kl"]) for r in self.history]},
                        "ppo_log": self.history})
        return metrics

    def _iterate(self, start: int, before: float, trackers: tracking.Trackers) -> None:
        """The iterations from ``start``: a progress bar (on a terminal), a line and the trackers every
        ``training.logging_steps`` (and the first and last, as the Trainer does)."""
        logging_steps = self.cfg.training.logging_steps
        prune = pruning.reporter(self.cfg)  # a trial of a pruned sweep: its reward reported each iteration
        bar = console.progress(self.iterations, "training (rollouts and updates)", unit="iteration",
                               initial=start - 1)
        started = time.time()
        with console.lines_above_bars():
            for it in range(start, self.iterations + 1):
                row = self._iteration(it, before)
                bar.update_to(it)
                if it % logging_steps == 0 or it in (1, self.iterations):
                    named = {tracking.PPO_NAMES.get(k, k): v for k, v in row.items()}  # TRL's names
                    eta = (time.time() - started) / (it - start + 1) * (self.iterations - it)
                    log.info(console.train_line(named, it, self.iterations, eta))
                    trackers.log(named, it)
                if prune is not None and prune.report({"mean_reward": row["mean_reward"]}, it, it == self.iterations):
                    prune.record(self.job.metrics)
                    self.iterations = it  # the run ends here: its results are this iteration's
                    break
        bar.close()

    def _iteration(self, it: int, before: float) -> Dict[str, float]:
        """One PPO iteration: a rollout, its advantages, the updates; its row in the history (returned, without the
        iteration number); a checkpoint every ``training.save_steps``."""
        from autotrain_hydra.trainers.common import non_finite_loss

        if stop_requested():  # a SIGTERM whose KeyboardInterrupt was swallowed
            raise KeyboardInterrupt("signal 15")
        ro = self.rollout(self._next_chunk())
        self.advantages(ro)
        stats = self.optimise(ro)
        row = {"iteration": it, "mean_reward": ro.scores.mean().item(),
               "kl": (ro.kl.sum(1)).mean().item(), "response_length": ro.mask.sum(1).mean().item(),
               **stats, "loss": stats["policy_loss"] + self.rl.value_loss_coef * stats["value_loss"],
               "lr": self.scheduler.get_last_lr()[0]}
        if not math.isfinite(row["loss"]):
            raise non_finite_loss(self.job, f"the PPO loss became {row['loss']} at iteration {it}",
                                  "lower training.lr or trainer.rl.clip_range")
        self.history.append(row)
        save_steps = self.cfg.training.save_steps
        if save_steps and it % save_steps == 0 and it < self.iterations:
            self.save_checkpoint(it, before)
        return {k: v for k, v in row.items() if k != "iteration"}

    def save(self) -> None:
        policy = self.accelerator.unwrap_model(self.policy)
        save_model(self.job, policy, self.tokenizer)
        torch.save(self.accelerator.unwrap_model(self.value_head).state_dict(),  # with the model, in staging
                   os.path.join(rundir.staging(self.job.output_dir), "value_head.pt"))
        remove_empty_checkpoints(self.job.output_dir)


def train(job: Job) -> Dict[str, Any]:
    ppo = PPO(job)
    job.notes.append("value model: a value head on the policy's last hidden state (saved as value_head.pt)")
    if not ppo.scorer.same_vocab:
        job.notes.append("the reward model has its own tokenizer: responses are decoded and re-tokenized for it")
    metrics = ppo.train()
    ppo.save()
    return metrics
