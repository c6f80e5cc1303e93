"""eval.benchmark: lm-evaluation-harness tasks offline (a shipped task, a local task YAML), and clear errors for the
rest."""

import json

import pytest

from autotrain_hydra.compat.hydra import compose_config
from autotrain_hydra.run import run

ALL = '["perplexity", "bleu", "rouge", "bertscore", "chrf", "exact_match"]'


@pytest.mark.slow
def test_benchmarks_shipped_and_local_task_offline(tmp_path):
    """lm-evaluation-harness on the trained model: the shipped task and a local task YAML over a jsonl."""
    data = tmp_path / "qa.jsonl"
    data.write_text('{"q": "Question: What is 2 plus 2?\\nAnswer:", "a": " 2 plus 2 is 4.", "b": " I do not know."}\n'
                    '{"q": "Question: What color is the sky?\\nAnswer:", "a": " The sky is blue.", "b": " Maybe."}\n')
    task = tmp_path / "my_qa.yaml"
    task.write_text(f"task: my_qa\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\n"
                    "test_split: test\noutput_type: multiple_choice\ndoc_to_text: '{{q}}'\n"
                    "doc_to_choice: '{{[a, b]}}'\ndoc_to_target: 0\nmetric_list:\n  - metric: acc\n")
    out = tmp_path / "out"
    run(compose_config(["trainer=dpo", "training.max_steps=12", "features=[eval]", "eval.metrics=[perplexity]",
                        f"eval.benchmark='autotrain_qa,{task}'", f"output_dir={out}"]))
    m = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= m["eval/benchmark/autotrain_qa/acc"] <= 1.0 and 0.0 <= m["eval/benchmark/my_qa/acc"] <= 1.0


@pytest.mark.slow
def test_unknown_benchmark_task_is_a_clear_error(tmp_path):
    from autotrain_hydra.errors import BenchmarkError
    from autotrain_hydra.features.benchmark import run_benchmarks
    from autotrain_hydra.models import tiny_model_dir

    with pytest.raises(BenchmarkError, match=r"unknown benchmark task\(s\) no_such_task"):
        run_benchmarks(str(tiny_model_dir()), "no_such_task", 8)


@pytest.mark.slow
def test_benchmark_needing_a_download_fails_clearly_offline():
    from autotrain_hydra.errors import BenchmarkError
    from autotrain_hydra.features.benchmark import run_benchmarks
    from autotrain_hydra.models import tiny_model_dir

    with pytest.raises(BenchmarkError, match=r"benchmark arc_easy could not run: .*write a local task YAML"):
        run_benchmarks(str(tiny_model_dir()), "arc_easy", 8, limit=2)

