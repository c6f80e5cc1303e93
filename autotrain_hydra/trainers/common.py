"""What every trainer shares: the job handed to it, TrainingArguments from our config, hardware checks, saving."""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from omegaconf import DictConfig, OmegaConf

from autotrain_hydra import console, models, registry, rundir
from autotrain_hydra.errors import CheckpointError, HardwareError, NothingTrained, NumericalError, RunError
from autotrain_hydra.paths import checkpoint_complete, checkpoint_state, last_complete_checkpoint, stamp_checkpoint
from autotrain_hydra.features import pruning
from autotrain_hydra.processes import rank_and_world, stop_requested
from autotrain_hydra.schema.params import uses_lora

log = logging.getLogger(__name__)

# transformers 5 removed its own AdamW ("adamw_hf"; validation says so): torch's AdamW is the same algorithm.
OPTIM_NAMES = {"adamw_torch": "adamw_torch", "adamw_hf": "adamw_torch", "sgd": "sgd", "adafactor": "adafactor"}


def checkpoint_to_resume(job: Job) -> Optional[str]:
    """``training.resume_from_checkpoint``: true → the last complete checkpoint of this output dir (none: a fresh
    start, said in the log); a path → that checkpoint, which must be complete."""
    value = job.cfg.training.resume_from_checkpoint
    if value in (None, False):
        return None
    if value is True:
        found = last_complete_checkpoint(os.path.join(job.output_dir, "checkpoints"), warn=log.warning,
                                         run_id=run_id(job))
        if found is None:
            log.warning("training.resume_from_checkpoint=true: no complete checkpoint in %s/checkpoints, starting "
                        "from the beginning", job.output_dir)
        else:
            log.info("resuming from %s", found)
            job.notes.append(f"resumed from {os.path.basename(found)}")
        return found
    path = os.path.expanduser(str(value))
    if not checkpoint_complete(path):
        raise CheckpointError(f"training.resume_from_checkpoint={value} is not a complete checkpoint (no readable "
                              "trainer_state.json or weights).\n    fix: give another checkpoint-N folder, or true for "
                              "the last complete one")
    job.notes.append(f"resumed from {path}")
    return path


def run_id(job: Job) -> Optional[str]:
    """The id of the run that owns the job's output dir (its manifest), None outside a run (tests, notebooks)."""
    manifest = rundir.read_manifest(job.output_dir)
    return manifest.run_id if manifest is not None else None


def last_good_checkpoint(job: Job) -> str:
    found = last_complete_checkpoint(os.path.join(job.output_dir, "checkpoints"), run_id=run_id(job))
    return found or "none (training.save_steps not reached)"


def then_what(job: Job) -> str:
    """How to go on after a stop: resume from the last good checkpoint, or (none yet) run again."""
    if last_complete_checkpoint(os.path.join(job.output_dir, "checkpoints"), run_id=run_id(job)):
        return "then resume with training.resume_from_checkpoint=true"
    return "then run it again (no checkpoint was written to resume from)"


def non_finite_loss(job: Job, what: str, fix: str = "") -> NumericalError:
    """The error for a NaN/inf loss or weight: what happened, the last good checkpoint, and how to go on."""
    fix = fix or NON_FINITE_FIX
    return NumericalError(f"{what}: training stopped and no model was saved. Last good checkpoint: "
                          f"{last_good_checkpoint(job)}.\n    fix: {fix}; {then_what(job)}")


NON_FINITE_FIX = ("lower training.lr, set training.max_grad_norm, or use training.mixed_precision=bf16/fp32 instead "
                  "of fp16")


