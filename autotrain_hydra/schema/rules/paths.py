"""Rules on the filesystem (cheap probes, no model loaded): local paths that do not exist, folders that hold no
saved model, models whose weights are pickles, a reward model that is no scorer, an output dir with earlier results
(or that is a file, or cannot be written), a checkpoint to resume."""

from __future__ import annotations

import json
import os
from typing import List, Optional

from autotrain_hydra import paths, rundir
from autotrain_hydra.schema.errors import Report
from autotrain_hydra.schema.rules.context import Context

PATH_KEYS = (("model.name", "model"), ("trainer.model_ref", "reference model"),
             ("distillation.teacher_model", "teacher model"), ("data.path", "data"),
             ("data.valid_path", "validation data"), ("eval.dataset_path", "evaluation data"))
MODEL_KEYS = ("model.name", "trainer.model_ref", "distillation.teacher_model")
# Files a run directory holds before the run writes anything (Hydra's own; the lock a run leaves, rundir.LOCK).
RUN_DIR_SCAFFOLD = {".hydra", "train.log", "multirun.yaml", rundir.LOCK}


def looks_like_path(value: str) -> bool:
    return value.startswith(("./", "../", "/", "~", ".\\")) or value in (".", "..") or os.path.splitext(value)[1] in (
        ".jsonl", ".json", ".csv", ".parquet", ".txt")


def paths_exist(ctx: Context) -> None:
    for key, what in PATH_KEYS:
        value = ctx.get(key)
        if isinstance(value, str) and value != "tiny" and looks_like_path(value) \
                and not os.path.exists(os.path.expanduser(value)):
            ctx.report.error(f"{what} not found: {value} does not exist", key, value,
                             f"check the path, or give a hub name for {key}")
        elif key in MODEL_KEYS and isinstance(value, str) and os.path.isfile(os.path.expanduser(value)):
            ctx.report.error(f"{what} not found: {value} is a file, not a saved model", key, value,
                             f"point {key} at the folder save_pretrained wrote (config.json inside), or a hub name")
        elif key in MODEL_KEYS and isinstance(value, str) and os.path.isdir(os.path.expanduser(value)) and not any(
                os.path.isfile(os.path.join(os.path.expanduser(value), f)) for f in ("config.json",
                                                                                       "adapter_config.json")):
            ctx.report.error(f"{what} not found: {value} is a folder with no config.json: not a saved model", key,
                             value, f"point {key} at the folder save_pretrained wrote (config.json inside), or a hub "
                             "name")
    safetensors_only(ctx)  # the models that are there: safetensors weights, or the user's opt-in


# Weights are loaded from safetensors only: a pickle (pytorch_model.bin, *.pt) runs code when it is unpickled.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
# What a Trainer checkpoint holds beside the weights: pickles too, but no model loads them.
NOT_WEIGHTS = ("training_args.bin", "optimizer.pt", "scheduler.pt", "scaler.pt", "rng_state")
ALLOW_PICKLE = "model.allow_pickle_weights"


def pickle_weights(path: str) -> List[str]:
    """The pickle weight files of a saved model (or LoRA adapter) folder that holds no ``*.safetensors``, and of the
    local base model its adapter_config.json names; [] when its weights are safetensors (or it is no local folder).
    File names only: nothing is opened but adapter_config.json."""
    if not os.path.isdir(path):
        return []
    names = os.listdir(path)
    found = [] if any(n.endswith(".safetensors") for n in names) else sorted(
        n for n in names if (n.endswith(PICKLE_SUFFIXES) or n.endswith(".bin.index.json"))
        and not n.startswith(NOT_WEIGHTS))
    adapter = os.path.join(path, "adapter_config.json")
    if os.path.isfile(adapter) and not os.path.isfile(os.path.join(path, "config.json")):
        try:
            with open(adapter, encoding="utf-8") as f:
                base = json.load(f).get("base_model_name_or_path")
        except (OSError, ValueError):
            base = None
        if isinstance(base, str) and os.path.isdir(os.path.expanduser(base)) \
                and os.path.abspath(os.path.expanduser(base)) != os.path.abspath(path):
            found += [os.path.join(base, n) for n in pickle_weights(os.path.expanduser(base))]
    return found


def pickle_weights_message(key: str, path: str, files: List[str]) -> "tuple[str, str]":
    """The error (message, fix) for a model folder whose weights are pickles."""
    shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
    return (f"{key}={path} holds pickle weights only ({shown}), no *.safetensors: a pickle can run code when it is "
            "loaded, and this run loads safetensors weights only",
            "convert it where you trust it (AutoModel.from_pretrained(path).save_pretrained(path) writes "
            f"model.safetensors), or set {ALLOW_PICKLE}=true to load pickle weights you trust (torch's weights_only "
            "loading stays on)")


