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

from autotrain_hydra.errors import BenchmarkError  # noqa: F401
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




def _tasks(value: Any, workdir: str) -> Tuple[List[str], List[str]]:
    """Task names and the folders lm-eval must search (local YAML files, the shipped tasks)."""
    import yaml

    from autotrain_hydra import paths

    names, include = [], [workdir]
    for e in entries(value):
        if e in SHIPPED:
            with open(os.path.join(workdir, f"{e}.yaml"), "w", encoding="utf-8") as f:
                f.write(SHIPPED[e].format(data=paths.asset("data/preference_valid.jsonl")))
            names.append(e)
        elif e.endswith((".yaml", ".yml")):
            path = os.path.abspath(os.path.expanduser(e))
            with open(path, encoding="utf-8") as f:
                names.append(yaml.safe_load(f)["task"])
            include.append(os.path.dirname(path))
        else:
            names.append(e)
    return names, include


def run_benchmarks(model_path: str, value: Any, batch_size: int, limit: Optional[int] = None,
                   base_model: Optional[str] = None) -> Dict[str, float]:
    """Run the tasks on the model saved at ``model_path`` (a LoRA adapter on ``base_model``); ``eval/benchmark/
    <task>/<metric>`` keys."""
    if importlib.util.find_spec("lm_eval") is None:
        raise BenchmarkError(f"{MISSING_EXTRA}: {INSTALL_HINT}")
    import torch
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    adapter = os.path.isfile(os.path.join(model_path, "adapter_config.json"))
    model_args = f"pretrained={base_model},peft={model_path}" if adapter else f"pretrained={model_path}"
    with tempfile.TemporaryDirectory() as workdir:
        names, include = _tasks(value, workdir)
        manager = TaskManager(include_path=include)
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
                                 f"YAML over a jsonl file (see README)") from e
    out: Dict[str, float] = {}
    for task, scores in results["results"].items():
        for key, v in scores.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and "stderr" not in key:
                out[f"eval/benchmark/{task}/{key.split(',')[0]}"] = float(v)
    return out