class NonFinite(Exception):
    """Raised inside the training loop at the first non-finite loss or weight (turned into ``non_finite_loss``)."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


def non_finite_weights(model: Any) -> Optional[str]:
    """The first parameter of ``model`` (a module, or a state dict) holding a NaN or an infinity, or None."""
    import torch

    named = model.items() if isinstance(model, dict) else model.named_parameters()
    with torch.no_grad():
        for name, p in named:
            if isinstance(p, torch.Tensor) and p.numel() and p.is_floating_point() and not bool(torch.isfinite(p).all()):
                return name
    return None


def disk_full(e: BaseException) -> bool:
    """A write that failed for want of space (``OSError`` ENOSPC/EDQUOT, or torch's stream writer saying so)."""
    import errno

    for err in (e, e.__cause__, e.__context__):
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(err or "")
        if "No space left on device" in text or "basic_ios::clear" in text or "file write failed" in text:
            return True
    return False


@contextlib.contextmanager
def disk_full_said(job: Job) -> Iterator[None]:
    """A write in the block that fails for want of space ends the run (exit 1) naming the last complete checkpoint."""
    try:
        yield
    except (OSError, RuntimeError) as e:
        if disk_full(e):
            raise disk_full_error(job, e) from e
        raise


def disk_full_error(job: Job, e: BaseException) -> RunError:
    first = (str(e).splitlines() or [type(e).__name__])[0][:200]
    return RunError(f"the disk is full: a write into {job.output_dir} failed ({first}). "
                    f"Last complete checkpoint: {last_good_checkpoint(job)}.\n    fix: free space (or choose an "
                    f"output_dir on another disk, or raise training.save_steps / lower training.save_total_limit); "
                    f"{then_what(job)}")


def finite_loss_guard():
    """A TrainerCallback that stops training when a logged loss is NaN or infinite (raised after the Trainer
    stops, naming the step and the last good checkpoint)."""
    import math

    from transformers import TrainerCallback

    class FiniteLossGuard(TrainerCallback):
        bad_step = None
        bad_value = None

        def on_log(self, args, state, control, logs=None, **kwargs):
            loss = (logs or {}).get("loss")
            if isinstance(loss, (int, float)) and not math.isfinite(loss) and self.bad_step is None:
                self.bad_step, self.bad_value = state.global_step, loss
                control.should_training_stop = True
                control.should_save = False

    return FiniteLossGuard()


@contextlib.contextmanager
def sampling_seed(seed: int) -> Iterator[None]:
    """Sample with torch's RNG seeded by ``seed``, then put the RNG back as it was: an evaluation that samples
    (a policy's mean reward before and after training) draws alike each time and leaves training's draws alone."""
    import torch

    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.random.set_rng_state(state)


@dataclass
class Job:
    cfg: DictConfig
    output_dir: str
    metrics: Dict[str, Any] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)


def precision_flags(mixed_precision: Optional[str]) -> Dict[str, bool]:
    """TrainingArguments fp16/bf16 for ``training.mixed_precision``, checked against this machine's hardware."""
    import torch

    cuda = torch.cuda.is_available()
    bf16_ok = cuda and torch.cuda.is_bf16_supported()
    if mixed_precision in (None, "auto"):
        return {"fp16": False, "bf16": bool(bf16_ok)}
    if mixed_precision == "fp16" and not cuda:
        raise HardwareError("training.mixed_precision=fp16 needs a CUDA GPU and this machine has none.\n"
                            "    fix: set training.mixed_precision=bf16 or fp32 on a CPU")
    if mixed_precision == "bf16" and cuda and not bf16_ok:
        raise HardwareError(f"training.mixed_precision=bf16: this GPU ({torch.cuda.get_device_name()}) has no bf16.\n"
                            "    fix: set training.mixed_precision=fp16 (or fp32)")
    return {"fp16": mixed_precision == "fp16", "bf16": mixed_precision == "bf16"}


def precision_used(mixed_precision: Optional[str]) -> str:
    """The mixed precision (autocast) ``training.mixed_precision`` gives on this machine: ``bf16``, ``fp16`` or
    ``none`` (the weights' own dtype), as ``auto: ...`` where it was chosen."""
    flags = precision_flags(mixed_precision)
    used = "bf16" if flags["bf16"] else "fp16" if flags["fp16"] else "none"
    return f"auto: {used}" if mixed_precision in (None, "auto") else used