def _model_keys(ctx: Context) -> List[str]:
    """The keys naming a model this run loads: the model, and the reference, teacher, reward and BERTScore models
    where this trainer and these features load them."""
    from autotrain_hydra import registry

    reads = _reads(ctx)
    keys = ["model.name"]
    keys += [k for k in ("trainer.model_ref", *REWARD_MODEL_KEYS) if k in reads]
    if ctx.enabled("distillation") and ctx.trainer in registry.with_feature("distillation", "supported"):
        keys.append("distillation.teacher_model")
    if ctx.enabled("eval"):
        keys.append("eval.bertscore_model")
    return keys


def safetensors_only(ctx: Context) -> None:
    """A local model folder whose weights are pickles only is refused before anything loads, unless
    model.allow_pickle_weights=true (the loaders ask transformers for safetensors too: models.weights_kwargs)."""
    if ctx.get(ALLOW_PICKLE) is True:
        return
    for key in _model_keys(ctx):
        value = ctx.get(key)
        if not isinstance(value, str) or value == "tiny":
            continue
        files = pickle_weights(os.path.expanduser(value))
        if files:
            message, fix = pickle_weights_message(key, value, files)
            ctx.report.error(message, key, value, fix)


def reward_model_problem(path: str) -> Optional[str]:
    """Why ``path`` is not a saved sequence-classification model (read from its config.json), or None."""
    if not os.path.isdir(path):
        return "is not a directory"
    config = os.path.join(path, "config.json")
    if not os.path.isfile(config):
        hint = " (it holds a LoRA adapter only)" if os.path.isfile(os.path.join(path, "adapter_config.json")) else ""
        return f"has no config.json{hint}: it is not a saved model"
    try:
        with open(config, encoding="utf-8") as f:
            architectures = json.load(f).get("architectures") or []
    except (OSError, ValueError) as e:
        return f"has an unreadable config.json ({e})"
    if not any(a.endswith("ForSequenceClassification") for a in architectures):
        found = ", ".join(architectures) or "none"
        return (f"is not a sequence-classification model (config.json architectures: {found}"
                f"); a reward model is what trainer=reward saves")
    return None


REWARD_MODEL_KEYS = ("trainer.rl.reward_model_path", "trainer.grpo.reward_model_path")


def reward_model(ctx: Context) -> None:
    for key in REWARD_MODEL_KEYS:
        path = ctx.get(key)
        if key in _reads(ctx) and isinstance(path, str):
            problem = reward_model_problem(os.path.expanduser(path))
            if problem:
                ctx.report.error(f"Reward model not found: {path} {problem}", key, path,
                                 "train one first (trainer=reward output_dir=./reward_model) and point "
                                 f"{key} at its output_dir")


def _reads(ctx: Context) -> frozenset:
    from autotrain_hydra import registry

    return registry.spec(ctx.trainer).reads


def resuming(cfg) -> bool:
    from autotrain_hydra.schema.keys import get

    return get(cfg, "training.resume_from_checkpoint") not in (None, False)


def resumes_here(cfg) -> bool:
    """The run continues the output dir's own run: ``resume_from_checkpoint=true``, or a checkpoint under
    ``<output_dir>/checkpoints`` (a checkpoint of another dir starts a new run, which needs a dir of its own)."""
    from autotrain_hydra.schema.keys import get

    value, out = get(cfg, "training.resume_from_checkpoint"), get(cfg, "output_dir")
    if value is True:
        return True
    if not isinstance(value, str) or not isinstance(out, str):
        return False
    inside = os.path.join(os.path.realpath(os.path.expanduser(out)), "checkpoints") + os.sep
    return os.path.realpath(os.path.expanduser(value)).startswith(inside)


def output_dir_in_use(path: str) -> bool:
    path = os.path.expanduser(path)
    return os.path.isdir(path) and bool(set(os.listdir(path)) - RUN_DIR_SCAFFOLD)


def _nearest_existing(path: str) -> Optional[str]:
    """The path itself when it exists, else the nearest existing path above it (None when nothing above exists)."""
    while path and not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent
    return path or None


def _file_on_the_way(path: str) -> Optional[str]:
    """The path itself, or the nearest existing path above it, when that is a file (a dir cannot be made there)."""
    found = _nearest_existing(path)
    return found if found and not os.path.isdir(found) else None


def _nearest_dir(path: str) -> Optional[str]:
    """The path itself when it is a folder, else the nearest existing folder above it (where it would be made)."""
    found = _nearest_existing(path)
    while found and not os.path.isdir(found):  # a file on the way: its folder
        found = os.path.dirname(found) or None
    return found


