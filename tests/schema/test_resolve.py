"""The one place that changes a composed config: samples, text columns, the sweep objective, hold-outs, the job dir;
read-only afterwards."""

import json

import pytest
from omegaconf import OmegaConf
from omegaconf.errors import ReadonlyConfigError

from autotrain_hydra.compat.hydra import compose_config
from autotrain_hydra.schema.resolve import JobPlace, place, resolve
from tests.helpers import check, messages


def test_the_resolved_config_is_read_only_and_the_composed_one_untouched():
    composed = compose_config(["trainer=dpo"])
    out = resolve(composed, ["trainer=dpo"])
    assert composed.data.path is None and out.cfg.data.path.endswith("preference.jsonl")
    with pytest.raises(ReadonlyConfigError):
        out.cfg.training.lr = 1.0
    with pytest.raises(ReadonlyConfigError):
        out.cfg.data.text_column = "x"


def test_a_null_the_user_typed_is_never_replaced_by_the_sample():
    """Bug: data.prompt_text_column=null with the built-in sample was replaced by the sample's column."""
    out = resolve(compose_config(["trainer=dpo", "data.prompt_text_column=null"]), ["data.prompt_text_column=null"])
    assert out.cfg.data.prompt_text_column is None and out.cfg.data.rejected_text_column == "rejected"
    assert messages(check("trainer=dpo", "data.prompt_text_column=null"), "error") == [
        "dpo requires data.prompt_text_column"]
    # reward does not require it: the pairs are scored without a prompt column, as typed
    out = resolve(compose_config(["trainer=reward", "data.prompt_text_column=null"]), ["data.prompt_text_column=null"])
    assert out.cfg.data.prompt_text_column is None


@pytest.mark.parametrize("trainer,rows,column", [
    ("sft", [{"messages": [{"role": "user", "content": "a"}]}], "messages"),
    ("dpo", [{"prompt": "p", "chosen": "a", "rejected": "b"}], "chosen"),
    ("ppo", [{"query": "q"}], "query")])
def test_a_default_text_column_the_data_lack_becomes_the_trainer_s_convention(tmp_path, trainer, rows, column):
    f = tmp_path / "d.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = resolve(compose_config([f"trainer={trainer}", f"data.path={f}"]), [f"data.path={f}"])
    assert out.cfg.data.text_column == column
    assert any(f"using {column!r}, the {trainer} column by convention" in n for n in out.notes)
    typed = resolve(compose_config([f"trainer={trainer}", f"data.path={f}", "data.text_column=text"]),
                    [f"data.path={f}", "data.text_column=text"])
    assert typed.cfg.data.text_column == "text"  # typed: kept, and the loader will name the missing column


def test_columns_are_peeked_in_csv_parquet_and_folders(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "a.csv").write_text("prompt,chosen,rejected\np,a,b\n")
    pq.write_table(pa.table({"messages": [[{"role": "user", "content": "x"}]]}), tmp_path / "b.parquet")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "train.jsonl").write_text('{"chosen": "a", "rejected": "b"}\n')
    for trainer, path, column in (("dpo", tmp_path / "a.csv", "chosen"), ("sft", tmp_path / "b.parquet", "messages"),
                                  ("reward", tmp_path / "dir", "chosen")):
        out = resolve(compose_config([f"trainer={trainer}", f"data.path={path}"]), [f"data.path={path}"])
        assert out.cfg.data.text_column == column, (trainer, path)


def test_place_puts_a_single_run_in_its_run_dir_and_a_trial_in_its_number(tmp_path):
    out = resolve(compose_config([]))
    assert place(out.cfg, JobPlace(str(tmp_path / "run"))).output_dir == str(tmp_path / "run")
    mine = resolve(compose_config([f"output_dir={tmp_path}/mine"])).cfg
    assert place(mine, JobPlace(str(tmp_path / "run"), number=3)).output_dir == f"{tmp_path}/mine/3"
    assert OmegaConf.is_readonly(place(mine, JobPlace("x")))


def test_an_interpolation_that_cannot_resolve_is_a_config_error_naming_its_key(monkeypatch):
    from autotrain_hydra.schema.errors import ConfigError

    monkeypatch.delenv("NOPE_X", raising=False)
    overrides = ["training.lr=${training.nope}", "output_dir=${oc.env:NOPE_X}", "training.seed=${env:X}"]
    with pytest.raises(ConfigError) as e:
        resolve(compose_config(overrides), overrides)
    assert sorted(i.key for i in e.value.report.errors) == ["output_dir", "training.lr", "training.seed"]
    assert "training.lr=${training.nope} cannot be resolved: Interpolation key 'training.nope' not found" in str(e.value)
    monkeypatch.setenv("NOPE_X", "/tmp/x")
    assert resolve(compose_config(["output_dir=${oc.env:NOPE_X}"])).cfg.output_dir == "/tmp/x"


