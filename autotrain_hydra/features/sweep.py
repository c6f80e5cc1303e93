"""Hyperparameter sweeps: ``features=[sweep]`` → a Hydra multirun with the Optuna sweeper, and a readable result.

``sweep_arguments`` turns the ``sweep`` node into Hydra command-line arguments (``--multirun``, the sweeper, its
sampler, the search space as sweep overrides); ``write_report`` writes the result files when the sweeper
(``sweep_study``) ends. Light module: no torch; optuna is imported only when a sweep ends.
"""

from __future__ import annotations

import json
import logging
import os
import re
import warnings
from typing import Any, Dict, List, Optional, Set

from omegaconf import DictConfig, ListConfig, OmegaConf

from autotrain_hydra.paths import written_whole

log = logging.getLogger(__name__)

SEEDLESS_SAMPLERS = ("grid",)
SWEEPER = "hydra_plugins.autotrain_hydra_sweeper.SharedStudySweeper"  # the Optuna sweeper, safe for several workers

# Default search spaces (used when sweep.params is not given), in the Optuna sweeper's grammar.
DEFAULT_SPACE = {
    "generic": {"training.lr": "tag(log, interval(1e-5, 1e-2))"},
    "sft": {"training.lr": "tag(log, interval(1e-5, 1e-2))"},
    "dpo": {"training.lr": "tag(log, interval(1e-6, 1e-2))", "trainer.dpo_beta": "interval(0.05, 0.5)"},
    "orpo": {"training.lr": "tag(log, interval(1e-6, 1e-2))", "trainer.orpo_alpha": "interval(0.1, 2.0)"},
    "reward": {"training.lr": "tag(log, interval(1e-5, 1e-2))"},
    "ppo": {"training.lr": "tag(log, interval(1e-5, 1e-2))", "trainer.rl.kl_coef": "interval(0.01, 0.5)"},
}
LORA_SPACE = {"peft.lora_r": "choice(8, 16, 32, 64)"}


class SweepSpecError(ValueError):
    pass


# ----------------------------------------------------------------------------------------------- search space
def _number(x: Any) -> str:
    return repr(float(x)) if isinstance(x, float) else str(x)


def _grammar(key: str, spec: Any) -> str:
    """One parameter's search space in the sweeper's grammar, from a grammar string, a list of choices, or a dict
    ``{type: float|int|categorical|loguniform|uniform, low, high, log, step, choices}``."""
    if isinstance(spec, str):
        return spec
    if isinstance(spec, (list, tuple)):
        return "choice(" + ", ".join(json.dumps(c) if isinstance(c, str) else _number(c) for c in spec) + ")"
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return _number(spec)
    if isinstance(spec, dict):
        kind = str(spec.get("type", "float")).lower()
        if kind in ("categorical", "choice"):
            if "choices" not in spec:
                raise SweepSpecError(f"{key}: a categorical parameter needs 'choices'")
            return _grammar(key, list(spec["choices"]))
        if "low" not in spec or "high" not in spec:
            raise SweepSpecError(f"{key}: a {kind} parameter needs 'low' and 'high'")
        body = f"interval({_number(spec['low'])}, {_number(spec['high'])})"
        if kind in ("int", "integer"):
            body = f"int({body})"
        elif kind not in ("float", "uniform", "loguniform", "log_uniform"):
            raise SweepSpecError(f"{key}: unknown parameter type {kind!r} (float, int, categorical, loguniform)")
        if spec.get("log") or kind in ("loguniform", "log_uniform"):
            body = f"tag(log, {body})"
        return body
    raise SweepSpecError(f"{key}: cannot read {spec!r} as a search space")


def resolve_key(key: str) -> str:
    """A config key, or the guide's name of one (``lr`` → ``training.lr``, ``lora_r`` → ``peft.lora_r``)."""
    from autotrain_hydra.schema.rules import PARAMS, schema_keys

    if key in schema_keys(leaves_only=True):
        return key
    for p in PARAMS:
        if p.flag and p.name == key:
            return p.key
    for p in PARAMS:
        if p.key.rsplit(".", 1)[-1] == key:
            return p.key
    raise SweepSpecError(f"sweep.params: unknown key {key!r}")


def search_space(cfg: DictConfig) -> Dict[str, str]:
    """``sweep.params`` (the guide's JSON string, or a mapping) as {config key: grammar}; the trainer's default
    space when it is not given."""
    from autotrain_hydra.schema.rules import parse_sweep_params

    raw = parse_sweep_params(cfg.sweep.params)
    if not raw:
        space = dict(DEFAULT_SPACE[cfg.trainer.name])
        if cfg.peft.method == "lora":
            space.update(LORA_SPACE)
        return space
    if isinstance(raw, ListConfig):
        raw = OmegaConf.to_container(raw)
    return {resolve_key(k): _grammar(k, v) for k, v in _flatten(raw).items()}


