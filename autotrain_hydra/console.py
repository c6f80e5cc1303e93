"""What a person sees in the terminal while a run trains: a progress bar with ETA per phase (tokenising, training,
evaluation, generation), a line of numbers at each logging step and each evaluation, an end summary; library noise
that is known and harmless silenced.

- **A terminal** (stderr is a TTY): progress bars (tqdm) on stderr; the log lines are written above them
  (``tqdm.contrib.logging``), so a bar is never torn by a line.
- **Not a terminal** (CI, a file, a pipe): no bar at all; the same lines, each with the step and the ETA, so a CI log
  reads like a report.

Lines go through logging (``autotrain_hydra`` logger): on the console and in the run's ``train.log``. Numbers are
printed as numbers (``loss 5.784``), never as a dict of quoted strings. Light at import: tqdm and transformers are
imported by the functions that use them.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
import warnings
from typing import Any, Dict, Iterator, List, Optional, Tuple

log = logging.getLogger("autotrain_hydra")

# a training log line: the loss, the learning rate, then these where a trainer logs them (TRL's names)
SHOWN = ("reward", "kl", "rewards/margins", "rewards/accuracies", "mean_token_accuracy", "accuracy")
# never shown: timings and counters (in metrics.json and the trackers)
HIDDEN_SUFFIXES = ("_runtime", "_per_second", "num_tokens", "num_input_tokens_seen", "total_flos", "entropy")


def is_terminal() -> bool:
    """Progress bars only where a person watches: stderr is a terminal (``AUTOTRAIN_HYDRA_PROGRESS=0`` turns them
    off there too, ``=1`` on anywhere), and only in the first process of a launched run (the others would draw the
    same bars on the same terminal)."""
    from autotrain_hydra.processes import rank_and_world

    if rank_and_world()[0] != 0:
        return False
    forced = os.environ.get("AUTOTRAIN_HYDRA_PROGRESS")
    if forced in ("0", "1"):
        return forced == "1"
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


# ----------------------------------------------------------------------------------------------- library noise
KNOWN_WARNINGS = (
    # transformers 5 deprecates the attribute it reads itself on every gradient-checkpointing check (3x a run)
    (FutureWarning, r".*`is_gradient_checkpointing` is deprecated"),
)
KNOWN_LOG_LINES = {  # logger: the start of a line it logs that says nothing a user can act on
    # LLM.int8 (peft=qlora peft.bits=8) on every forward pass of every layer: its inputs are quantised in float16
    "bitsandbytes.autograd._functions": "MatMul8bitLt: inputs will be cast from",
    # the Trainer's checkpoint rotation on a filesystem with coarse mtimes: it orders them by step, as it should
    "transformers.trainer_utils": "mtime may not be reliable on this filesystem",
}


class _KnownLines(logging.Filter):
    def __init__(self, start: str) -> None:
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.start)


def quiet_libraries() -> None:
    """Silence what is known and harmless: the warnings above, bitsandbytes' notice that an optional kernel package
    is missing (its fallback works), transformers' per-file loading and writing bars (a run has its own per phase;
    the hub's download bars stay, on a terminal: a first download of a large model is not silent), the hub's
    telemetry thread (offline anyway; it held the exit). The datasets library's tokenising bars are the tokenising
    phase's bar: on a terminal only. Idempotent: every process that trains calls it, before transformers loads."""
    for category, message in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    for name, start in KNOWN_LOG_LINES.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _KnownLines) for f in logger.filters):
            logger.addFilter(_KnownLines(start))
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    from autotrain_hydra.compat import bitsandbytes

    bitsandbytes.quiet()
    import datasets
    import huggingface_hub.utils
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # it turns the hub's off too
    if is_terminal():
        huggingface_hub.utils.enable_progress_bars()
        datasets.enable_progress_bars()
    else:
        datasets.disable_progress_bars()