def test_the_sample_s_validation_file_is_never_used_for_other_data(tmp_path):
    """Bug (red team): data=text data.path=<own file> evaluated on the shipped sample's validation file, silently."""
    own = tmp_path / "own.jsonl"
    own.write_text('{"text": "a b c"}\n{"text": "d e f"}\n')
    overrides = ["trainer=generic", "data=text", f"data.path={own}"]
    r = resolve(compose_config(overrides), overrides)
    assert r.cfg.data.valid_path is None
    assert any(n.startswith("data.valid_path=") and "the training data are yours" in n for n in r.notes)
    r = resolve(compose_config(["data.valid_fraction=0.2"]), ["data.valid_fraction=0.2"])  # typed: it wins
    assert (r.cfg.data.valid_path, r.cfg.data.valid_fraction) == (None, 0.2)
    assert any("you chose data.valid_fraction instead" in n for n in r.notes)
    kept = resolve(compose_config([]), [])  # the sample with its own validation file
    assert kept.cfg.data.valid_path.endswith("chat_valid.jsonl")
    mine = [f"data.valid_path={own}", "data.valid_fraction=0.2"]
    assert messages(check(*mine), "error") == [
        "data.valid_path and data.valid_fraction are both set: a run has one source of eval data"]


def test_an_unset_variable_is_one_error_on_the_key_that_names_it(monkeypatch):
    """Bug (red team): model.name=${oc.env:UNSET}/m gave three errors, two on keys the user never set (the tiny
    model's tuning of training.lr and training.block_size reads model.name): one error, on model.name."""
    from autotrain_hydra.schema.errors import ConfigError

    monkeypatch.delenv("UNSET_VAR_X", raising=False)
    overrides = ["model.name=${oc.env:UNSET_VAR_X}/m"]
    with pytest.raises(ConfigError) as e:
        resolve(compose_config(overrides), overrides)
    (err,) = e.value.report.errors
    assert err.key == "model.name" and err.value == "${oc.env:UNSET_VAR_X}/m"
    assert err.message == ("model.name=${oc.env:UNSET_VAR_X}/m cannot be resolved: KeyError raised while resolving "
                           "interpolation: \"Environment variable 'UNSET_VAR_X' not found\" (training.lr and "
                           "training.block_size depend on it)")
    two = ["model.name=${oc.env:UNSET_VAR_X}/m", "data.path=${oc.env:UNSET_VAR_X}/d.jsonl"]  # each names it
    with pytest.raises(ConfigError) as e:
        resolve(compose_config(two), two)
    assert [i.key for i in e.value.report.errors] == ["model.name", "data.path"]


def test_relative_paths_mean_the_launch_dir_also_where_hydra_changes_the_working_dir(tmp_path, monkeypatch):
    """Bug (red team): hydra.job.chdir=true with a relative data.path said "does not exist" for a file in the launch
    dir: the job runs in its run dir. There its relative paths are made absolute against the launch dir; a job that
    runs where it was launched keeps them as typed."""
    from hydra.core.hydra_config import HydraConfig

    from autotrain_hydra.schema import resolve as resolve_mod

    launch = tmp_path / "launch"
    (launch / "my_model").mkdir(parents=True)
    (launch / "data.jsonl").write_text('{"text": "a b c"}\n')
    monkeypatch.chdir(launch)
    overrides = ["data.path=data.jsonl", "output_dir=out", "model.name=my_model", "trainer.chat_template=chatml",
                 "distillation.teacher_model=org/hub-model", "trainer=generic"]
    checked = resolve(compose_config(overrides), overrides).cfg  # as the entry point checks it, in the launch dir
    assert (checked.data.path, checked.output_dir, checked.model.name) == ("data.jsonl", "out", "my_model")
    assert place(checked, JobPlace(str(tmp_path / "r"))).data.path == "data.jsonl"  # no chdir: as typed
    run_dir = tmp_path / "run"  # a job Hydra moved into its run dir
    run_dir.mkdir()
    hydra_node = OmegaConf.create({"hydra": {"job": {"chdir": True},
                                             "runtime": {"cwd": str(launch), "output_dir": str(run_dir)}}})
    monkeypatch.setattr(HydraConfig, "initialized", staticmethod(lambda: True))
    monkeypatch.setattr(HydraConfig, "get", staticmethod(lambda: hydra_node.hydra))
    monkeypatch.chdir(run_dir)
    assert resolve_mod.launch_dir() == str(launch)
    for cfg in (place(checked, JobPlace(str(run_dir))),  # a single run: checked before, placed in its job
                resolve(compose_config(overrides), overrides, JobPlace(str(run_dir), 0)).cfg):  # a trial
        assert (cfg.data.path, cfg.model.name) == (str(launch / "data.jsonl"), str(launch / "my_model"))
        assert cfg.output_dir in (str(launch / "out"), str(launch / "out" / "0"))
        assert (cfg.trainer.chat_template, cfg.distillation.teacher_model) == ("chatml", "org/hub-model")  # names
    hydra_node.hydra.job.chdir = False  # without chdir the working dir is the launch dir
    assert resolve_mod.launch_dir() == str(run_dir)
