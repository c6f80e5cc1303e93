"""One job (run.run / run.execute): settings this machine cannot run are refused before a model loads, validate_only
loads nothing, a used dir is never overwritten, secrets never reach a written file, and a matrix of bad configs and
inputs rejected with a clear message, the right exit code, no traceback and nothing written."""

import json
from pathlib import Path

import pytest
import torch

from autotrain_hydra import models, paths
from autotrain_hydra.__main__ import main
from autotrain_hydra.compat.hydra import compose_config
from autotrain_hydra.run import run
from autotrain_hydra.schema.errors import ConfigError
from tests.helpers import LM_FAST
from tests.helpers import train_lm as train
from tests.test_models import pickle_model


@pytest.mark.slow
def test_fp16_on_cpu_is_refused_before_loading(tmp_path, monkeypatch):
    from autotrain_hydra.errors import HardwareError

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    monkeypatch.setattr(models, "load_causal_lm", lambda *a, **k: pytest.fail("model loaded"))
    with pytest.raises(HardwareError, match="training.mixed_precision=fp16 needs a CUDA GPU"):
        train(tmp_path, "training.mixed_precision=fp16")


@pytest.mark.slow
def test_validate_only_loads_nothing(tmp_path, capsys):
    cfg = compose_config(["trainer=orpo", "validate_only=true", f"output_dir={tmp_path}/o"])
    assert run(cfg) is None
    assert "configuration is valid: trainer=orpo" in capsys.readouterr().out
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_run_dir_with_results_is_not_overwritten(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / "train.log").write_text("")
    cfg = compose_config([*LM_FAST, "training.max_steps=1", "trainer=generic", "training.block_size=64"])
    run(cfg, run_dir=str(run_dir))  # Hydra's own files do not count
    assert (run_dir / "model.safetensors").is_file()
    stamp = (run_dir / "model.safetensors").stat().st_mtime_ns
    with pytest.raises(ConfigError, match="is not empty: a run never overwrites earlier results"):
        run(cfg, run_dir=str(run_dir))
    assert (run_dir / "model.safetensors").stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_secrets_never_reach_a_written_file(tmp_path, monkeypatch):
    """Secrets in the environment, read by the config through ${oc.env:...} (model.revision: ignored for a local
    model; a key whose warning quotes its value in train.log) or typed as they are: no file of the run dir or of W&B
    (binary ones too) holds one; config.yaml keeps each interpolation as written."""
    secrets = {"HF_TOKEN": "hf_SECRETsecret1234567890", "WANDB_API_KEY": "wandbSECRET0987654321abcdef",
               "HUGGING_FACE_HUB_TOKEN": "hf_OTHERsecret5555", "MY_DB_PASSWORD": "dbPASSWORDsecret77"}
    for k, v in secrets.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    main(["training.max_steps=2", "report_to=[wandb]", "features=[eval]", "eval.save_predictions=true",
          "model.revision=${oc.env:HF_TOKEN}", "distillation.teacher_model=${oc.env:MY_DB_PASSWORD}",
          f"sweep.study_name={secrets['HUGGING_FACE_HUB_TOKEN']}"])
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "metrics.json" for p in files) and any("wandb" in p.parts for p in files)
    for p in files:
        data = p.read_bytes()
        for v in secrets.values():
            assert v.encode() not in data, p
    run_dir = next(p.parent for p in files if p.name == "metrics.json")
    config = (run_dir / "config.yaml").read_text()
    assert "revision: ${oc.env:HF_TOKEN}" in config and "teacher_model: ${oc.env:MY_DB_PASSWORD}" in config
    assert "study_name: '***'" in config or "study_name: ***" in config
    assert "[distillation.teacher_model=***]" in (run_dir / "train.log").read_text()


