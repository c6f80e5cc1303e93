"""One job: a resolved, validated config → load data and models → train → evaluate → save; returns the objective.

The entry point (``autotrain_hydra.app``) resolves and validates a config once, before anything is written, and
hands each job to ``Task``; ``run(cfg)`` does the same steps for tests and notebooks, without Hydra's app.
``execute`` is the job itself: the trainer is the registry's (``registry.spec(name).module``).
"""

from __future__ import annotations

import importlib
import json
import logging
import math
import os
import shlex
import sys
import time
from typing import Any, Dict, Iterable, List, Optional, Tuple

from omegaconf import DictConfig, OmegaConf

from autotrain_hydra import console, paths, registry, rundir
from autotrain_hydra.errors import InputError, NothingTrained, RunError, TrialPruned
from autotrain_hydra.schema.errors import Report
from autotrain_hydra.schema.params import uses_lora
from autotrain_hydra.schema.recipe import recipe
from autotrain_hydra.schema.resolve import JobPlace, Resolved, place, resolve
from autotrain_hydra.schema.rules import validate
from autotrain_hydra.schema.rules.paths import RUN_DIR_SCAFFOLD, check_output_dir, output_dir_in_use, resumes_here

log = logging.getLogger("autotrain_hydra")


def prepare(cfg: DictConfig, overrides: Iterable[str] = ()) -> Tuple[Resolved, Report]:
    """Resolve the config (once) and check every rule; raises ConfigError with every error."""
    resolved = resolve(cfg, overrides)
    report = validate(resolved.cfg, overrides)
    report.raise_if_errors()
    return resolved, report


def run(cfg: DictConfig, overrides: Iterable[str] = (), run_dir: Optional[str] = None) -> Optional[float]:
    """Run one training job, as the command line does (tests, notebooks); returns the objective: ``sweep.metric``
    in a sweep, else the eval loss when there is eval data, else the final train loss."""
    overrides = list(overrides)
    resolved, report = prepare(cfg, overrides)
    if resolved.cfg.validate_only:
        print(valid_message(resolved.cfg, report, resolved.notes))
        return None
    if resolved.cfg.sweep.enabled and run_dir is None and resolved.cfg.output_dir is None:
        single = Report()
        single.error("features=[sweep] runs through the command line (python -m autotrain_hydra features=[sweep] "
                     "...), which makes it a Hydra multirun", "sweep.enabled")
        single.raise_if_errors()
    job = JobPlace(os.path.abspath(os.path.expanduser(resolved.cfg.output_dir or run_dir or "outputs/run")))
    succeeded = False
    try:
        objective = execute(place(resolved.cfg, job), report, resolved.notes)
        succeeded = True
        return objective
    finally:
        end_run(resolved.cfg, succeeded)


def valid_message(cfg: DictConfig, report: Report, notes: Iterable[str] = ()) -> str:
    """What validate_only=true prints: the warnings, what resolving the config did (``notes``), and the verdict."""
    lines = [i.render() for i in report.warnings] + [f"note: {n}" for n in notes]
    lines.append(f"configuration is valid: trainer={cfg.trainer.name}, {len(report.warnings)} warning(s); nothing "
                 "was loaded or written")
    return "\n".join(lines)