# ----------------------------------------------------------------------------------------------- progress bars
class _Quiet:
    """A progress bar where no terminal watches: nothing drawn."""

    n = 0

    def update(self, n: int = 1) -> None:
        self.n += n

    def update_to(self, n: int) -> None:
        self.n = n

    def set_postfix_str(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def progress(total: Optional[int], phase: str, unit: str = "step", initial: int = 0, leave: bool = True) -> Any:
    """A bar for one phase (``training``, ``evaluating``, ``generating``...) with its rate and ETA, on a terminal;
    an object that draws nothing elsewhere. ``update(n)`` / ``update_to(n)`` / ``close()``."""
    if not is_terminal():
        quiet = _Quiet()
        quiet.n = initial
        return quiet
    from tqdm.auto import tqdm

    class Bar(tqdm):
        def update_to(self, n: int) -> None:
            self.update(max(0, n - self.n))

    return Bar(total=total, desc=phase, unit=unit, initial=initial, leave=leave, dynamic_ncols=True, file=sys.stderr)


@contextlib.contextmanager
def lines_above_bars() -> Iterator[None]:
    """While bars are drawn: log lines written above them (tqdm's logging redirect), never through them."""
    if not is_terminal():
        yield
        return
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm(loggers=[logging.getLogger()]):
        yield


# ----------------------------------------------------------------------------------------------- lines
def number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.3e}"
    return f"{value:.4g}"


def duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _shown(key: str) -> bool:
    return not key.endswith(HIDDEN_SUFFIXES) and key not in ("epoch", "step")


def train_line(logs: Dict[str, Any], step: int, total: int, eta: Optional[float]) -> str:
    parts = [f"step {step}/{total}"]
    if "loss" in logs:
        parts.append(f"loss {number(logs['loss'])}")
    if "learning_rate" in logs:
        parts.append(f"lr {number(logs['learning_rate'])}")
    parts += [f"{k} {number(logs[k])}" for k in SHOWN if k in logs]
    if "epoch" in logs:
        parts.append(f"epoch {number(round(float(logs['epoch']), 2))}")
    if eta is not None:
        parts.append(f"ETA {duration(eta)}")
    return "  ".join(parts)


def eval_line(logs: Dict[str, Any], step: int, total: int, previous: Optional[Dict[str, Any]]) -> str:
    parts = [f"eval at step {step}/{total}:"]
    for key, value in logs.items():
        if not key.startswith("eval_") or not _shown(key) or isinstance(value, bool) or not isinstance(
                value, (int, float)):
            continue
        text = f"{key[len('eval_'):]} {number(value)}"
        if previous is not None and isinstance(previous.get(key), (int, float)):
            text += f" ({'+' if value - previous[key] >= 0 else ''}{number(value - previous[key])})"
        parts.append(text)
    return "  ".join(parts)


def trainer_callback() -> Any:
    """The Trainer's console (replaces transformers' PrinterCallback/ProgressCallback, which print each log as a
    dict of quoted strings): a bar per phase on a terminal, a line per logging step and evaluation (the same
    evaluation is said once), rank 0 only."""
    from transformers import TrainerCallback

    class Console(TrainerCallback):
        def __init__(self) -> None:
            self.bar: Any = None
            self.eval_bar: Any = None
            self.started: Optional[float] = None
            self.first_step = 0
            self.last_eval: Optional[Dict[str, Any]] = None
            self.redirect: Any = None

        def on_train_begin(self, args, state, control, **kwargs):
            if not state.is_world_process_zero:
                return
            self.started, self.first_step = time.time(), state.global_step
            self.bar = progress(state.max_steps, "training", initial=state.global_step)
            self.redirect = lines_above_bars()
            self.redirect.__enter__()

        def on_step_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.update_to(state.global_step)

        def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
            if not state.is_world_process_zero:
                return
            if self.eval_bar is None:
                try:
                    total = len(eval_dataloader) if eval_dataloader is not None else None
                except TypeError:
                    total = None
                self.eval_bar = progress(total, "evaluating", unit="batch", leave=False)
            self.eval_bar.update(1)

        def on_evaluate(self, args, state, control, **kwargs):
            if self.eval_bar is not None:
                self.eval_bar.close()
                self.eval_bar = None

        def eta(self, state) -> Optional[float]:
            done = state.global_step - self.first_step
            if self.started is None or done <= 0 or not state.max_steps:
                return None
            return (time.time() - self.started) / done * max(0, state.max_steps - state.global_step)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs:
                return
            if any(k.startswith("eval_") for k in logs):
                log.info(eval_line(logs, state.global_step, state.max_steps, self.last_eval))
                self.last_eval = dict(logs)
            elif "loss" in logs:
                log.info(train_line(logs, state.global_step, state.max_steps, self.eta(state)))

        def on_train_end(self, args, state, control, **kwargs):
            self.close()

        def close(self) -> None:
            """The bars closed and log lines back to their handlers (also when training raised)."""
            for bar in (self.eval_bar, self.bar):
                if bar is not None:
                    bar.close()
            self.bar = self.eval_bar = None
            if self.redirect is not None:
                self.redirect.__exit__(None, None, None)
                self.redirect = None

    return Console()


