"""Resolve a composed config, once, in one place: the only code that changes a config after Hydra composed it.

``resolve`` returns a copy in which, in this order:

0. **relative paths, in a job that Hydra moved**: with ``hydra.job.chdir=true`` a job runs in its run dir; there,
   a relative local path (``data.path=train.jsonl``, ``output_dir=out``, a model folder) is made absolute against
   the dir the command was started in (``launch_dir``), so that it means what it meant when the config was checked
   (the same path, so no note). Names that are no local path (hub models and data sets, ``tiny``, named chat
   templates) and interpolations stay as written; a job that runs where it was launched changes nothing;
1. **built-in sample**: with ``data.path`` null, the data node is filled from the trainer's built-in sample
   (``configs/data/<shape>.yaml``): only keys the user neither typed nor changed from their default; so are the
   settings the sample comes with (the registry's ``sample_settings``: grpo's reward function for its prompts);
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
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from autotrain_hydra import paths, registry
from autotrain_hydra.schema import data_peek
from autotrain_hydra.schema.keys import default, feature_enabled, get, override_keys, plain
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
        if job is not None:  # a trial of a multirun, resolved in its job (in its run dir with hydra.job.chdir)
            _absolute_paths(out)
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
    else a ConfigError naming each key, before anything reads the config. A key that fails only because another one
    does (the tiny model's tuning reads ``model.name``) is named in that key's error, not given one of its own."""
    import re

    from omegaconf.errors import InterpolationResolutionError, MissingMandatoryValue

    from autotrain_hydra.schema.errors import Report

    failed: Dict[str, List[Tuple[str, Any]]] = {}  # the first line of the failure -> [(key, value as written)]

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
                failed.setdefault(str(e).splitlines()[0], []).append((key, raw))
                continue
            if OmegaConf.is_config(value):
                walk(value, f"{key}.")

    walk(cfg, "")
    report = Report()
    for cause, keys in failed.items():
        names = re.findall(r"'([^']+)'", cause)  # the variable or key that is missing, as the failure quotes it
        origins = [(k, raw) for k, raw in keys if any(n in str(raw) for n in names)] or keys
        others = [k for k, _ in keys if k not in {o for o, _ in origins}]
        for i, (key, raw) in enumerate(origins):
            also = f" ({' and '.join(others)} {'depends' if len(others) == 1 else 'depend'} on it)" \
                if others and i == 0 else ""
            report.error(f"{key}={raw} cannot be resolved: {cause}{also}", key, raw,
                         "fix the ${...} reference (a config key that exists, ${oc.env:NAME} with NAME set, or "
                         "${oc.env:NAME,default})")
    report.raise_if_errors()


def place(cfg: DictConfig, job: JobPlace) -> DictConfig:
    """A resolved config placed in its job's dir (step 6 alone): the job of a single run, whose config was resolved
    and validated before Hydra made its run dir."""
    out = copy.deepcopy(cfg)
    with read_write(out), open_dict(out):
        _absolute_paths(out)
        _job_dir(out, job)
    OmegaConf.set_readonly(out, True)
    return out


def _set(cfg: DictConfig, key: str, value) -> None:
    OmegaConf.update(cfg, key, value, merge=False)


# Keys that hold a local path, or a name that may be one (a model, a data set, a chat template file). Paths that
# always are: made absolute whether they exist or not (output_dir is made by the run).
PATH_KEYS = ("model.name", "trainer.model_ref", "distillation.teacher_model", "trainer.rl.reward_model_path",
             "trainer.grpo.reward_model_path",
             "data.path", "data.valid_path", "eval.dataset_path", "eval.bertscore_model", "trainer.chat_template",
             "launcher.accelerate_config", "training.resume_from_checkpoint", "output_dir")
ALWAYS_PATHS = ("output_dir", "training.resume_from_checkpoint", "launcher.accelerate_config")


