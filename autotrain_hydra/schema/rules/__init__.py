"""The validator: every rule of the guide, as named rule functions grouped by concern, run over a resolved config.

``validate(cfg, overrides)`` returns a ``Report`` of every warning and error of the config at once (nothing is
loaded and nothing is written). The rules read the rules table (``schema.params``) and the trainer registry; each
module holds one concern:

- ``keys``: unknown keys (with did-you-mean), unknown or removed trainers;
- ``values``: allowed values and ranges, required keys, settings that need another (``eval_strategy=steps``);
- ``applicability``: keys set for another trainer or for a feature that is off (the guide's "will be ignored"),
  features a trainer cannot use, models a trainer cannot train;
- ``features``: distillation, enhanced evaluation and sweeps;
- ``launcher``: where training runs;
- ``trainers``: one trainer's own settings (GRPO's rewards and generation groups, KTO's batches);
- ``paths``: the filesystem (paths that do not exist, saved models, a used output dir, checkpoints);
- ``resume``: a resume continues this run with its checkpoint's recipe.

Light package: no torch.
"""

from __future__ import annotations

from typing import Iterable

from omegaconf import DictConfig

from autotrain_hydra.schema.errors import Report
from autotrain_hydra.schema.rules import applicability, features, keys, launcher, paths, resume, trainers, values
from autotrain_hydra.schema.rules.context import Context

# In order: the report lists issues in the order the rules found them.
RULES = (
    values.value_checks,
    values.trackers_installed,
    values.quantized_base,
    values.swept_values,
    values.required_keys,
    applicability.keys_for_other_trainers,
    applicability.features_per_trainer,
    applicability.model_fits_trainer,
    values.chat_template,
    values.eval_steps_needed,
    values.optimizer_alias,
    values.eval_data_sources,
    values.padding_free_attention,
    features.distillation,
    features.eval_metrics,
    features.benchmark,
    features.sweep,
    launcher.launcher,
    trainers.grpo_groups,
    trainers.grpo_lengths,
    trainers.grpo_vllm,
    trainers.kto_batch,
)
# what reads files: paths, saved models, checkpoints, the user's reward modules and the data's columns
FILESYSTEM_RULES = (trainers.grpo_rewards, paths.paths_exist, paths.reward_model, paths.output_dir, paths.resume,
                    resume.same_recipe)


def validate(cfg: DictConfig, overrides: Iterable[str] = (), check_filesystem: bool = True) -> Report:
    """Every warning and error of a (resolved) config, per the guide's rules; ``overrides`` are the ones the user
    typed (a key typed counts as set even at its default)."""
    ctx = Context.of(cfg, overrides)
    keys.unknown_keys(ctx)
    if not keys.trainer_known(ctx):
        return ctx.report
    for rule in RULES + (FILESYSTEM_RULES if check_filesystem else ()):
        rule(ctx)
    return ctx.report


__all__ = ["validate", "RULES", "FILESYSTEM_RULES", "Context"]