def execute(cfg: DictConfig, report: Report, notes: List[str] = (), say_warnings: bool = True) -> Optional[float]:
    """Train one job of a resolved, validated config whose ``output_dir`` is the job's dir."""
    if say_warnings:
        for issue in report.warnings:
            log.warning(issue.render())
    for note in notes:
        log.info(note)
    output_dir = cfg.output_dir
    in_use = Report()  # a dir given by the user, or one another run took meanwhile
    check_output_dir(in_use, output_dir, cfg.overwrite_output_dir or resumes_here(cfg))
    in_use.raise_if_errors(before_anything=False)  # inside the job: Hydra has made its run dir

    from autotrain_hydra import data as data_mod
    from autotrain_hydra.trainers.common import hardware_check

    data_mod.check_inputs(cfg)  # every data file the run reads, scanned before any model loads (DataError, exit 2)
    hardware_check(cfg)  # before any model is loaded or the output dir made
    plan = None
    if cfg.launcher.name != "local":
        from autotrain_hydra import launch

        plan = launch.plan(cfg)  # this machine can run it, and the rendezvous is known
    if plan is not None and plan.machine_rank != 0:  # machine 0 owns the dir and writes the results
        _train(cfg, plan)
        log.info("machine %d of %d: training done; machine 0 writes the results", plan.machine_rank,
                 plan.num_machines)
        return None
    made_here = not os.path.isdir(output_dir) or not output_dir_in_use(output_dir)
    with rundir.owned(output_dir):  # one owner per run dir, for the whole run
        if rundir.recover(output_dir, log.info) and resumes_here(cfg) and rundir.complete(output_dir):
            return _already_complete(output_dir)
        aside = None
        if cfg.overwrite_output_dir and not resumes_here(cfg):
            aside = rundir.set_aside(output_dir, keep=_this_runs_scaffold(output_dir))
            if aside:
                log.info("overwrite_output_dir=true: the earlier run's files in %s were moved to %s; they are "
                         "removed when this run's results are written", output_dir, aside)
        manifest = rundir.start(output_dir, cfg.trainer.name, str(cfg.model.name), str(cfg.data.path),
                                recipe(cfg), resumes_here(cfg))
        try:
            objective, failure = _train_and_commit(cfg, report, notes, plan, manifest)
        except InputError as e:
            if aside and rundir.produced_nothing(output_dir):
                rundir.restore(output_dir, aside)  # refused while loading: the earlier run's files back in place
            elif made_here and not resumes_here(cfg) and rundir.produced_nothing(output_dir):
                rundir.abandon(output_dir)  # refused while loading, before a step: the dir is as before the run
            else:
                rundir.failed(output_dir, str(e))
            raise
        except BaseException as e:
            rundir.failed(output_dir, str(e) or type(e).__name__)
            raise
    if failure is not None:  # the results are written, and say so: the run still fails
        raise failure
    return objective


def _already_complete(output_dir: str) -> Optional[float]:
    """A resume of a run stopped while its results were being moved into place: finishing the move completed it."""
    with open(os.path.join(output_dir, "metrics.json"), encoding="utf-8") as f:
        objective = json.load(f).get("objective")
    log.info("%s: the run is complete (its results were being moved into place when it was stopped): nothing "
             "left to train", output_dir)
    return objective


def _this_runs_scaffold(output_dir: str):
    """Hydra's files of this run (``.hydra/``, ``train.log``) when the output dir is the job's dir: kept by an
    overwrite (in another dir they are the earlier run's)."""
    from autotrain_hydra.compat.hydra import job_dir

    mine = job_dir() is not None and os.path.abspath(job_dir()) == os.path.abspath(output_dir)
    return lambda name: mine and name in RUN_DIR_SCAFFOLD


def _train(cfg: DictConfig, plan: Any) -> Tuple[Any, Dict[str, Any]]:
    from autotrain_hydra.trainers.common import Job

    job = Job(cfg=cfg, output_dir=cfg.output_dir)
    if plan is None:
        return job, train_here(job)
    from autotrain_hydra import launch

    return job, launch.train(job, plan)


