"""Each Hydra internal that autotrain_hydra.compat.hydra uses, checked against the installed Hydra: an upgrade that
moves or changes one fails here, naming the hook, instead of somewhere in a run."""

import inspect

import pytest

HOOKS = [
    ("hydra._internal.utils", "get_args_parser", []),
    ("hydra._internal.utils", "create_config_search_path", ["search_path_dir"]),
    ("hydra._internal.utils", "_run_hydra", ["args", "args_parser", "task_function", "config_path", "config_name"]),
    ("hydra._internal.callbacks", "Callbacks", ["config"]),
    ("hydra.core.utils", "run_job", ["task_function", "config", "job_dir_key", "job_subdir_key", "hydra_context",
                                     "configure_logging"]),
]


@pytest.mark.parametrize("module,name,params", HOOKS, ids=[f"{m}.{n}" for m, n, _ in HOOKS])
def test_hook_exists_with_its_parameters(module, name, params):
    import importlib

    obj = getattr(importlib.import_module(module), name, None)
    assert obj is not None, f"{module}.{name} is gone: autotrain_hydra.compat.hydra must be updated"
    signature = inspect.signature(obj)
    missing = [p for p in params if p not in signature.parameters]
    assert not missing, f"{module}.{name} lost its parameters {missing}: update autotrain_hydra.compat.hydra"


def test_hydra_object_composes_and_creates():
    from hydra._internal.hydra import Hydra

    assert "config_search_path" in inspect.signature(Hydra.create_main_hydra2).parameters
    params = inspect.signature(Hydra.compose_config).parameters
    assert {"config_name", "overrides", "run_mode", "with_log_configuration"} <= set(params)


def test_the_entry_point_parses_composes_runs_through_the_hooks(tmp_path, monkeypatch):
    """One command through every hook: parse, initialize, compose, run_job (with Hydra's callbacks)."""
    from autotrain_hydra import paths
    from autotrain_hydra.compat import hydra as hy

    args = hy.parse_args(["--multirun", "training.lr=1e-4", "hydra.run.dir=x"])
    assert args.multirun and args.overrides == ["training.lr=1e-4", "hydra.run.dir=x"]
    hy.initialize(str(paths.config_dir()))
    cfg = hy.compose("config", [f"hydra.run.dir={tmp_path}/run"], multirun=False)
    assert cfg.trainer.name == "sft" and cfg.hydra.job.config_name == "config"
    seen = []
    assert hy.run(cfg, lambda c: seen.append((hy.job_dir(), hy.job_number())) or 3.0) == 3.0
    assert seen == [(f"{tmp_path}/run", None)] and (tmp_path / "run" / ".hydra" / "config.yaml").is_file()
    hy.clear()


def test_a_jobs_outcome_is_read_without_hydras_error_line(capsys):
    """compat.hydra.outcome reads JobReturn's status and its private _return_value (a failed job's exception)."""
    import pickle

    from hydra.core.utils import JobReturn, JobStatus

    from autotrain_hydra.compat.hydra import outcome
    from autotrain_hydra.errors import TrialPruned

    done = JobReturn(status=JobStatus.COMPLETED, _return_value=1.5)
    assert outcome(done) == 1.5
    pruned = pickle.loads(pickle.dumps(TrialPruned("pruned at step 4", 4, 6.2)))  # a job of another process
    assert (pruned.step, pruned.value) == (4, 6.2)
    failed = JobReturn(status=JobStatus.FAILED, _return_value=pruned)
    with pytest.raises(TrialPruned):
        outcome(failed)
    assert "Error executing job" not in capsys.readouterr().err