# ----------------------------------------------------------------------------------------------- bad input
def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def bad_cases(root: Path):
    chat = str(paths.ASSETS_DIR / "data" / "chat.jsonl")
    nomodel = root / "not_a_model"
    nomodel.mkdir()
    (nomodel / "notes.txt").write_text("hello")
    full = root / "full"
    full.mkdir()
    (full / "old.txt").write_text("earlier results")
    a_file = root / "a_file"
    a_file.write_text("not a folder")
    return [
        # configuration: caught before composing or loading anything
        ("unknown key", ["trainer.dpo_bta=0.1"], 2, "unknown key trainer.dpo_bta"),
        ("negative lr", ["training.lr=-1"], 2, "training.lr must be a number > 0"),
        ("bad optimizer", ["training.optimizer=adam"], 2, "training.optimizer must be one of"),
        ("ppo without reward model", ["trainer=ppo"], 2, "ppo requires trainer.rl.reward_model_path"),
        ("ppo + distillation", ["trainer=ppo", "features=[distillation]"], 2,
         "Distillation is not supported with PPO trainer"),
        ("removed trainer", ["trainer=distillation"], 2, "trainer=distillation was removed"),
        ("distillation without teacher", ["features=[distillation]"], 2,
         "distillation requires distillation.teacher_model"),
        ("bad precision", ["training.mixed_precision=fp8"], 2, "training.mixed_precision must be one of"),
        ("encoder-only model for sft", ["model=bert_base_uncased"], 2, "encoder-only"),
        ("bad chat template", ["trainer.chat_template=chatmlx"], 2, "did you mean chatml?"),
        ("unreported sweep metric", ["features=[sweep]", "sweep.metric=accuracy"], 2,
         "sweep.metric accuracy is not a metric this run reports"),
        ("non-empty output dir", [f"output_dir={full}"], 2, "is not empty: a run never overwrites"),
        ("resume without output dir", ["training.resume_from_checkpoint=true"], 2,
         "resume_from_checkpoint=true needs the output_dir"),
        ("resume from a missing checkpoint", [f"output_dir={root}/o", f"training.resume_from_checkpoint={root}/nope"],
         2, "checkpoint not found"),
        ("template without {input}", ["features=[distillation]", "distillation.teacher_model=tiny",
                                      "distillation.student_prompt_template=Answer"], 2, "{input} placeholder"),
        ("missing data file", [f"data.path={root}/missing.jsonl"], 2, "data not found"),
        ("infinite epochs", ["training.epochs=inf"], 2, "training.epochs=inf is not a finite number"),
        ("nan learning rate", ["training.lr=nan"], 2, "training.lr=nan is not a finite number"),
        ("output dir that is a file", [f"output_dir={a_file}"], 2, f"output_dir {a_file} is a file, not a directory"),
        ("output dir under a file", [f"output_dir={a_file}/run"], 2, f"is under the file {a_file}, not a directory"),
        ("run dir that is a file", [f"hydra.run.dir={a_file}"], 2, f"hydra.run.dir {a_file} is a file, not a "
                                                                    "directory"),
        ("unresolvable interpolation", ["model.name=${oc.env:AUTOTRAIN_TEST_UNSET_VAR}/m"], 2,
         "model.name=${oc.env:AUTOTRAIN_TEST_UNSET_VAR}/m cannot be resolved"),
        ("unknown eval metric", ["features=[eval]", "eval.metrics=[bleux]"], 2, "did you mean bleu?"),
        # data: caught when the data is read, before any model loads
        ("malformed jsonl", ["data.path=" + write(root / "bad.jsonl", '{"text": "a"}\n{oops\n'), "trainer=generic"], 2,
         "bad.jsonl:2: the line is not valid JSON"),
        ("unreadable csv", [f"data.path={write(root / 'bad.csv', 'a,b' + chr(10) + '1,2,3,4' + chr(10))}",
                            "trainer=generic"], 2, "(data.text_column) not found"),
        ("unreadable parquet", [f"data.path={write(root / 'bad.parquet', 'not parquet')}", "trainer=generic"], 2,
         "cannot read data file"),
        ("missing column", [f"data.path={chat}", "data.text_column=conversation"], 2,
         "column 'conversation' (data.text_column) not found"),
        ("empty data", [f"data.path={write(root / 'empty.jsonl', '')}", "trainer=generic"], 2, "empty"),
        ("messages not a list of role/content", [
            f"data.path={write(root / 'msgs.jsonl', json.dumps({'messages': [{'from': 'user', 'value': 'hi'}]}))}"],
         2, "has a message without role and content (its keys: from, value)"),
        ("unknown file type", [f"data.path={write(root / 'data.xlsx', 'x')}", "trainer=generic"], 2,
         "unknown format '.xlsx'"),
        ("preference data without rejected column", ["trainer=dpo", f"data.path={chat}",
                                                     "data.prompt_text_column=messages"], 2,
         "dpo requires data.rejected_text_column"),
        # models
        ("path that is not a model", [f"model.name={nomodel}"], 2, "is a folder with no config.json: not a saved model"),
        ("pickle weights", [f"model.name={pickle_model(root)}"], 2, "holds pickle weights only (pytorch_model.bin)"),
        ("reward model that is not a scorer", ["trainer=ppo", f"trainer.rl.reward_model_path={models.tiny_model_dir()}"],
         2, "is not a sequence-classification model"),
        ("fp16 on a CPU", ["training.mixed_precision=fp16"], 2, "needs a CUDA GPU"),
        ("chat data, tokenizer without template", [f"model.name={no_template_model(root)}", f"data.path={chat}"], 2,
         "set trainer.chat_template=chatml"),
    ]