def _train_and_commit(cfg: DictConfig, report: Report, notes: List[str], plan: Any,
                      manifest: rundir.Manifest) -> Tuple[float, Optional[RunError]]:
    """Train, evaluate, and write every result into the staging folder; then commit them all together. Returns the
    objective, and the error the run ends with when its results are written but it failed (a requested metric not
    computed, no weight changed)."""
    started = time.time()
    output_dir = cfg.output_dir
    console.quiet_libraries()  # before the first model loads (an evaluation before training)
    before = _evaluate_before(cfg) if cfg.eval.enabled else None
    job, trained = _train(cfg, plan)
    staged = rundir.staging(output_dir)  # the trainer saved the model there
    metrics = {**job.metrics, **trained}
    lacking: List[str] = []
    if cfg.eval.enabled and metrics.get("pruned_at_step") is not None:  # the sweep has done with it: no time spent
        job.notes.append("features=[eval]: not run after training: the sweep's pruner stopped this trial")
        log.info(job.notes[-1])
        metrics.update({k.replace("eval/", "eval_before/", 1): v for k, v in (before or {}).items()})
    elif cfg.eval.enabled:
        after, lacking = _evaluate_after(cfg, staged, metrics, before)
        metrics.update(after)

    name, objective = objective_of(cfg, metrics)
    if objective is None:
        raise RunError(f"the run ended without a finite {name} ({metrics.get(name)})")
    metrics["objective"] = objective
    metrics["objective_name"] = name
    metrics["objective_direction"] = (cfg.sweep.direction if cfg.sweep.enabled else None) \
        or registry.metric_direction(name)  # a reward is maximised, a loss minimised
    if plan is None:
        wandb_summary(cfg, metrics)
    elif "wandb" in list(cfg.report_to) and cfg.eval.enabled:
        log.info("W&B: rank 0's run has the training metrics and the objective; the evaluation metrics of a "
                 "launched run are in metrics.json only (the W&B run ended with rank 0)")
    metrics["wall_time_s"] = round(time.time() - started, 2)
    if lacking:
        metrics["missing_metrics"] = lacking
    metrics["run_id"] = manifest.run_id
    failure: Optional[RunError] = None
    if lacking:
        failure = RunError(
            f"enhanced evaluation did not compute {', '.join(lacking)} (eval.metrics) for trainer={cfg.trainer.name}: "
            "the run's other results are written (metrics.json: missing_metrics).\n    fix: give eval data the "
            "metric can be computed on (eval.dataset_path or data.valid_path)")
    elif metrics.get("weights_changed") is False:
        failure = NothingTrained(
            f"the run changed no weight of the model in {metrics.get('global_step')} optimizer step(s): the model "
            f"saved in {output_dir} is the one it started from (metrics.json: weights_changed=false).\n"
            "    fix: a learning rate too small for the weights' precision moves none of them (raise training.lr, or "
            "train in fp32); with peft=lora check that peft.target_modules names modules of this model")
    from autotrain_hydra.trainers.common import disk_full_said

    with disk_full_said(job):
        write_outputs(job, metrics, report, notes)
        manifest.status, manifest.error = ("failed", str(failure)) if failure else ("complete", None)
        manifest.finished, manifest.step = rundir.now(), metrics.get("global_step")
        manifest.pruned_at_step = metrics.get("pruned_at_step")
        manifest.checkpoints = _checkpoints_of(output_dir, manifest.run_id)
        rundir.write_manifest(staged, manifest)
        rundir.commit(output_dir)
    if failure is not None:
        return objective, failure
    for line in console.summary(cfg.trainer.name, str(cfg.model.name), output_dir, metrics, _try_it(output_dir)):
        log.info(line)
    if metrics.get("pruned_at_step") is not None:  # results written; the sweeper records the trial PRUNED
        step, value = metrics["pruned_at_step"], metrics["pruned_value"]
        return float(objective), TrialPruned(f"pruned at step {step} ({cfg.sweep.metric} {value:.5g}); its results "
                                             f"to that step are in {output_dir}", step, value)
    return float(objective), None


def _try_it(output_dir: str) -> str:
    return f"python -m autotrain_hydra.generate {shlex.quote(output_dir)} --prompt \"Hello\""