def not_writable(path: str) -> Optional[str]:
    """Why a run cannot make or write ``path`` (a folder, made if missing), or None. ``access(2)`` asks the kernel
    without writing anything (validation writes nothing): it refuses a read-only filesystem to every user, root
    included, and a folder without write permission to the users it does not let write there."""
    folder = _nearest_dir(path)
    if folder is None or os.access(folder, os.W_OK | os.X_OK):
        return None
    try:
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        read_only = False
    where = "" if folder == path else f"the folder it would be made in, {folder}, "
    return f"{where}is on a read-only filesystem" if read_only else f"{where}is not writable (permission denied)"


def check_output_dir(report: Report, path: str, overwrite: bool, key: str = "output_dir") -> None:
    """A run never writes into a non-empty output dir unless told to overwrite, or it resumes from it; a file where
    the dir belongs, or a dir it cannot write, is refused before anything is loaded."""
    absolute = os.path.abspath(os.path.expanduser(path))
    blocking = _file_on_the_way(absolute)
    if blocking is not None:
        itself = blocking == absolute
        where = "is a file" if itself else f"is under the file {blocking}"
        report.error(f"{key} {path} {where}, not a directory", key, path, f"choose a directory for {key}")
        return
    why = not_writable(absolute)
    if why is not None:
        report.error(f"{key} {path} cannot be written: {why}", key, path,
                     f"set {key} to a folder on a filesystem this user can write to"
                     + (" (Hydra writes its .hydra/ and train.log there)" if key == "hydra.run.dir" else ""))
    elif os.path.isdir(absolute) and (holder := rundir.holder(absolute)):  # a run is writing there now
        report.error(f"{key} {path} is in use by another run ({holder}): two runs never write into one dir", key,
                     path, f"wait for that run to end, or choose another {key}")
    elif not overwrite and output_dir_in_use(path):
        report.error(f"{key} {path} is not empty: a run never overwrites earlier results", key, path,
                     f"choose a new {key}, or set overwrite_output_dir=true to replace what is there")


def output_dir(ctx: Context) -> None:
    out = ctx.get("output_dir")
    if not isinstance(out, str):
        return
    # In a sweep, output_dir holds the trials' dirs (<output_dir>/<trial number>): each is checked when its trial
    # starts, and the same command run again continues the study into new numbers.
    in_a_sweep = ctx.enabled("sweep")
    check_output_dir(ctx.report, out, in_a_sweep or bool(ctx.get("overwrite_output_dir")) or resumes_here(ctx.cfg))


def resume(ctx: Context) -> None:
    value = ctx.get("training.resume_from_checkpoint")
    if value is True and not isinstance(ctx.get("output_dir"), str):
        ctx.report.error("training.resume_from_checkpoint=true needs the output_dir of the run to continue",
                         "output_dir", ctx.get("output_dir"),
                         "set output_dir=<the run's output dir> (a new Hydra run dir has no checkpoint)")
    if isinstance(value, str) and not os.path.isdir(os.path.expanduser(value)):
        ctx.report.error(f"checkpoint not found: {value} is not a directory", "training.resume_from_checkpoint", value,
                         "give a checkpoint-N folder of <output_dir>/checkpoints, or true for the last complete one")
        return
    from autotrain_hydra.schema.rules.resume import checkpoint_of

    checkpoint = checkpoint_of(ctx)  # with true: the newest of this run's (run.json) complete checkpoints
    state = paths.checkpoint_state(checkpoint) if checkpoint else None
    if not state:
        return
    wrote = state["stamp"].get("trainer")
    if wrote and wrote != ctx.trainer:
        ctx.report.error(f"the checkpoint {checkpoint} was written by trainer={wrote}: resuming it with "
                         f"trainer={ctx.trainer} would train one model with two recipes", "trainer.name", ctx.trainer,
                         f"resume with trainer={wrote}, or start trainer={ctx.trainer} in a new output_dir")
    step, max_steps = state.get("global_step"), ctx.get("training.max_steps")
    # a run stopped after its last checkpoint, before its results were written, is finished from it
    committed = rundir.committed_step(os.path.expanduser(ctx.get("output_dir"))) if value is True else None
    unfinished = value is True and step == max_steps and (committed is None or committed < step)
    if isinstance(step, int) and isinstance(max_steps, int) and 0 < max_steps <= step and not unfinished:
        ctx.report.error(f"training.max_steps={max_steps}, and the checkpoint {checkpoint} is at step {step}: "
                         "resuming would train nothing", "training.max_steps", max_steps,
                         f"set training.max_steps above {step} to train further, or start in a new output_dir")