def launch_dir() -> str:
    """The dir the command was started in: the working dir, or Hydra's ``runtime.cwd`` inside a job that Hydra moved
    into its run dir (``hydra.job.chdir=true``: a trial of a multirun resolves its config there)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            runtime, chdir = HydraConfig.get().runtime, HydraConfig.get().job.chdir
            if chdir and runtime.cwd and runtime.output_dir \
                    and os.path.abspath(os.getcwd()) == os.path.abspath(runtime.output_dir):
                return str(runtime.cwd)
    except Exception:  # no Hydra job, or a partial hydra node: the working dir
        pass
    return os.getcwd()


def _absolute_paths(cfg: DictConfig) -> None:
    """In a job Hydra moved out of the launch dir: its relative paths, made absolute against the launch dir."""
    from autotrain_hydra.reward_funcs import is_file_item
    from autotrain_hydra.schema.params import CHAT_TEMPLATES
    from autotrain_hydra.schema.rules.paths import looks_like_path

    base = launch_dir()
    if os.path.abspath(base) == os.path.abspath(os.getcwd()):
        return  # the job runs where the command was started: its paths mean what they say
    for key in PATH_KEYS:
        value = get(cfg, key)
        if not isinstance(value, str) or not value or value in ("tiny", *CHAT_TEMPLATES) or os.path.isabs(value) \
                or value.startswith("~") or "{%" in value or _is_interpolation(cfg, key):
            continue
        absolute = os.path.normpath(os.path.join(base, value))
        if key in ALWAYS_PATHS or looks_like_path(value) or os.path.exists(absolute):
            _set(cfg, key, absolute)
    funcs = get(cfg, "trainer.grpo.reward_funcs")  # ./my_rewards.py:function items
    if OmegaConf.is_list(funcs) and not _is_interpolation(cfg, "trainer.grpo.reward_funcs"):
        items = OmegaConf.to_container(funcs)
        moved = [os.path.normpath(os.path.join(base, i)) if is_file_item(i) and not os.path.isabs(
            os.path.expanduser(i)) else i for i in items]
        if moved != items:
            _set(cfg, "trainer.grpo.reward_funcs", moved)


def _is_interpolation(cfg: DictConfig, key: str) -> bool:
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else cfg
    return node is not None and OmegaConf.is_interpolation(node, leaf)


def _data_sample(cfg: DictConfig, typed: set, dirs: List[str]) -> Optional[str]:
    trainer = get(cfg, "trainer.name")
    if trainer not in registry.SPECS:
        return None  # refused by the rules
    shape = registry.spec(trainer).data_shape
    path = get(cfg, "data.path")
    if path is not None:  # data=<the trainer's sample> chosen by name: its settings too
        own = _is_sample(path) and os.path.basename(str(path)) == f"{shape}.jsonl"
        return _sample_settings(cfg, typed) if own else None
    found = [os.path.join(d, "data", f"{shape}.yaml") for d in dirs]
    preset = OmegaConf.load(next(f for f in found if os.path.isfile(f)))
    for k, v in preset.items():
        key = f"data.{k}"
        if k == "defaults" or key in typed or get(cfg, key) != default(key):
            continue  # a value the user gave is never replaced
        _set(cfg, key, v)
    note = f"data.path not set: trainer={trainer} uses the built-in sample data ({shape}: {get(cfg, 'data.path')})"
    settings = _sample_settings(cfg, typed)
    return note + (f"; {settings}" if settings else "")


def _sample_settings(cfg: DictConfig, typed: set) -> Optional[str]:
    """The settings the trainer's built-in sample comes with (grpo: a reward for its prompts), where the user left
    them at their defaults (and set none of the keys that replace them)."""
    spec, changed = registry.spec(get(cfg, "trainer.name")), []
    for key, value in spec.sample_settings.items():
        unless = [k for k in spec.sample_settings_unless.get(key, ()) if get(cfg, k) not in (None, default(k))]
        if key not in typed and get(cfg, key) == default(key) and not unless:
            _set(cfg, key, list(value) if isinstance(value, tuple) else value)
            value = plain(get(cfg, key))
            shown = "[" + ", ".join(map(str, value)) + "]" if isinstance(value, list) else value
            changed.append(f"{key}={shown}, the sample's")
    return "; ".join(changed) or None


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