def _checkpoints_of(output_dir: str, run_id: str) -> List[str]:
    """This run's complete checkpoints (by the stamp each carries), by step."""
    folder = os.path.join(output_dir, "checkpoints")
    found = []
    for name in os.listdir(folder) if os.path.isdir(folder) else []:
        path = os.path.join(folder, name)
        if name.startswith("checkpoint-") and name[len("checkpoint-"):].isdigit() and paths.checkpoint_complete(path):
            if (paths.checkpoint_state(path) or {}).get("stamp", {}).get("run_id") == run_id:
                found.append((int(name[len("checkpoint-"):]), f"checkpoints/{name}"))
    return [name for _, name in sorted(found)]


def objective_of(cfg: DictConfig, metrics: Dict[str, Any]) -> Tuple[str, Optional[float]]:
    """(name, value) of what the run returns: ``sweep.metric`` in a sweep, else a policy's mean reward after
    training (ppo, grpo), else the eval loss when there is eval data, else the final train loss; the value is None
    unless it is a finite number."""
    spec = registry.spec(cfg.trainer.name)
    if cfg.sweep.enabled:
        name = cfg.sweep.metric
    elif spec.evaluation == "policy":  # a policy's loss says little: its reward is what it is trained for
        name = spec.sweep_metric
    else:
        name = "eval_loss" if "eval_loss" in metrics else "train_loss"
    value = metrics.get(name)
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return name, None
    return name, value


def wandb_summary(cfg: DictConfig, metrics: Dict[str, Any]) -> None:
    """With report_to=[wandb]: every number of the run in its W&B summary (a W&B sweep reads its metric there).
    The run is this process's: the Trainer's, in a one-process run or in rank 0 of a launched one."""
    if "wandb" in list(cfg.report_to):
        import wandb

        if wandb.run is not None:
            wandb.run.summary.update({k: v for k, v in metrics.items() if isinstance(v, (int, float))})


def train_here(job: Any) -> Dict[str, Any]:
    """The training step in this process (launcher=local, or one rank of a launched run): seed, then the trainer
    module's ``train``, which saves the model into the output dir; returns its metrics."""
    from autotrain_hydra import tracking

    console.quiet_libraries()  # before transformers imports bitsandbytes; datasets' bars: on a terminal only
    from transformers import set_seed

    set_seed(job.cfg.training.seed)  # before any model is built: new heads (reward score, LoRA) start the same
    with tracking.writing_into(job.cfg, job.output_dir):
        return importlib.import_module(registry.spec(job.cfg.trainer.name).module).train(job)


def _evaluate_before(cfg: DictConfig) -> Optional[Dict[str, float]]:
    from autotrain_hydra.features import evaluation

    if not cfg.eval.before_training or registry.spec(cfg.trainer.name).evaluation != "generator":
        return None
    return evaluation.evaluate_generator(None, cfg)  # the base model, as model.* names it


def _evaluate_after(cfg: DictConfig, output_dir: str, trained: Dict[str, Any],
                    before: Optional[Dict[str, float]]) -> Tuple[Dict[str, Any], List[str]]:
    """Every requested evaluation metric of the saved model (in ``output_dir``, the staging folder), and the ones
    that could not be computed (the run then fails saying which: a requested metric is never dropped)."""
    from autotrain_hydra.features import evaluation

    kind = registry.spec(cfg.trainer.name).evaluation
    if kind == "generator":
        predictions = os.path.join(output_dir, "predictions.jsonl") if cfg.eval.save_predictions else None
        after = evaluation.evaluate_generator(output_dir, cfg, predictions)
    elif kind == "scorer":
        after = evaluation.evaluate_scorer(output_dir, cfg)
    else:
        after = evaluation.from_trainer_metrics(cfg, trained)
    lacking = evaluation.missing(cfg, after)
    if cfg.eval.benchmark and not lacking:  # a string or a list: benchmark.entries reads both
        from autotrain_hydra.features.benchmark import run_benchmarks
        from autotrain_hydra.models import resolve_model_name

        after.update(run_benchmarks(output_dir, cfg.eval.benchmark, cfg.eval.batch_size, cfg.eval.max_samples,
                                    base_model=resolve_model_name(cfg.model.name)))
    print(evaluation.table(after, before))
    out: Dict[str, Any] = dict(after)
    if before:
        out.update({k.replace("eval/", "eval_before/", 1): v for k, v in before.items()})
    return out, lacking