def hardware_check(cfg: DictConfig) -> None:
    """Settings this machine cannot run, refused before any model is loaded."""
    import importlib.util

    import torch

    precision_flags(cfg.training.mixed_precision)
    t = cfg.training
    reads = registry.spec(cfg.trainer.name).reads  # a key the trainer does not read was warned about and is ignored
    liger_here = torch.cuda.is_available() and importlib.util.find_spec("liger_kernel")
    if "training.use_liger_kernel" in reads and t.use_liger_kernel and not liger_here:
        raise HardwareError("training.use_liger_kernel=true needs a CUDA GPU and the liger-kernel package "
                            f"(GPU: {torch.cuda.is_available()}, liger-kernel installed: "
                            f"{importlib.util.find_spec('liger_kernel') is not None}).\n"
                            "    fix: pip install liger-kernel on a GPU machine, or set "
                            "training.use_liger_kernel=false")
    if "trainer.grpo.use_vllm" in reads and cfg.trainer.grpo.use_vllm and not torch.cuda.is_available():
        raise HardwareError("trainer.grpo.use_vllm=true needs a CUDA GPU, and this machine has none.\n"
                            "    fix: set trainer.grpo.use_vllm=false (generation with transformers)")
    if t.attn_implementation.startswith("flash_attention") and not (
            torch.cuda.is_available() and importlib.util.find_spec("flash_attn")):
        raise HardwareError(f"training.attn_implementation={t.attn_implementation} needs a CUDA GPU and the "
                            "flash-attn package.\n    fix: set training.attn_implementation=auto (sdpa on a CPU)")
    if t.attn_implementation == "flex_attention" and not torch.cuda.is_available():
        raise HardwareError("training.attn_implementation=flex_attention has no backward pass on a CPU (torch), and "
                            "this machine has no CUDA GPU.\n    fix: set training.attn_implementation=auto "
                            "(varlen_sdpa on a CPU)")
    if cfg.peft.method == "qlora":
        from autotrain_hydra.compat import bitsandbytes

        why = bitsandbytes.available()
        if why is not None:
            raise HardwareError(f"peft=qlora loads the base through bitsandbytes, and {why}.\n    fix: reinstall it "
                                "(pip install bitsandbytes, the version pyproject.toml pins), or use peft=lora")


def quantization(cfg: DictConfig) -> Optional["models.Quantization"]:
    """``peft=qlora``'s quantisation of the base (``models.quantization_for``), after the precision is checked
    against this machine."""
    precision_flags(cfg.training.mixed_precision)
    return models.quantization_for(cfg)


def attn_implementation(cfg: DictConfig, several_per_row: bool = False) -> str:
    """``training.attn_implementation``; ``auto``: when a row holds several sequences (padding-free batches, packed
    blocks: ``several_per_row``), a kernel that attends within each sequence only (GPU: flash-attention when
    installed, else flex attention; CPU: ``varlen_sdpa``, sdpa per sequence), else sdpa."""
    import importlib.util

    import torch

    value = cfg.training.attn_implementation
    if value != "auto":
        return value
    if several_per_row:
        if torch.cuda.is_available():
            return "flash_attention_2" if importlib.util.find_spec("flash_attn") else "flex_attention"
        return "varlen_sdpa"  # autotrain_hydra.attention: sdpa per packed sequence
    return "sdpa"


def padding_free_batches(cfg: DictConfig) -> bool:
    """``training.padding_free``, where the attention keeps to each sequence of a packed row (see
    ``schema.rules.values.padding_free_attention``, which warns otherwise: the batches are padded then)."""
    return bool(cfg.training.padding_free) and cfg.training.attn_implementation in registry.PACKED_ATTENTION


def optimizer_name(name: str) -> str:
    """Our ``training.optimizer`` → TrainingArguments ``optim``; AdamW runs fused on a GPU (one kernel for all
    parameters). On a CPU torch's fused AdamW measured slower than its default (bench_preference.py: 0.90x)."""
    import torch

    optim = OPTIM_NAMES[name]
    return "adamw_torch_fused" if optim == "adamw_torch" and torch.cuda.is_available() else optim


