"""Resolve a composed config, once, in one place: the only code that changes a config after Hydra composed it.

``resolve`` returns a copy in which, in this order:

1. **built-in sample**: with ``data.path`` null, the data node is filled from the trainer's built-in sample
   (``configs/data/<shape>.yaml``): only keys the user neither typed nor changed from their default;
2. **the sample's validation file**: a ``data.valid_path`` that is a shipped sample's (from ``data=<shape>``, not
   typed) is dropped when the training data are the user's own, or when the user typed another source of eval data
   (``data.valid_fraction``, ``data.valid_split``): it belongs to the sample;
3. **text column**: a ``data.text_column`` left at ``text`` that the data lack becomes the trainer's conventional
   column (``messages`` for sft, ``chosen`` for preference pairs, ...) when the data have it (peeked, not loaded);
4. **sweep objective**: with the sweep feature, ``sweep.metric`` null becomes the trainer's sweep metric and
   ``sweep.direction`` null the direction its name implies;
5. **hold-outs**: a sweep on an eval metric, or enhanced evaluation, with no eval data holds out a seeded slice of
   the training rows (``data.valid_fraction``);
6. **the job's dir**: ``output_dir`` becomes where this job writes: the run dir, or ``<output_dir>/<trial>`` for a
   trial of a sweep.

Each change is said in ``notes`` (the run logs them). The result is read-only: nothing later can change it.
Light module.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, List, Optional, Sequence

from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from autotrain_hydra import paths, registry
from autotrain_hydra.schema import data_peek
from autotrain_hydra.schema.keys import default, feature_enabled, get, override_keys
from autotrain_hydra.schema.metrics import has_eval_data, sweep_objective

DEFAULT_TEXT_COLUMN = "text"
SWEEP_HOLDOUT = 0.1


@dataclass
class JobPlace:
    """Where a job writes: Hydra's run dir for this job, and its number in a multirun (None for a single run)."""

    run_dir: str
    number: Optional[int] = None


@dataclass
class Resolved:
    cfg: DictConfig  # read-only
    notes: List[str] = field(default_factory=list)


def resolve(cfg: DictConfig, overrides: Iterable[str] = (), job: Optional[JobPlace] = None,
            config_dirs: Sequence[str] = ()) -> Resolved:
    """The resolved, read-only copy of ``cfg`` (see the module doc); ``overrides`` are the ones the user typed;
    ``config_dirs`` where the data presets are looked up first (``--config-dir``; then the package's configs)."""
    _check_interpolations(cfg)
    out = copy.deepcopy(cfg)
    typed = override_keys(overrides)
    dirs = [*config_dirs, str(paths.config_dir())]
    notes: List[str] = []
    with read_write(out), open_dict(out):
        for step in (_data_sample, _sample_valid_path, _text_column, _sweep_objective, _holdout):
            note = step(out, typed, dirs)
            if note:
                notes.append(note)
        if job is not None:
            _job_dir(out, job)
    OmegaConf.set_readonly(out, True)
    return Resolved(out, notes)


def _check_interpolations(cfg: DictConfig) -> None:
    """Every ``${...}`` of the config resolves (a missing key, an unset environment variable, an unknown resolver),
    else a ConfigError naming each key, before anything reads the config."""
    from omegaconf.errors import InterpolationResolutionError, MissingMandatoryValue

    from autotrain_hydra.schema.errors import Report

    report = Report()

    def walk(node: Any, prefix: str) -> None:
        keys = range(len(node)) if OmegaConf.is_list(node) else list(node.keys())
        for k in keys:
            key = f"{prefix}{k}"
            try:
                value = node[k]
            except MissingMandatoryValue:
                continue  # ??? : the rules say which key is required
            except InterpolationResolutionError as e:
                raw = OmegaConf.to_container(node, resolve=False)[k]
                report.error(f"{key}={raw} cannot be resolved: {str(e).splitlines()[0]}", key, raw,
                             "fix the ${...} reference (a config key that exists, ${oc.env:NAME} with NAME set, or "
                             "${oc.env:NAME,default})")
                continue
            if OmegaConf.is_config(value):
                walk(value, f"{key}.")

    walk(cfg, "")
    report.raise_if_errors()


def place(cfg: DictConfig, job: JobPlace) -> DictConfig:
    """A resolved config placed in its job's dir (step 6 alone): the job of a single run, whose config was resolved
    and validated before Hydra made its run dir."""
    out = copy.deepcopy(cfg)
    with read_write(out), open_dict(out):
        _job_dir(out, job)
    OmegaConf.set_readonly(out, True)
    return out


def _set(cfg: DictConfig, key: str, value) -> None:
    OmegaConf.update(cfg, key, value, merge=False)


def _data_sample(cfg: DictConfig, typed: set, dirs: List[str]) -> Optional[str]:
    if get(cfg, "data.path") is not None:
        return None
    trainer = get(cfg, "trainer.name")
    if trainer not in registry.SPECS:
        return None  # refused by the rules
    shape = registry.spec(trainer).data_shape
    found = [os.path.join(d, "data", f"{shape}.yaml") for d in dirs]
    preset = OmegaConf.load(next(f for f in found if os.path.isfile(f)))
    for k, v in preset.items():
        key = f"data.{k}"
        if k == "defaults" or key in typed or get(cfg, key) != default(key):
            continue  # a value the user gave is never replaced
        _set(cfg, key, v)
    return f"data.path not set: trainer={trainer} uses the built-in sample data ({shape}: {get(cfg, 'data.path')})"