def write_json_atomic(path: str, data: Any) -> None:
    with paths.written_whole(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, default=str)


def write_outputs(job: Any, metrics: Dict[str, Any], report: Report, config_notes: Iterable[str] = ()) -> None:
    """metrics.json, config.yaml, the loss plot and the model card, into the staging folder (beside the model)."""
    out = rundir.staging(job.output_dir)
    metrics = dict(metrics, warnings=[i.message for i in report.warnings], notes=job.notes,
                   config_notes=list(config_notes))
    from autotrain_hydra import secrets

    raw = OmegaConf.to_container(job.cfg, resolve=False)  # ${oc.env:...} kept as written, secrets redacted
    write_json_atomic(os.path.join(out, "metrics.json"), secrets.written(metrics, raw))
    with open(os.path.join(out, "config.yaml"), "w", encoding="utf-8") as f:
        f.write(OmegaConf.to_yaml(secrets.config_as_written(raw, OmegaConf.to_container(job.cfg, resolve=True))))
    _plot_loss(out, metrics.get("history") or {})
    _model_card(job, metrics)


def _plot_loss(out: str, history: Dict[str, Any]) -> None:
    if not history.get("train"):
        return
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # plots are a nicety
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, points in history.items():
        if points and name != "learning_rate":  # another scale: in metrics.json
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o" if name == "eval" else None,
                    label=f"{name} loss" if name in ("train", "eval", "distill") else name)
    ax.set_xlabel("step (ppo: iteration)")
    ax.set_ylabel("value")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "loss.png"), dpi=80)
    plt.close(fig)


def _model_card(job: Any, metrics: Dict[str, Any]) -> None:
    """The output dir's README.md, a model card the hub and servers read: YAML front matter (base model, library,
    tags), how the model was trained (trainer, base, data, key settings), its final metrics, and the commands that
    try and serve it (a full model: vLLM, TGI; an adapter: vLLM's LoRA serving, or merge it; a scorer: a pipeline)."""
    from autotrain_hydra import secrets

    with open(os.path.join(rundir.staging(job.output_dir), "README.md"), "w", encoding="utf-8") as f:
        f.write(secrets.written(model_card(job.cfg, job.output_dir, metrics),
                                OmegaConf.to_container(job.cfg, resolve=False)))


CARD_METRICS = 8  # the final metrics shown in the card (all of them are in metrics.json)