def training_kwargs(job: Job, has_eval: bool) -> Dict[str, Any]:
    """Keyword arguments for TrainingArguments (or a TRL config) from our ``training`` node."""
    import torch

    t = job.cfg.training
    eval_strategy, eval_steps = (t.eval_strategy if has_eval else "no"), t.eval_steps
    report_to = list(OmegaConf.to_container(job.cfg.report_to)) or "none"
    return dict(
        output_dir=os.path.join(job.output_dir, "checkpoints"),
        learning_rate=t.lr,
        num_train_epochs=t.epochs,
        max_steps=t.max_steps,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.eval_batch_size or t.batch_size,
        gradient_accumulation_steps=t.gradient_accumulation,
        optim=optimizer_name(t.optimizer),
        lr_scheduler_type=t.scheduler,  # the schedule itself is ours (TrainerHooks)
        warmup_steps=float(t.warmup_ratio) if t.warmup_ratio else 0,
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        seed=t.seed,
        data_seed=t.seed,
        logging_steps=t.logging_steps,
        logging_first_step=True,
        eval_strategy=eval_strategy,
        eval_steps=eval_steps if eval_strategy == "steps" else None,
        activation_checkpointing=t.gradient_checkpointing,
        torch_compile=t.torch_compile,
        use_liger_kernel=t.use_liger_kernel,
        # the tokens trained on (padding-free batches hold no padding; dpo's padded ones are counted without it)
        include_num_input_tokens_seen=registry.spec(job.cfg.trainer.name).token_count,
        report_to=report_to,
        use_cpu=not torch.cuda.is_available(),
        disable_tqdm=True,
        save_strategy="steps" if t.save_steps else "no",
        save_steps=t.save_steps or 500,
        save_total_limit=t.save_total_limit,
        ddp_find_unused_parameters=False,  # every trained parameter is used (LoRA: frozen ones need no grad)
        logging_nan_inf_filter=False,  # a NaN loss is logged as NaN (and stops the run), not averaged away
        **precision_flags(t.mixed_precision),
    )


def log_history_losses(log_history: List[Dict[str, Any]]) -> Dict[str, List]:
    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e]
    evals = [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e]
    out = {"train": train, "eval": evals,
           "learning_rate": [(e["step"], e["learning_rate"]) for e in log_history if "learning_rate" in e]}
    distill = [(e["step"], e["distill_loss"]) for e in log_history if "distill_loss" in e]
    if distill:  # features=[distillation]: the teacher term alone (train is the weighted sum)
        out["distill"] = distill
    return out


def lr_factor(name: str, warmup: int, total: int) -> Callable[[int], float]:
    """The learning-rate factor of optimizer step ``s`` (0-based) for ``training.scheduler`` (``linear``, ``cosine``,
    ``constant``; ``constant_with_warmup`` too). Warm-up rises as (s+1)/(warmup+1): never 0, so that no step of a
    short run is spent at learning rate 0 (transformers' warm-up gives the first step 0: a run of one step trained
    nothing). After it: linear decay to 0 at ``total``, half a cosine, or constant."""
    import math

    def factor(s: int) -> float:
        if s < warmup:
            return (s + 1) / (warmup + 1)
        if name.startswith("constant"):
            return 1.0
        progress = (s - warmup) / max(1, total - warmup)
        if name == "cosine":
            return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
        if name == "linear":
            return max(0.0, 1.0 - progress)
        raise ValueError(f"unknown learning-rate schedule {name!r}")

    return factor


def scheduler(name: str, optimizer: Any, warmup: int, total: int) -> Any:
    """The learning-rate scheduler ``name`` with ``warmup`` warm-up steps, over ``total`` optimizer steps."""
    from torch.optim.lr_scheduler import LambdaLR

    return LambdaLR(optimizer, lr_factor(name, warmup, total))


class TrainerHooks:
    """Trainer mixin, through methods transformers' Trainer documents as override points: our learning-rate schedule
    (``lr_factor``, ``create_scheduler``), and the loss of every optimizer step checked (``training_step``): each
    micro-batch's finiteness is kept on the device and read once per optimizer step (one sync), so a NaN/inf stops
    the run at that step, before any later save (the logged losses are only every ``logging_steps``)."""

    _finite = None
    _micro = 0

    def training_step(self, *args: Any, **kwargs: Any) -> Any:
        import torch

        loss = super().training_step(*args, **kwargs)
        if isinstance(loss, torch.Tensor):
            ok = torch.isfinite(loss.detach()).all()
            self._finite = ok if self._finite is None else self._finite & ok
            self._micro += 1
            if self._micro % max(1, self.args.gradient_accumulation_steps) == 0:
                finite, self._finite = bool(self._finite), None
                if not finite:
                    raise NonFinite(f"the training loss became {float(loss.detach().float().mean())} at step "
                                    f"{self.state.global_step + 1}")
        return loss

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        upcast_trainable_to_float32(self.model)

    def create_scheduler(self, num_training_steps: int, optimizer: Any = None) -> Any:
        if self.lr_scheduler is None:
            name = getattr(self.args.lr_scheduler_type, "value", self.args.lr_scheduler_type)
            self.lr_scheduler = scheduler(name, optimizer or self.optimizer,
                                          self.args.get_warmup_steps(num_training_steps), num_training_steps)
        return self.lr_scheduler