def _flatten(d: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    """{training: {lr: ...}} and {"training.lr": ...} alike; a dict with a 'type' or 'low' is one parameter."""
    out: Dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and not ({"type", "low", "high", "choices"} & set(v)):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def check_space(space: Dict[str, str]) -> List[str]:
    """Problems of a search space: each entry must parse as a Hydra sweep override."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser = OverridesParser.create()
    problems = []
    for key, grammar in space.items():
        try:
            parser.parse_overrides([f"{key}={grammar}"])
        except OverrideParseException as e:
            problems.append(f"{key}={grammar}: {str(e).splitlines()[0]}")
    return problems


# ----------------------------------------------------------------------------------------------- metrics
def reported_metrics(cfg: DictConfig) -> Set[str]:
    """The metric names a run of this config writes to metrics.json (what ``sweep.metric`` may name)."""
    trainer = cfg.trainer.name
    has_eval = bool(cfg.data.valid_path or cfg.data.valid_split or cfg.data.valid_fraction)
    names = {"train_loss", "first_train_loss"} | enhanced_eval_names(cfg)
    if trainer == "ppo":
        return names | {"mean_reward", "kl", "eval_mean_reward_before", "eval_mean_reward_after"}
    names.add("train_loss_mean")
    if has_eval:
        names.add("eval_loss")
        if trainer in ("dpo", "orpo"):
            names |= {"eval_logp_margin_before", "eval_logp_margin_after", "eval_rewards/accuracies",
                      "eval_rewards/margins"}
        if trainer == "reward":
            names |= {"eval_accuracy", "eval_margin", "eval_mean_reward"}
        if trainer == "sft":
            names.add("eval_mean_token_accuracy")
    return names


def enhanced_eval_names(cfg: DictConfig) -> Set[str]:
    """``eval/<name>`` keys that features=[eval] adds to metrics.json."""
    from autotrain_hydra.schema.rules import eval_metrics

    if not cfg.eval.enabled:
        return set()
    expand = {"rouge": ["rouge1", "rouge2", "rougeL", "rougeLsum"],
              "bertscore": ["bertscore_precision", "bertscore_recall", "bertscore_f1"]}
    try:
        metrics = eval_metrics(cfg)
    except ValueError:
        return set()
    return {f"eval/{n}" for m in metrics for n in expand.get(m, [m])}


# ----------------------------------------------------------------------------------------------- hydra args
def sweep_arguments(cfg: DictConfig, argv: List[str]) -> List[str]:
    """The Hydra overrides that run this config as an Optuna sweep (the caller adds --multirun)."""
    s = cfg.sweep
    study = s.study_name or f"{cfg.trainer.name}-sweep"
    # as written: an interpolation such as ${oc.env:OPTUNA_STORAGE} keeps a database password out of the run's files
    storage = OmegaConf.to_container(s, resolve=False)["storage"] or "sqlite:///${hydra.sweep.dir}/optuna.db"
    args = ["hydra/sweeper=optuna", f"hydra.sweeper._target_={SWEEPER}", f"hydra/sweeper/sampler={s.sampler}",
             f"hydra.sweeper.n_trials={s.n_trials}", "hydra.sweeper.n_jobs=1",
             f"hydra.sweeper.direction={s.direction}", "hydra.sweeper.max_failure_rate=1.0",
             f"hydra.sweeper.storage='{storage}'", f"hydra.sweeper.study_name={study}"]
    if s.sampler not in SEEDLESS_SAMPLERS:
        args.append(f"hydra.sweeper.sampler.seed={s.seed}")
    fixed = {a.split("=", 1)[0].lstrip("+") for a in argv if "=" in a}
    for key, grammar in search_space(cfg).items():
        if key in fixed:
            log.warning("sweep: %s is searched (%s); its value on the command line is replaced", key, grammar)
        args.append(f"{key}={grammar}")
    return args


# ----------------------------------------------------------------------------------------------- W&B backend
WANDB_METHOD = {"tpe": "bayes", "cmaes": "bayes", "random": "random", "grid": "grid"}


def _wandb_parameter(key: str, grammar: str) -> Dict[str, Any]:
    """One parameter of a W&B sweep spec from the sweeper grammar (through the Optuna sweeper's own parser)."""
    import optuna.distributions as d
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra_plugins.hydra_optuna_sweeper._impl import create_optuna_distribution_from_override

    (override,) = OverridesParser.create().parse_overrides([f"{key}={grammar}"])
    dist = create_optuna_distribution_from_override(override)
    if isinstance(dist, d.CategoricalDistribution):
        return {"values": list(dist.choices)}
    if isinstance(dist, d.LogUniformDistribution):
        return {"distribution": "log_uniform_values", "min": dist.low, "max": dist.high}
    if isinstance(dist, d.IntLogUniformDistribution):
        return {"distribution": "q_log_uniform_values", "min": dist.low, "max": dist.high, "q": 1}
    if isinstance(dist, d.IntUniformDistribution):
        return {"distribution": "int_uniform", "min": dist.low, "max": dist.high}
    if isinstance(dist, d.DiscreteUniformDistribution):
        return {"distribution": "q_uniform", "min": dist.low, "max": dist.high, "q": dist.q}
    if isinstance(dist, d.UniformDistribution):
        return {"distribution": "uniform", "min": dist.low, "max": dist.high}
    return {"value": dist}  # a fixed value


def wandb_spec(cfg: DictConfig, argv: List[str]) -> Dict[str, Any]:
    """The W&B sweep spec of the same search space: each W&B trial runs this command line (the sweep feature off
    inside the trial) with the sampled parameters appended as Hydra overrides (W&B's ${args_no_hyphens} is
    key=value, Hydra's override form), logging to W&B."""
    space = search_space(cfg)
    fixed = [a for a in argv if a.split("=", 1)[0].lstrip("+") not in space and not a.startswith("-")]
    return {"method": WANDB_METHOD[cfg.sweep.sampler],
            "metric": {"name": cfg.sweep.metric, "goal": cfg.sweep.direction},
            "run_cap": int(cfg.sweep.n_trials),
            "parameters": {k: _wandb_parameter(k, g) for k, g in space.items()},
            "command": ["${env}", "${interpreter}", "-m", "autotrain_hydra", *fixed, "sweep.enabled=false",
                        "report_to=[wandb]", "${args_no_hyphens}"]}


def wandb_server_problem(timeout: float = 3.0) -> Optional[str]:
    """Why no W&B server can be used from here, or None when one answers."""
    import socket
    from urllib.parse import urlparse

    mode = os.environ.get("WANDB_MODE", "")
    if mode in ("offline", "disabled", "dryrun"):
        return f"WANDB_MODE={mode}"
    base = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")
    url = urlparse(base)
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout).close()
    except OSError as e:
        return f"{base} cannot be reached ({e})"
    if not os.environ.get("WANDB_API_KEY") and not os.path.exists(os.path.expanduser("~/.netrc")):
        return "no W&B API key (set WANDB_API_KEY or run wandb login)"
    return None


def run_wandb_sweep(cfg: DictConfig, argv: List[str], spec_dir: str = "multirun") -> int:
    """sweep.backend=wandb: write the spec; run a W&B agent when a server answers, else a clear error (exit 2)."""
    import time

    import yaml

    spec = wandb_spec(cfg, argv)
    os.makedirs(spec_dir, exist_ok=True)
    path = os.path.join(spec_dir, f"wandb_sweep-{cfg.trainer.name}-{time.strftime('%Y%m%d-%H%M%S')}.yaml")
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(spec, f, sort_keys=False)
    problem = wandb_server_problem()
    if problem:
        import sys

        print(f"Error: sweep.backend=wandb needs a reachable W&B server: {problem}  [sweep.backend=wandb]\n"
              f"    fix: the W&B sweep spec is in {path}: run `wandb sweep {path}` and `wandb agent <id>` where a "
              f"server is reachable, or use sweep.backend=optuna here (trials can still log to W&B offline with "
              f"report_to=[wandb])", file=sys.stderr)
        return 2
    import wandb

    sweep_id = wandb.sweep(spec, project=os.environ.get("WANDB_PROJECT", "autotrain_hydra"))
    wandb.agent(sweep_id, count=int(cfg.sweep.n_trials))
    return 0


# ----------------------------------------------------------------------------------------------- the report
def _trial_rows(study, sweep_dir: str) -> List[Dict[str, Any]]:
    rows = []
    for t in study.trials:
        start, end = t.datetime_start, t.datetime_complete
        path = os.path.join(sweep_dir, str(t.number))  # a trial's dir is its study number (sweep_study)
        train_s = None
        if os.path.isfile(os.path.join(path, "metrics.json")):
            with open(os.path.join(path, "metrics.json"), encoding="utf-8") as f:
                train_s = json.load(f).get("train_runtime_s")
        rows.append({"number": t.number, "state": t.state.name, "value": t.value, **{f"params.{k}": v for k, v in
                                                                                     t.params.items()},
                     "seconds": round((end - start).total_seconds(), 2) if start and end else None,
                     "train_seconds": train_s,
                     "path": path if os.path.isdir(path) else "(not in this sweep dir)"})
    return rows


def redact(url: str) -> str:
    """A storage URL with its password replaced by *** (postgresql://user:secret@host/db → user:***@host)."""
    return re.sub(r"(://[^:/@]+):.*@", r"\1:***@", str(url))


def write_report(sweep_dir: str, study: Any, storage: Any, metric: str, direction: str) -> Dict[str, Any]:
    """trials.csv, a console table, optimization_results.yaml (with the best trial's model path) and PNG plots of
    the optimisation history and the parameter importances, in the sweep dir. Every trial of the study is listed,
    those of other workers and earlier runs on the same storage too. Written by the sweeper when it ends."""
    from autotrain_hydra.features.sweep_study import budget_lock

    with budget_lock(storage):  # workers ending together: one at a time, the last one reads the newest study
        return _write_report(sweep_dir, study, storage, metric, direction)


def _write_report(sweep_dir: str, study: Any, storage: Any, metric: str, direction: str) -> Dict[str, Any]:
    import csv

    rows = _trial_rows(study, sweep_dir)
    columns = sorted({k for r in rows for k in r}, key=lambda k: (k != "number", k != "state", k != "value", k))
    with written_whole(os.path.join(sweep_dir, "trials.csv")) as tmp, open(tmp, "w", newline="",
                                                                          encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    complete = [r for r in rows if r["state"] == "COMPLETE"]
    best = (min if direction == "minimize" else max)(complete, key=lambda r: r["value"]) if complete else None
    result = {"study_name": study.study_name, "storage": redact(storage) if storage else "in memory", "metric": metric,
              "direction": direction,
              "n_trials": len(rows), "n_complete": len(complete), "n_failed": sum(r["state"] == "FAIL" for r in rows),
              "best_value": best["value"] if best else None,
              "best_params": {k[7:]: v for k, v in best.items() if k.startswith("params.")} if best else None,
              "best_trial": best["number"] if best else None, "best_model_path": best["path"] if best else None}
    with written_whole(os.path.join(sweep_dir, "optimization_results.yaml")) as tmp:
        OmegaConf.save(OmegaConf.create(result), tmp)
    print(render_table(rows, metric))
    print(f"best {metric}: {result['best_value']} (trial {result['best_trial']}, {result['best_model_path']})")
    _plots(study, sweep_dir)
    return result


def render_table(rows: List[Dict[str, Any]], metric: str) -> str:
    params = sorted({k for r in rows for k in r if k.startswith("params.")})
    head = ["trial", "state", metric, *[p[7:] for p in params], "seconds", "of which training"]
    body = [[str(r["number"]), r["state"], "" if r["value"] is None else f"{r['value']:.5g}",
             *["" if r.get(p) is None else f"{r[p]:.4g}" if isinstance(r[p], float) else str(r[p]) for p in params],
             "" if r["seconds"] is None else str(r["seconds"]),
             "" if r.get("train_seconds") is None else f"{r['train_seconds']:.2f}"] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*head), fmt.format(*["-" * w for w in widths]), *(fmt.format(*b) for b in body)])