def _is_sample(path) -> bool:
    return isinstance(path, str) and os.path.abspath(os.path.expanduser(path)).startswith(str(paths.ASSETS_DIR))


def _sample_valid_path(cfg: DictConfig, typed: set, dirs: List[str]) -> Optional[str]:
    valid_path = get(cfg, "data.valid_path")
    if "data.valid_path" in typed or not _is_sample(valid_path):
        return None
    if not _is_sample(get(cfg, "data.path")):
        why = f"it is the built-in sample's, and the training data are yours ({get(cfg, 'data.path')})"
    elif typed & {"data.valid_fraction", "data.valid_split"}:
        why = f"you chose {' and '.join(sorted(typed & {'data.valid_fraction', 'data.valid_split'}))} instead"
    else:
        return None
    _set(cfg, "data.valid_path", None)
    return f"data.valid_path={valid_path} not used: {why} (set data.valid_path for a validation file of your own)"


def text_column_for(present: List[str], trainer: str, column: str) -> Optional[str]:
    """The column to read for ``data.text_column`` = ``column`` in data whose columns are ``present``: the column
    itself, or (for the default ``text``) the trainer's conventional one; None when neither is there."""
    if column in present:
        return column
    if column == DEFAULT_TEXT_COLUMN and trainer in registry.SPECS:
        for alt in registry.spec(trainer).text_column_fallbacks:
            if alt in present:
                return alt
    return None


def _text_column(cfg: DictConfig, typed: set, dirs: List[str]) -> Optional[str]:
    column = get(cfg, "data.text_column")
    if column != DEFAULT_TEXT_COLUMN or "data.text_column" in typed:
        return None
    present = data_peek.columns(get(cfg, "data.path"), get(cfg, "data.train_split") or "train")
    trainer = get(cfg, "trainer.name")
    chosen = text_column_for(present or [], trainer, column) if present is not None else None
    if chosen is None or chosen == column:
        return None
    _set(cfg, "data.text_column", chosen)
    return (f"data.text_column={DEFAULT_TEXT_COLUMN} is not a column of {get(cfg, 'data.path')}: using {chosen!r}, "
            f"the {trainer} column by convention (set data.text_column to choose)")


def _sweep_objective(cfg: DictConfig, typed: set, dirs: List[str]) -> Optional[str]:
    if not feature_enabled(cfg, "sweep") or get(cfg, "trainer.name") not in registry.SPECS:
        return None
    metric, direction = sweep_objective(cfg)
    changed = []
    if get(cfg, "sweep.metric") is None:
        _set(cfg, "sweep.metric", metric)
        changed.append(f"sweep.metric={metric} (trainer={get(cfg, 'trainer.name')}'s)")
    if get(cfg, "sweep.direction") is None and direction is not None:
        _set(cfg, "sweep.direction", direction)
        changed.append(f"sweep.direction={direction} (for {metric})")
    return "sweep: " + ", ".join(changed) if changed else None


def _holdout(cfg: DictConfig, typed: set, dirs: List[str]) -> Optional[str]:
    """Eval metrics without eval data: hold out a seeded slice of the training rows (the same in every trial)
    rather than refuse: for a sweep on an eval metric (the guide's sweep example optimises eval_loss with one data
    file), and for enhanced evaluation without eval data."""
    if has_eval_data(cfg) or get(cfg, "trainer.name") not in registry.SPECS:
        return None
    if "data.valid_fraction" in typed or get(cfg, "data.valid_fraction") is not None:
        return None  # a data.valid_fraction the user set (0, null typed) is theirs: the rules judge it
    metric = get(cfg, "sweep.metric") or ""
    spec = registry.spec(get(cfg, "trainer.name"))
    if feature_enabled(cfg, "sweep") and metric.startswith("eval") and not metric.startswith("eval/") \
            and not spec.always_evaluates:
        _set(cfg, "data.valid_fraction", SWEEP_HOLDOUT)
        return (f"sweep.metric={metric} needs eval data and none was given: holding out {SWEEP_HOLDOUT:.0%} of the "
                f"training rows in every trial (data.valid_fraction; set data.valid_path for your own)")
    if feature_enabled(cfg, "eval") and not get(cfg, "eval.dataset_path"):
        fraction = get(cfg, "eval.holdout_fraction")
        _set(cfg, "data.valid_fraction", fraction)
        return f"enhanced evaluation: no eval data given, holding out {fraction} of the training rows"
    return None


def _job_dir(cfg: DictConfig, job: JobPlace) -> None:
    base = get(cfg, "output_dir")
    if base and job.number is not None:  # one output dir per trial, numbered like Hydra's
        path = os.path.join(str(base), str(job.number))
    else:
        path = base or job.run_dir
    _set(cfg, "output_dir", os.path.abspath(os.path.expanduser(str(path))))