def use_in(trainer: Any) -> Any:
    """``trainer`` (transformers' Trainer or a TRL trainer) reports through this console only; the console (its
    ``close()`` ends its bars, whatever ended the training)."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    shown = trainer_callback()
    trainer.add_callback(shown)
    return shown


# ----------------------------------------------------------------------------------------------- the end
def summary(trainer: str, model: str, out: str, metrics: Dict[str, Any], try_it: Optional[str]) -> List[str]:
    """The run's last lines: what it reached and what improved, where the model is, how to try it."""
    name, value = metrics.get("objective_name"), metrics.get("objective")
    steps = metrics.get("global_step")
    lines = [f"done: trainer={trainer} on {model}, {steps} optimizer step{'' if steps == 1 else 's'} in "
             f"{duration(metrics.get('wall_time_s') or 0)}"]
    rows = [(name, value, *_start_of(name, metrics))]
    if str(name).endswith("loss") and name != "train_loss" and "train_loss" in metrics:  # a policy's loss: no
        rows.append(("train_loss", metrics["train_loss"], metrics.get("first_train_loss"), "at the first step"))
    if name != "eval_logp_margin_after" and isinstance(metrics.get("eval_logp_margin_after"), (int, float)):
        rows.append(("eval_logp_margin_after", metrics["eval_logp_margin_after"],
                     *_start_of("eval_logp_margin_after", metrics)))  # dpo/orpo/kto: did the preference move
    width = max(len(str(r[0])) for r in rows)
    for key, now, start, when in rows:
        text = f"  {key:<{width}}  {number(now)}"
        if isinstance(start, (int, float)) and isinstance(now, (int, float)):
            from autotrain_hydra.registry import metric_direction

            better = (now < start) if metric_direction(str(key)) == "minimize" else (now > start)
            text += f"   ({'better' if better else 'not better'} than {number(start)} {when})"
        lines.append(text)
    lines.append(f"  model: {out}")
    if try_it:
        lines.append(f"  try it: {try_it}")
    return lines


def _start_of(name: Optional[str], metrics: Dict[str, Any]) -> Tuple[Optional[float], str]:
    """Where the objective started, and when: its ``_before`` twin (a policy's mean reward, a margin: before
    training), the first evaluation (the eval loss), or the first logged training loss."""
    before = f"{name[: -len('_after')]}_before" if name and name.endswith("_after") else None
    if before and isinstance(metrics.get(before), (int, float)):
        return metrics[before], "before training"
    if name == "eval_loss":
        evals = (metrics.get("history") or {}).get("eval") or []
        return (evals[0][1], f"at the first evaluation (step {evals[0][0]})") if len(evals) > 1 else (None, "")
    if name == "train_loss":
        return metrics.get("first_train_loss"), "at the first step"
    return None, ""