def no_template_model(root: Path) -> str:
    import shutil

    from transformers import AutoTokenizer

    target = root / "no_template"
    if not target.exists():
        shutil.copytree(models.tiny_model_dir(), target)
        tok = AutoTokenizer.from_pretrained(target)
        tok.chat_template = None
        (target / "chat_template.jinja").unlink(missing_ok=True)
        tok.save_pretrained(target)
    return str(target)


@pytest.mark.slow
def test_bad_config_and_input_matrix(tmp_path, monkeypatch, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("the fp16 case needs a machine without a GPU")
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    cases = bad_cases(inputs)
    assert len(cases) >= 25
    failures = []
    for name, argv, code, text in cases:
        cwd = tmp_path / "cwd" / name.replace(" ", "_").replace("/", "_")
        cwd.mkdir(parents=True)
        monkeypatch.chdir(cwd)
        with pytest.raises(SystemExit) as e:
            main(argv)
        err = capsys.readouterr().err
        written = [p for p in cwd.rglob("*") if p.is_file() and ".hydra" not in p.parts and p.name != "train.log"]
        if e.value.code != code or text not in err or "Traceback" in err or written:
            failures.append((name, e.value.code, err[-400:], written))
    assert not failures, "\n\n".join(f"{n}: exit {c}\n{e}\nwritten: {w}" for n, c, e, w in failures)


@pytest.mark.slow
def test_pickle_weights_are_refused_before_loading_and_load_when_allowed(tmp_path, monkeypatch, capsys):
    """Safetensors only, loading included (bug: a model dir holding only pytorch_model.bin trained with exit 0)."""
    pickled = pickle_model(tmp_path)
    monkeypatch.chdir(tmp_path)
    for loader in ("load_causal_lm", "load_tokenizer", "load_sequence_classifier"):
        monkeypatch.setattr(models, loader, lambda *a, **k: pytest.fail("a model was loaded"))
    with pytest.raises(SystemExit) as e:
        main(["trainer=generic", f"model.name={pickled}", "training.max_steps=1", "output_dir=out"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "Traceback" not in err and not (tmp_path / "out").exists()
    assert f"Error: model.name={pickled} holds pickle weights only (pytorch_model.bin), no *.safetensors" in err
    assert "set model.allow_pickle_weights=true to load pickle weights you trust" in err
    monkeypatch.undo()
    out, metrics, _ = train(tmp_path, "trainer=generic", f"model.name={pickled}", "model.allow_pickle_weights=true",
                            "training.max_steps=2", "training.block_size=64")
    assert (out / "model.safetensors").is_file() and metrics["train_loss"] > 0


@pytest.mark.slow
def test_with_hydra_job_chdir_relative_paths_mean_the_launch_dir(tmp_path, monkeypatch):
    """Bug (red team): hydra.job.chdir=true with a relative data.path said "does not exist" for a file in the launch
    dir (the job runs in its run dir), and a relative output_dir would have been made inside the run dir."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.jsonl").write_text((paths.ASSETS_DIR / "data" / "text.jsonl").read_text())
    main(["trainer=generic", "data.path=mine.jsonl", "hydra.job.chdir=true", "training.max_steps=1",
          "training.block_size=64", "output_dir=out"])
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["train_loss"] > 0
    assert str(tmp_path / "mine.jsonl") in (tmp_path / "out" / "config.yaml").read_text()



def test_runs_in_one_process_free_their_model(tmp_path, monkeypatch):
    """run.end_run freezes the heap once, after the first run that succeeded: no run's model is ever frozen (a failed
    one's, held by its traceback, neither), and every run's model and trainer are freed when it ends."""
    import gc
    import weakref

    from autotrain_hydra.trainers import sft as common

    gc.unfreeze()  # this process as a fresh one (earlier tests ran here)
    made = []
    load = models.load_causal_lm
    monkeypatch.setattr(models, "load_causal_lm", lambda *a, **k: made.append(weakref.ref(m := load(*a, **k))) or m)
    fit = common.train_and_collect

    def broken(job, trainer, has_eval):
        raise RuntimeError("out of memory (a test)")

    monkeypatch.setattr(common, "train_and_collect", broken)
    with pytest.raises(RuntimeError):
        train(tmp_path / "failed", "training.max_steps=2")
    gc.collect()
    assert made and made[-1]() is None and gc.get_freeze_count() == 0, "a failed run's model outlived it, or froze"
    monkeypatch.setattr(common, "train_and_collect", fit)
    for n in range(2):
        train(tmp_path / str(n), "training.max_steps=2")
        gc.collect()
        assert gc.get_freeze_count() > 0
        assert all(ref() is None for ref in made), f"run {n}: a model outlived its run"