def model_card(cfg: DictConfig, out: str, metrics: Dict[str, Any]) -> str:
    spec = registry.spec(cfg.trainer.name)
    scorer = spec.output == "sequence_classifier"
    lora = uses_lora(cfg.peft.method)
    merged = lora and cfg.peft.merge_adapter and not scorer
    adapter_only = lora and not scorer  # the output dir holds the adapter (and merged/ with merge_adapter)
    serve_dir = os.path.join(out, "merged") if merged else out
    t = cfg.training
    peft = "none (full fine-tuning)" if not lora else (
        f"{cfg.peft.method}: r={cfg.peft.lora_r}, alpha={cfg.peft.lora_alpha}, dropout={cfg.peft.lora_dropout}"
        + (f", base in {cfg.peft.bits}-bit" if cfg.peft.method == "qlora" else ""))
    length = f"{t.max_steps} steps" if t.max_steps and t.max_steps > 0 else f"{t.epochs} epochs"
    from autotrain_hydra.models import resolve_model_name
    from autotrain_hydra.trainers.common import precision_used

    base = resolve_model_name(str(cfg.model.name))  # the tiny model: its cached dir
    on_hub = not os.path.exists(base) and "/" in base and not base.startswith((".", "/", "~"))
    front = ["---", *([f"base_model: {base}"] if on_hub else []),  # the hub takes a hub name only
             f"library_name: {'peft' if adapter_only else 'transformers'}",
             f"pipeline_tag: {'text-classification' if scorer else 'text-generation'}",
             "tags:", "- autotrain_hydra", f"- {cfg.trainer.name}", *(["- lora"] if lora else []), "---", ""]
    kind = "a sequence-classification scorer (a reward model)" if scorer else "a causal language model"
    lines = [
        f"# {os.path.basename(os.path.normpath(out))}", "",
        f"{kind[0].upper()}{kind[1:]}, fine-tuned with autotrain_hydra (`trainer={cfg.trainer.name}`: {spec.label}).",
        "", "## Training", "",
        "| | |", "|---|---|",
        f"| base model | `{cfg.model.name}` |",
        f"| data | `{cfg.data.path}` |",
        f"| peft | {peft} |",
        f"| learning rate | {t.lr} ({t.scheduler}, warm-up {t.warmup_ratio}) |",
        f"| length | {length}: {metrics.get('global_step')} optimizer steps |",
        f"| batch | {t.batch_size} x {t.gradient_accumulation} accumulation |",
        f"| sequence length | {t.block_size} |",
        f"| mixed precision | {precision_used(t.mixed_precision)} |",
        "", "The whole configuration is in `config.yaml` (run it again: `python -m autotrain_hydra --config-path "
        f"{shlex.quote(out)} --config-name config hydra.job.chdir=false output_dir=<a new dir>`); every metric is in "
        "`metrics.json`.", "",
        "## Final metrics", "", "| metric | value |", "|---|---|",
        f"| **{metrics['objective_name']}** (the run's objective) | {console.number(metrics['objective'])} |",
    ]
    shown = [k for k, v in metrics.items() if k.startswith("eval_") and k != metrics["objective_name"]
             and isinstance(v, (int, float)) and not isinstance(v, bool)
             and not k.endswith(console.HIDDEN_SUFFIXES)][:CARD_METRICS]
    lines += [f"| {k} | {console.number(metrics[k])} |" for k in shown]
    lines += ["", "## Use it", "", "```bash",
              f"{_try_it(out)}   # try it"]
    if scorer:
        lines += ["```", "", "```python", "from transformers import pipeline",
                  f"score = pipeline(\"text-classification\", model=\"{out}\", function_to_apply=\"none\")",
                  "```"]
    elif adapter_only and not merged:
        lines += [f"vllm serve {shlex.quote(base)} --enable-lora --lora-modules adapter={shlex.quote(out)}   # the adapter",
                  "```", "", "This dir holds a LoRA adapter; `peft.merge_adapter=true` also saves the merged model, "
                  "which any server loads as it is."]
    else:
        lines += [f"vllm serve {shlex.quote(serve_dir)}   # an OpenAI-compatible server on port 8000",
                  f"docker run --gpus all -p 8080:80 -v {shlex.quote(serve_dir)}:/model "
                  "ghcr.io/huggingface/text-generation-inference --model-id /model   # TGI", "```", "",
                  f"`{serve_dir}` holds safetensors weights, the tokenizer with its chat template, and "
                  "`generation_config.json` with the tokens that end an answer."]
    return "\n".join(front + lines) + "\n"


def end_run(cfg: DictConfig, succeeded: bool = False) -> None:
    """Runs of one process (sweep trials, notebooks, tests) must not share state: finish the tracker run and free
    memory after each.

    After the first run of a process that succeeded, what is left alive is frozen (``gc.freeze``): the imports and
    the libraries' state. The full collections of later runs (the Trainer's at its start, this one's) then scan only
    their own objects: 0.58 s each on the tiny model before, twice per sweep trial. Once per process, and only after
    a success, so that no failed run's model (held by its traceback) is ever frozen; later runs' objects are
    collected as usual."""
    import gc

    if "wandb" in list(cfg.report_to):
        import wandb

        wandb.finish()
    gc.collect()
    if succeeded and not gc.get_freeze_count():
        gc.freeze()
    if "torch" in sys.modules:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
