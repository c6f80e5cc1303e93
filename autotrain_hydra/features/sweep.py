"""Hyperparameter sweeps: the W&B backend (``sweep.backend=wandb``) and the sweep's readable report.

The Optuna sweep itself is a Hydra multirun run by our sweeper (``features.sweep_study``, selected by
``features=[sweep]`` or ``hydra/sweeper=optuna``); its search space is parsed with the schema
(``schema.sweep_space``). ``write_report`` writes the result files when the sweeper ends. Light module: no torch;
optuna is imported only to draw the plots.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from typing import Any, Callable, Dict, List, Optional

from omegaconf import DictConfig, OmegaConf

from autotrain_hydra import secrets
from autotrain_hydra.paths import written_whole
from autotrain_hydra.schema.metrics import sweep_objective
from autotrain_hydra.schema.sweep_space import Dist, distribution, search_space

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------- W&B backend
WANDB_METHOD = {"tpe": "bayes", "cmaes": "bayes", "random": "random", "grid": "grid"}


def _wandb_parameter(key: str, grammar: str) -> Dict[str, Any]:
    """One parameter of a W&B sweep spec from the sweeper grammar (parsed as the Optuna sweeper reads it)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    (override,) = OverridesParser.create().parse_overrides([f"{key}={grammar}"])
    dist: Optional[Dist] = distribution(override)
    if dist is None:
        return {"value": override.value()}  # a fixed value
    if dist.kind == "categorical":
        return {"values": list(dist.choices)}
    if dist.kind == "int":
        if dist.log:
            return {"distribution": "q_log_uniform_values", "min": dist.low, "max": dist.high, "q": 1}
        return {"distribution": "int_uniform", "min": dist.low, "max": dist.high}
    if dist.log:
        return {"distribution": "log_uniform_values", "min": dist.low, "max": dist.high}
    if dist.step is not None:
        return {"distribution": "q_uniform", "min": dist.low, "max": dist.high, "q": dist.step}
    return {"distribution": "uniform", "min": dist.low, "max": dist.high}