def _plots(study, sweep_dir: str) -> None:
    """optimization_history.png (optuna's plot) and param_importances.png (a bar chart of optuna's random-forest
    importances: optuna 2.10's own importance plot needs matplotlib.cm.get_cmap, gone from current matplotlib, and its
    default fANOVA evaluator breaks on current numpy)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.importance import MeanDecreaseImpurityImportanceEvaluator, get_param_importances
    from optuna.visualization import matplotlib as ovm

    def history():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # optuna marks its matplotlib plots experimental
            return ovm.plot_optimization_history(study).figure

    def importances():
        scores = get_param_importances(study, evaluator=MeanDecreaseImpurityImportanceEvaluator(seed=0))
        fig, ax = plt.subplots(figsize=(6, 1.5 + 0.4 * len(scores)))
        names = list(scores)[::-1]
        ax.barh(names, [scores[n] for n in names])
        ax.set_xlabel("importance (random-forest impurity decrease)")
        ax.set_title("Hyperparameter importances")
        return fig

    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    plots = [("optimization_history.png", history)]
    if len(complete) >= 2 and any(t.params for t in complete):
        plots.append(("param_importances.png", importances))
    for name, draw in plots:
        try:
            fig = draw()
            fig.tight_layout()
            with written_whole(os.path.join(sweep_dir, name)) as tmp:
                fig.savefig(tmp, dpi=80, format="png")
            plt.close(fig)
        except Exception as e:  # a plot must never fail the sweep
            log.warning("sweep: could not draw %s (%s)", name, e)
