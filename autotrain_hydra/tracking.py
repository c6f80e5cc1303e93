"""The run's trackers (``report_to``: ``wandb``, ``tensorboard``): where they write, and how a trainer outside
transformers' Trainer (ppo) reports to them under the Trainer's metric names.

- TensorBoard writes into the run dir, ``<output_dir>/tensorboard/``: the curves beside the model, and a sweep's
  trials side by side (``tensorboard --logdir multirun/<sweep>`` shows each trial as a run named by its dir). The
  Trainer's callback is pointed there through ``TENSORBOARD_LOGGING_DIR``, the variable its documentation names.
- Names: the Trainer's (transformers' ``rewrite_logs``): ``eval/<name>``, ``train/<name>`` (TRL's ``a/b`` too); ppo's rows are renamed to
  the names TRL's trainers use for the same quantity (``learning_rate``, ``reward``, ``kl``,
  ``completions/mean_length``), so that a ppo run and a grpo run plot on the same axes.

Light: torch, tensorboard and wandb are imported only by ``Trackers``.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Dict, Iterator, List, Optional

TENSORBOARD = "tensorboard"  # the folder in the run dir
TENSORBOARD_VAR = "TENSORBOARD_LOGGING_DIR"
# ppo's row → the name TRL's trainers log the same quantity under
PPO_NAMES = {"lr": "learning_rate", "mean_reward": "reward", "response_length": "completions/mean_length"}


def tensorboard_dir(out: str) -> str:
    return os.path.join(out, TENSORBOARD)


def trackers(cfg: Any) -> List[str]:
    return [str(t) for t in (cfg.report_to or [])]


@contextlib.contextmanager
def writing_into(cfg: Any, out: str) -> Iterator[None]:
    """While a job trains: transformers' TensorBoard callback writes into ``out/tensorboard`` (as ``Trackers``
    does), not into ``checkpoints/runs/<date>_<host>``."""
    if TENSORBOARD not in trackers(cfg):
        yield
        return
    before = os.environ.get(TENSORBOARD_VAR)
    os.environ[TENSORBOARD_VAR] = tensorboard_dir(out)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(TENSORBOARD_VAR, None)
        else:
            os.environ[TENSORBOARD_VAR] = before


def trainer_names(row: Dict[str, Any], renames: Optional[Dict[str, str]] = None) -> Dict[str, float]:
    """``row``'s numbers under the Trainer's names (transformers' ``rewrite_logs``): ``eval_x`` → ``eval/x``, the rest
    ``train/x``."""
    out = {}
    for key, value in row.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        key = (renames or {}).get(key, key)
        out[f"eval/{key[len('eval_'):]}" if key.startswith("eval_") else f"train/{key}"] = float(value)
    return out


class Trackers:
    """The run's trackers for a trainer that is not transformers' Trainer: ``log(row, step)`` writes ``row`` to each
    (TensorBoard event files in the run dir; the W&B run, started as the Trainer's callback starts it)."""

    def __init__(self, cfg: Any, out: str):
        self.names = trackers(cfg)
        self.tensorboard = None
        self.wandb = None
        if TENSORBOARD in self.names:
            from torch.utils.tensorboard import SummaryWriter

            self.tensorboard = SummaryWriter(log_dir=tensorboard_dir(out))
        if "wandb" in self.names:
            import wandb

            if wandb.run is None:  # the run's config (secrets redacted), as the Trainer's callback records its own
                from omegaconf import OmegaConf

                from autotrain_hydra.secrets import redact_obj

                wandb.init(project=os.environ.get("WANDB_PROJECT", "huggingface"),
                           config=redact_obj(OmegaConf.to_container(cfg, resolve=True)),
                           name=os.path.basename(os.path.normpath(out)))
            # as transformers' WandbCallback: every chart against the optimizer step, not W&B's call counter
            wandb.define_metric("train/global_step")
            wandb.define_metric("*", step_metric="train/global_step", step_sync=True)
            self.wandb = wandb

    def log(self, row: Dict[str, Any], step: int, renames: Optional[Dict[str, str]] = None) -> None:
        values = trainer_names(row, renames)
        if self.tensorboard is not None:
            for key, value in values.items():
                self.tensorboard.add_scalar(key, value, step)
            self.tensorboard.flush()
        if self.wandb is not None:
            self.wandb.log({**values, "train/global_step": step})

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
            self.tensorboard = None