def wandb_spec(cfg: DictConfig, argv: List[str]) -> Dict[str, Any]:
    """The W&B sweep spec of the same search space: each W&B trial runs this command line (the sweep feature off
    inside the trial) with the sampled parameters appended as Hydra overrides (W&B's ${args_no_hyphens} is
    key=value, Hydra's override form), logging to W&B."""
    space = search_space(cfg)
    metric, direction = sweep_objective(cfg)
    fixed = [a for a in argv if a.split("=", 1)[0].lstrip("+") not in space and not a.startswith("-")]
    return {"method": WANDB_METHOD[cfg.sweep.sampler],
            "metric": {"name": metric, "goal": direction},
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


def run_wandb_sweep(cfg: DictConfig, argv: List[str], spec_dir: str = "multirun") -> None:
    """sweep.backend=wandb: write the spec; run a W&B agent when a server answers, else an InputError (exit 2) that
    says where the spec is."""
    import time

    import yaml

    spec = wandb_spec(cfg, argv)
    os.makedirs(spec_dir, exist_ok=True)
    path = os.path.join(spec_dir, f"wandb_sweep-{cfg.trainer.name}-{time.strftime('%Y%m%d-%H%M%S')}.yaml")
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(spec, f, sort_keys=False)
    problem = wandb_server_problem()
    if problem:
        from autotrain_hydra.errors import InputError

        raise InputError(f"sweep.backend=wandb needs a reachable W&B server: {problem}  [sweep.backend=wandb]\n"
                         f"    fix: the W&B sweep spec is in {path}: run `wandb sweep {path}` and `wandb agent <id>` "
                         "where a server is reachable, or use sweep.backend=optuna here (trials can still log to W&B "
                         "offline with report_to=[wandb])")
    import wandb

    sweep_id = wandb.sweep(spec, project=os.environ.get("WANDB_PROJECT", "autotrain_hydra"))
    wandb.agent(sweep_id, count=int(cfg.sweep.n_trials))


# ----------------------------------------------------------------------------------------------- the report
# What the sweeper notes on a trial (user attribute NOTE): a trial lost with its worker (re-run), or one never run.
NOTE = "autotrain_hydra"
LOST = "autotrain_hydra: lost with its worker"
NOT_RUN = "autotrain_hydra: not run"


def rerun_of(trial: Any) -> Optional[int]:
    """The number of the lost trial that ``trial`` re-runs (the last of optuna's ``retry_history``), else None."""
    history = trial.system_attrs.get("retry_history") or []
    return int(history[-1]) if history else None


def trial_fates(trials: List[Any]) -> Dict[int, str]:
    """Each trial's fate: "lost" (its worker died or was stopped: FAIL, re-run, never counted), "not run" (an extra
    trial, never counted), or "own" (it ran to its own end, or runs: counted in n_trials)."""
    rerun = {rerun_of(t) for t in trials} - {None}
    fates = {}
    for t in trials:
        note = str(t.user_attrs.get(NOTE, ""))
        fates[t.number] = ("lost" if t.number in rerun or note.startswith(LOST) else
                           "not run" if note.startswith(NOT_RUN) else "own")
    return fates


def _trial_rows(study, trial_dir: Callable[[int], str]) -> List[Dict[str, Any]]:
    rows = []
    trials = study.trials
    fates = trial_fates(trials)
    rerun_as = {rerun_of(t): t.number for t in trials if rerun_of(t) is not None and fates[t.number] != "not run"}
    for t in trials:
        start, end = t.datetime_start, t.datetime_complete
        path = trial_dir(t.number)  # named by its study number (sweep_study)
        train_s = None
        if os.path.isfile(os.path.join(path, "metrics.json")):
            with open(os.path.join(path, "metrics.json"), encoding="utf-8") as f:
                train_s = json.load(f).get("train_runtime_s")
        rows.append({"number": t.number, "state": t.state.name, "value": t.value, **{f"params.{k}": v for k, v in
                                                                                     t.params.items()},
                     "seconds": round((end - start).total_seconds(), 2) if start and end else None,
                     "train_seconds": train_s,
                     "pruned_at_step": t.last_step if t.state.name == "PRUNED" else None,
                     "path": path if os.path.isdir(path) else "(not in this sweep dir)",
                     "counted": fates[t.number] == "own",  # in n_trials: it ended by itself (or runs)
                     "lost": fates[t.number] == "lost", "rerun_of": rerun_of(t), "rerun_as": rerun_as.get(t.number)})
    return rows


def redact(url: str) -> str:
    """A storage URL with its password replaced by *** (postgresql://user:secret@host/db → user:***@host), and any
    secret it holds (``secrets.redact``)."""
    return secrets.redact(str(url))


def write_report(sweep_dir: str, study: Any, storage: Any, metric: str, direction: str,
                 trial_dir: Optional[Callable[[int], str]] = None, final: bool = True) -> Dict[str, Any]:
    """trials.csv, optimization_results.yaml (with the best trial's model path) and the sweep's page (sweep.html:
    ``features.sweep_page``) in the sweep dir, as each trial ends; at the end (``final``) also a console table and PNG
    plots of the optimisation history and the parameter importances. Every trial of the study is listed, those of
    other workers and earlier runs on the same storage too. Written by the sweeper (under its storage's lock: the
    last worker to end writes the complete report)."""
    import csv

    os.makedirs(sweep_dir, exist_ok=True)  # a finished study run again into a new sweep dir runs no trial
    rows = secrets.redact_obj(_trial_rows(study, trial_dir or (lambda n: os.path.join(sweep_dir, str(n)))))
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
              "n_trials": sum(r["counted"] for r in rows), "n_complete": len(complete),
              "n_failed": sum(r["state"] == "FAIL" and r["counted"] for r in rows),
              "n_pruned": sum(r["state"] == "PRUNED" for r in rows),
              "n_lost": sum(r["lost"] for r in rows),
              "best_value": best["value"] if best else None,
              "best_params": {k[7:]: v for k, v in best.items() if k.startswith("params.")} if best else None,
              "best_trial": best["number"] if best else None, "best_model_path": best["path"] if best else None}
    with written_whole(os.path.join(sweep_dir, "optimization_results.yaml")) as tmp:
        OmegaConf.save(OmegaConf.create(secrets.redact_obj(result)), tmp)
    from autotrain_hydra.features.sweep_page import write_page

    write_page(study, rows, result, sweep_dir, live=not final)
    if not final:
        return result
    print(render_table(rows, metric))
    print(f"best {metric}: {result['best_value']} (trial {result['best_trial']}, {result['best_model_path']})")
    _plots(study, sweep_dir)
    return result


def render_table(rows: List[Dict[str, Any]], metric: str) -> str:
    params = sorted({k for r in rows for k in r if k.startswith("params.")})
    head = ["trial", "state", metric, *[p[7:] for p in params], "seconds", "of which training"]
    body = [[str(r["number"]) + ("" if r.get("rerun_of") is None else f" (re-runs {r['rerun_of']})"),
             r["state"] + (" (lost)" if r.get("lost") else "")
             + (f" at step {r['pruned_at_step']}" if r.get("pruned_at_step") is not None else ""),
             "" if r["value"] is None else f"{r['value']:.5g}",
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
