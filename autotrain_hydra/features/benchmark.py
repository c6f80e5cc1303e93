"""``eval.benchmark``: lm-evaluation-harness tasks run against the trained model (optional extra ``lm-eval``).

``eval.benchmark`` is a comma-separated list of task names and/or paths to task YAML files (a local task: a YAML
over a local jsonl, so it runs offline). ``autotrain_qa`` is shipped: multiple choice between the answer and the
evasive reply of the built-in preference validation pairs (accuracy). A task whose data must be downloaded fails
with a clear error where there is no network.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import tempfile
from typing import Any, Dict, List, Optional, Tuple

from autotrain_hydra.errors import BenchmarkError
from autotrain_hydra.schema.metrics import benchmark_entries as entries
from autotrain_hydra.schema.rules.features import LM_EVAL_HINT as INSTALL_HINT, MISSING_LM_EVAL as MISSING_EXTRA

log = logging.getLogger(__name__)

SHIPPED = {"autotrain_qa": """task: autotrain_qa
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{prompt}}}}"
doc_to_choice: "{{{{[chosen, rejected]}}}}"
doc_to_target: 0
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""}


# lm-eval's index of its ~15,000 built-in tasks takes ~17 s to build: built once per process and set of folders,
# and only when a named built-in task is asked for (shipped and local tasks index their own folder).
_MANAGERS: Dict[Tuple[Tuple[str, ...], bool], Any] = {}
_SHIPPED_DIR: List[str] = []


def _shipped_dir() -> str:
    """One folder per process for the shipped task YAMLs (stable, so that the task index is reused)."""
    if not _SHIPPED_DIR:
        import atexit
        import shutil

        from autotrain_hydra import paths

        folder = tempfile.mkdtemp(prefix="autotrain-tasks-")
        for name, text in SHIPPED.items():
            with open(os.path.join(folder, f"{name}.yaml"), "w", encoding="utf-8") as f:
                f.write(text.format(data=paths.asset("data/preference_valid.jsonl")))
        atexit.register(shutil.rmtree, folder, True)
        _SHIPPED_DIR.append(folder)
    return _SHIPPED_DIR[0]


def _tasks(value: Any) -> Tuple[List[str], List[str], bool]:
    """Task names, the folders lm-eval must search (local YAML files, the shipped tasks), and whether a built-in
    task is named (its index is needed)."""
    from autotrain_hydra.schema.rules.features import task_name

    names, include, builtin = [], [_shipped_dir()], False
    for e in entries(value):
        if e in SHIPPED:
            names.append(e)
        elif e.endswith((".yaml", ".yml")):
            path = os.path.abspath(os.path.expanduser(e))
            names.append(task_name(path))  # validated: it names one
            if os.path.dirname(path) not in include:
                include.append(os.path.dirname(path))
        else:
            names.append(e)
            builtin = True
    return names, include, builtin


def _manager(include: List[str], builtin: bool) -> Any:
    from lm_eval.tasks import TaskManager

    key = (tuple(include), builtin)
    if key not in _MANAGERS:
        _MANAGERS[key] = TaskManager(include_path=list(include), include_defaults=builtin)
    return _MANAGERS[key]


def run_benchmarks(model_path: str, value: Any, batch_size: int, limit: Optional[int] = None,
                   base_model: Optional[str] = None) -> Dict[str, float]:
    """Run the tasks on the model saved at ``model_path`` (a LoRA adapter on ``base_model``); ``eval/benchmark/
    <task>/<metric>`` keys."""
    if importlib.util.find_spec("lm_eval") is None:
        raise BenchmarkError(f"{MISSING_EXTRA}: {INSTALL_HINT}")
    import torch
    from lm_eval import simple_evaluate

    adapter = os.path.isfile(os.path.join(model_path, "adapter_config.json"))
    model_args = f"pretrained={base_model},peft={model_path}" if adapter else f"pretrained={model_path}"
    names, include, builtin = _tasks(value)
    manager = _manager(include, builtin)
    unknown = [n for n in names if n not in manager.all_tasks]
    if unknown:
        raise BenchmarkError(f"unknown benchmark task(s) {', '.join(unknown)}; give a "
                             f"lm-eval task name or the path of a task YAML")
    try:
        results = simple_evaluate(model="hf", model_args=model_args, tasks=names, task_manager=manager,
                                  batch_size=batch_size, limit=limit,
                                  device="cuda" if torch.cuda.is_available() else "cpu")
    except (OSError, ConnectionError, ValueError) as e:
        raise BenchmarkError(f"benchmark {', '.join(names)} could not run: {str(e).splitlines()[0]}. A task "
                             f"whose dataset must be downloaded cannot run without network: write a local task "
                             f"YAML over a jsonl file (docs/usage.md)") from e
    out: Dict[str, float] = {}
    for task, scores in results["results"].items():
        for key, v in scores.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and "stderr" not in key:
                out[f"eval/benchmark/{task}/{key.split(',')[0]}"] = float(v)
    return out