def upcast_trainable_to_float32(model: Any) -> None:
    """On a quantised base (``peft=qlora``), the trainable weights (the LoRA adapter, a reward model's head) in
    float32: TRL's trainers cast them to bfloat16 whatever the run's precision, where an optimizer update below
    bfloat16's resolution is lost; with bf16/fp16 mixed precision the forward pass still computes in it (autocast)."""
    import torch

    if not (getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False)):
        return
    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()


def trainer_class(base: type) -> type:
    """``base`` (transformers' Trainer or a TRL trainer) with our learning-rate schedule."""
    return type(base.__name__, (TrainerHooks, base), {"__doc__": base.__doc__})


def checkpoint_guard(job: Job):
    """A TrainerCallback that checks the weights are finite before a checkpoint is saved (a NaN/inf weight stops
    the run: no checkpoint is written from it) and writes into each checkpoint which run, trainer and model made it
    (``paths.STAMP``)."""
    from transformers import TrainerCallback

    class Stamp(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            if control.should_save and model is not None:
                bad = non_finite_weights(model)
                if bad is not None:
                    control.should_save = False
                    raise NonFinite(f"the weight {bad} became NaN or infinite at step {state.global_step}")

        def on_save(self, args, state, control, **kwargs):
            path = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
            if state.is_world_process_zero and os.path.isdir(path):
                stamp_checkpoint(path, rundir.stamp(job.output_dir, job.cfg.trainer.name, str(job.cfg.model.name)))

    return Stamp()


def nothing_left(job: Job, checkpoint: str, global_step: int) -> None:
    """A resume from a checkpoint at the run's last step: when the results written in the dir are from that step
    already it would train nothing and rewrite them (refused, before anything is saved); when they are not (the run
    was stopped while writing them, or an extended run after its last checkpoint), the run finishes: its results
    are written from that checkpoint."""
    committed = rundir.committed_step(job.output_dir)
    if committed is not None and committed >= global_step:
        raise ran_no_step(job, checkpoint, global_step)
    log.info("%s is at the run's last step (%d): the run had trained to its end and was stopped before its results "
             "were written; writing them from it", checkpoint, global_step)
    job.notes.append(f"results written from {os.path.basename(checkpoint)}, the run's last step")


def ran_no_step(job: Job, checkpoint: Optional[str], global_step: int) -> NothingTrained:
    """The error for a resume that had nothing left to train (raised before anything is saved)."""
    return NothingTrained(
        f"resumed from {checkpoint} at step {global_step} and ran no step: the run's length (training.max_steps, "
        f"or training.epochs) ends there, so the model would be the checkpoint's.\n    fix: to train further, raise "
        "training.max_steps (or training.epochs) above the checkpoint's step; to start again, use a new output_dir")


def schedule_resumed():
    """A TrainerCallback that puts the learning rate where the schedule is at a resumed run's step. The Trainer
    restores the optimizer's learning rate from the checkpoint — the old schedule's, 0 at its end when the run is
    extended (a longer training.max_steps) — and the scheduler sets the next rate only after the first step: that
    step trained at the old rate (0: the weights did not move)."""
    from transformers import TrainerCallback

    class ScheduleResumed(TrainerCallback):
        def on_train_begin(self, args, state, control, optimizer=None, lr_scheduler=None, **kwargs):
            if state.global_step == 0 or lr_scheduler is None:
                return
            import warnings

            lr_scheduler.last_epoch = state.global_step - 1  # step() sets every group's rate for global_step
            with warnings.catch_warnings():  # "lr_scheduler.step() before optimizer.step()": on purpose, here
                warnings.simplefilter("ignore")
                lr_scheduler.step()

    return ScheduleResumed()


def stop_when_asked():
    """A TrainerCallback that stops at the next step when a SIGTERM asked to stop (``processes.stop_requested``),
    should the KeyboardInterrupt the signal raised have been swallowed."""
    from transformers import TrainerCallback

    class StopWhenAsked(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if stop_requested():
                raise KeyboardInterrupt("signal 15")

    return StopWhenAsked()


class AtTheEnd(Exception):
    """Raised before a step when the run is at its last step already (a resume from the run's last checkpoint)."""


def no_step_past_the_end():
    """A TrainerCallback that stops before a step beyond ``max_steps``: resumed from a checkpoint at the run's last
    step, transformers' Trainer would run one more step (the loop checks the end only after a step)."""
    from transformers import TrainerCallback

    class NoStepPastTheEnd(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.max_steps and state.global_step >= state.max_steps:
                raise AtTheEnd()

    return NoStepPastTheEnd()


def final_step_logged():
    """A TrainerCallback that logs the last step too: the reported train loss is the loss at the end of training,
    also when the run is shorter than training.logging_steps (it was the first step's)."""
    from transformers import TrainerCallback

    class LogFinalStep(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.max_steps and state.global_step >= state.max_steps:
                control.should_log = True

    return LogFinalStep()


def fingerprint(model: Any) -> Optional[List[Tuple[float, float]]]:
    """Per trainable tensor: its sum and sum of squares (cheap, one pass): equal before and after training only if
    no weight changed. None when there is no trainable parameter."""
    import torch

    with torch.no_grad():
        prints = [(float(p.detach().float().sum()), float(p.detach().float().pow(2).sum()))
                  for p in model.parameters() if p.requires_grad]
    return prints or None


def weights_changed(before: Optional[list], after: Optional[list]) -> bool:
    return before is not None and after is not None and before != after


def train_and_collect(job: Job, trainer: Any, has_eval: bool) -> Dict[str, Any]:
    """Train (from the checkpoint to resume, if any), stop on a non-finite loss, evaluate (when there is eval data)
    and collect the metrics every trainer reports, with whether any weight changed."""
    shown = console.use_in(trainer)
    prune = pruning.reporter(job.cfg)  # a trial of a pruned sweep: its evaluations reported, stopped when pruned
    if prune is not None:
        trainer.add_callback(pruning.trainer_callback(prune))
    guard = finite_loss_guard()
    trainer.add_callback(guard)
    trainer.add_callback(final_step_logged())
    trainer.add_callback(checkpoint_guard(job))
    trainer.add_callback(stop_when_asked())
    trainer.add_callback(no_step_past_the_end())
    trainer.add_callback(schedule_resumed())
    before = fingerprint(trainer.model)
    checkpoint = checkpoint_to_resume(job)
    try:
        try:
            with disk_full_said(job):
                result = trainer.train(resume_from_checkpoint=checkpoint)
        except AtTheEnd:  # the checkpoint's weights and state are loaded; no step ran
            from transformers.trainer_utils import TrainOutput

            losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
            result = TrainOutput(trainer.state.global_step, sum(losses) / len(losses) if losses else float("nan"), {})
        except NonFinite as e:
            raise non_finite_loss(job, e.what) from None
    finally:
        shown.close()
    if checkpoint is not None and result.global_step <= (checkpoint_state(checkpoint) or {}).get("global_step", -1):
        nothing_left(job, checkpoint, result.global_step)
    if guard.bad_step is not None:
        raise non_finite_loss(job, f"the training loss became {guard.bad_value} at step {guard.bad_step}")
    metrics: Dict[str, Any] = {
        "weights_changed": weights_changed(before, fingerprint(trainer.model)),
        "train_loss_mean": result.training_loss,
        "train_runtime_s": result.metrics.get("train_runtime"),
        "train_samples_per_second": result.metrics.get("train_samples_per_second"),
        "global_step": result.global_step,
    }
    losses = log_history_losses(trainer.state.log_history)
    tokens = getattr(trainer.state, "num_input_tokens_seen", 0)
    if tokens:
        metrics["train_tokens"] = int(tokens)
        if metrics["train_runtime_s"]:
            metrics["train_tokens_per_second"] = round(tokens / metrics["train_runtime_s"], 1)
    if losses["train"]:
        metrics["first_train_loss"] = losses["train"][0][1]
        metrics["train_loss"] = losses["train"][-1][1]
    else:
        metrics["train_loss"] = result.training_loss
    if has_eval:  # the evaluation at the last step, when the schedule made one (same weights): not run again
        last = next((e for e in reversed(trainer.state.log_history) if any(k.startswith("eval_") for k in e)), None)
        ev = last if last is not None and last.get("step") == result.global_step else trainer.evaluate()
        metrics.update({k: v for k, v in ev.items() if isinstance(v, (int, float)) and k != "step"})
    metrics["history"] = losses
    if prune is not None:
        prune.record(metrics)
    return metrics


def remove_empty_checkpoints(out: str) -> None:
    """The trainer's checkpoint folder is left out of the output when no checkpoint was written; TRL's boilerplate
    model card there (``checkpoints/README.md``: "a fine-tuned version of [None](https://huggingface.co/None)") is
    not kept: the run's card is ours, in the output dir."""
    checkpoints = os.path.join(out, "checkpoints")
    card = os.path.join(checkpoints, "README.md")
    if os.path.isfile(card):
        with open(card, encoding="utf-8", errors="replace") as f:
            if "generated_from_trainer" in f.read(4096):
                os.remove(card)
    if os.path.isdir(checkpoints) and not os.listdir(checkpoints):
        os.rmdir(checkpoints)


def save_model(job: Job, model: Any, tokenizer: Any, trainer: Any = None) -> None:
    """Save the model and tokenizer into the output dir (a LoRA model: the adapter, plus merged weights in
    ``merged/`` when ``peft.merge_adapter=true``)."""

    def write(tmp: str, model: Any, state_dict: Optional[Dict[str, Any]]) -> None:
        models.save_for_serving(model, tokenizer, tmp, state_dict)
        if uses_lora(job.cfg.peft.method) and job.cfg.peft.merge_adapter:
            models.save_for_serving(merged_model(job, model), tokenizer, os.path.join(tmp, "merged"))
            job.notes.append("merged weights saved in merged/")

    save_output(job, model, trainer, write)


def merged_model(job: Job, model: Any, num_labels: Optional[int] = None) -> Any:
    """The trained LoRA adapter merged into its base; ``peft=qlora``: into the base reloaded in full precision
    (said in the run's notes)."""
    if job.cfg.peft.method != "qlora":
        return model.merge_and_unload()
    job.notes.append(f"the QLoRA adapter is merged into the base reloaded in full precision ({job.cfg.model.name}), "
                     f"not into its {job.cfg.peft.bits}-bit weights")
    log.info(job.notes[-1])
    return models.merged_in_full_precision(job.cfg.model, model, num_labels)


def save_output(job: Job, model: Any, trainer: Any,
                write: Callable[[str, Any, Optional[Dict[str, Any]]], None]) -> None:
    """``write(tmp, model, state_dict)`` into a temporary folder whose entries are then moved into the output dir
    (a crash while saving leaves no half-written model). In a launched run rank 0 alone writes, after every rank
    has finished training; with FSDP or DeepSpeed every rank first takes part in gathering the full weights
    (``state_dict``, else None: the model's own)."""
    out = job.output_dir
    _, world = rank_and_world()
    if world == 1 or trainer is None:
        remove_empty_checkpoints(out)
        stage_model(job, model, lambda tmp: write(tmp, model, None))
        return
    accelerator = trainer.accelerator
    state_dict = None
    if getattr(trainer, "is_fsdp_enabled", False) or getattr(trainer, "is_deepspeed_enabled", False):
        state_dict = accelerator.get_state_dict(trainer.model_wrapped)  # a collective: every rank
        model = accelerator.unwrap_model(trainer.model_wrapped)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        remove_empty_checkpoints(out)
        stage_model(job, model, lambda tmp: write(tmp, model, state_dict), state_dict)
    accelerator.wait_for_everyone()


def stage_model(job: Job, model: Any, write: Callable[[str], None],
                state_dict: Optional[Dict[str, Any]] = None) -> None:
    """Write the final model into the run dir's staging folder (``rundir``: the run commits it with its metrics,
    config and card, all together), after checking that every weight is finite (a NaN model is never saved): the
    gathered ``state_dict`` of a sharded run (FSDP, ZeRO-3), else the model's own. A trainer's other result files
    go into ``rundir.staging(job.output_dir)`` after this (it starts the staging folder afresh)."""
    bad = non_finite_weights(state_dict if state_dict is not None else model)
    if bad is not None:
        raise non_finite_loss(job, f"the weight {bad} of the trained model is NaN or infinite")
    with disk_full_said(job):
        write(rundir.fresh_staging(job.output_dir))
