"""Secrets kept out of written files and log lines (``autotrain_hydra.secrets``): which values are secrets, their
redaction, a config written with its ``${oc.env:...}`` as written, log records, and a sweep whose storage and trial
configs come from the environment."""

import io
import logging
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from autotrain_hydra import secrets

TOKEN = "hf_SECRETsecret1234567890"


@pytest.mark.parametrize("name, secret", [
    ("HF_TOKEN", True), ("HUGGING_FACE_HUB_TOKEN", True), ("WANDB_API_KEY", True), ("MY_DB_PASSWORD", True),
    ("PGPASSWORD", True), ("DB_PASSWD", True), ("DB_PASS", True), ("AWS_SECRET_ACCESS_KEY", True),
    ("GOOGLE_APPLICATION_CREDENTIALS", True), ("GITHUB_AUTH", True), ("OPENAI_APIKEY", True), ("api_key", True),
    ("SMTP_PASS", True),
    ("TOKENIZERS_PARALLELISM", False), ("OPTUNA_STORAGE", False), ("HOME", False), ("PWD", False),
    ("XAUTHORITY", False), ("KEYBOARD_LAYOUT", False), ("AUTHOR", False), ("BYPASS_LIST", False),
])
def test_which_environment_variables_hold_secrets(name, secret):
    assert secrets.looks_secret(name) is secret


def test_redact_replaces_secret_values_and_url_passwords(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("SHORT_TOKEN", "abc")  # shorter than MIN_LENGTH: left alone
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "falsefalse")  # not a secret name
    monkeypatch.setenv("OPTUNA_STORAGE", "postgresql://optuna:pg%40Pass-w0rd@db:5432/studies")
    text = (f"token {TOKEN}; abc; falsefalse; storage postgresql://optuna:pg%40Pass-w0rd@db:5432/studies; "
            "the password alone: pg%40Pass-w0rd, decoded pg@Pass-w0rd")
    assert secrets.redact(text) == ("token ***; abc; falsefalse; storage postgresql://optuna:***@db:5432/studies; "
                                    "the password alone: ***, decoded ***")
    # a URL's password is redacted wherever the URL is, whatever its length (a password may hold @ : /)
    assert secrets.redact_url("postgresql://optuna:s3cr@t@db:5432/studies") == "postgresql://optuna:***@db:5432/studies"
    assert secrets.redact_url("mysql+pymysql://u:a/b:c@host/db") == "mysql+pymysql://u:***@host/db"
    assert secrets.redact_url("redis://:pw@cache:6379") == "redis://:***@cache:6379"
    for kept in ("sqlite:////shared/optuna.db", "http://localhost:8080/x", "user@example.com", "a: b@c"):
        assert secrets.redact(kept) == kept
    # plain values: strings redacted (keys too), numbers and the rest unchanged
    assert secrets.redact_obj({"a": [TOKEN, 1.5, None, True], TOKEN: ("x", 7)}) == \
        {"a": ["***", 1.5, None, True], "***": ("x", 7)}


def test_a_config_is_written_with_its_env_interpolations_as_written(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("OPTUNA_STORAGE", "postgresql://optuna:pgPassw0rd@db:5432/studies")
    monkeypatch.setenv("DATA_ROOT", "/data/sets")
    monkeypatch.setenv("SEED", "42")
    cfg = OmegaConf.create({
        "model": {"revision": "${oc.env:HF_TOKEN}", "name": "tiny"},
        "copy": "${model.revision}",  # another interpolation of the secret: shown as the variable's interpolation
        "sweep": {"storage": "${oc.env:OPTUNA_STORAGE}"},
        "data": {"path": "${oc.env:DATA_ROOT}/train.jsonl", "other": "${data.path}"},
        "seed": "${oc.env:SEED}", "lr": 1e-3, "typed": TOKEN, "url": "postgresql://u:typedPassw0rd@h/db",
        "list": ["${oc.env:HF_TOKEN}", 3],
    })
    raw, resolved = OmegaConf.to_container(cfg, resolve=False), OmegaConf.to_container(cfg, resolve=True)
    out = secrets.config_as_written(raw, resolved)
    assert out == {
        "model": {"revision": "${oc.env:HF_TOKEN}", "name": "tiny"}, "copy": "${oc.env:HF_TOKEN}",
        "sweep": {"storage": "${oc.env:OPTUNA_STORAGE}"},
        "data": {"path": "${oc.env:DATA_ROOT}/train.jsonl", "other": "${oc.env:DATA_ROOT}/train.jsonl"},
        "seed": "${oc.env:SEED}", "lr": 1e-3, "typed": "***", "url": "postgresql://u:***@h/db",
        "list": ["${oc.env:HF_TOKEN}", 3]}
    text = OmegaConf.to_yaml(out)
    assert TOKEN not in text and "pgPassw0rd" not in text and "typedPassw0rd" not in text
    assert OmegaConf.create(text).model.revision == TOKEN  # read back, it resolves as it did
    # text that quotes the config's values (a model card, metrics.json, a sweep's storage)
    assert secrets.written(f"storage postgresql://optuna:pgPassw0rd@db:5432/studies, data /data/sets/x, {TOKEN}",
                           raw) == "storage ${oc.env:OPTUNA_STORAGE}, data ${oc.env:DATA_ROOT}/x, ${oc.env:HF_TOKEN}"
    # for the ranks of a launched run (they inherit the environment): strings only, numbers stay numbers
    spec = secrets.with_env_interpolations(raw, resolved, strings_only=True)
    assert spec["model"]["revision"] == "${oc.env:HF_TOKEN}"
    assert spec["data"]["path"] == "${oc.env:DATA_ROOT}/train.jsonl"
    again = OmegaConf.create(spec)
    assert again.model.revision == TOKEN and again.data.other == "/data/sets/train.jsonl" and again.lr == 1e-3


def test_the_spec_of_a_launched_run_holds_no_secret_and_resolves_to_the_same_config(monkeypatch):
    """launch.train writes the config for its ranks with each string from ${oc.env:...} as written (the ranks inherit
    the environment); read back by a rank, it is the same config, numbers included."""
    import json

    from tests.helpers import resolved

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("SEED", "7")
    cfg = resolved("model.revision=${oc.env:HF_TOKEN}", "training.seed=${oc.env:SEED}", "features=[eval]")
    spec = json.dumps(secrets.with_env_interpolations(OmegaConf.to_container(cfg, resolve=False),
                                                      OmegaConf.to_container(cfg, resolve=True), strings_only=True))
    assert TOKEN not in spec and "${oc.env:HF_TOKEN}" in spec
    rank = OmegaConf.create(json.loads(spec))  # as autotrain_hydra.worker reads it
    assert OmegaConf.to_container(rank, resolve=True) == OmegaConf.to_container(cfg, resolve=True)
    assert rank.training.seed == 7


def test_no_log_record_carries_a_secret(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    stream = io.StringIO()
    logger = logging.getLogger("tests.secrets.later")
    logger.propagate = False
    secrets.guard_logging()
    handler = logging.StreamHandler(stream)  # a handler made after guard_logging: the record factory redacts
    logger.addHandler(handler)
    try:
        logger.warning("revision %s for postgresql://u:pgPassw0rd@db/x", TOKEN)
        try:
            raise ValueError(f"revision {TOKEN} not found")
        except ValueError:
            logger.exception("failed")
        # a record made without the factory is redacted by the handler filter guard_logging puts on handlers
        secrets.guard_logging()
        handler.handle(logging.makeLogRecord({"msg": "made elsewhere: %s", "args": (TOKEN,), "levelno": 30}))
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert TOKEN not in text and "pgPassw0rd" not in text
    assert "revision *** for postgresql://u:***@db/x" in text and "ValueError: revision *** not found" in text
    assert "made elsewhere: ***" in text


@pytest.mark.slow
def test_a_sweep_writes_no_secret(tmp_path, monkeypatch):
    """``sweep.storage=${oc.env:OPTUNA_STORAGE}`` (the way docs/scaling.md gives a database password) and a token
    read through ``${oc.env:...}``, and a password typed as it is: no file of the sweep dir holds any of them; each
    trial's config.yaml and the results keep the interpolation."""
    from autotrain_hydra.__main__ import main

    storage = f"sqlite:///{tmp_path}/db/optunaSECRETstore.db"
    values = {"HF_TOKEN": TOKEN, "WANDB_API_KEY": "wandbSECRET0987654321abcdef", "MY_DB_PASSWORD": "dbPASSWORDsecret77",
              "OPTUNA_STORAGE": storage}
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(tmp_path)
    main(["features=[sweep]", "sweep.n_trials=1", "sweep.sampler=random", "training.max_steps=2",
          "sweep.storage=${oc.env:OPTUNA_STORAGE}", "model.revision=${oc.env:HF_TOKEN}",
          "distillation.teacher_model=dbPASSWORDsecret77"])
    (sweep_dir,) = Path(tmp_path, "multirun").glob("*/*/*")
    files = [p for p in sweep_dir.rglob("*") if p.is_file()]
    assert {"trials.csv", "optimization_results.yaml", "config.yaml", "metrics.json", "train.log",
            "README.md"} <= {p.name for p in files}
    for p in files:
        data = p.read_bytes()
        for name, v in values.items():
            assert v.encode() not in data, (p, name)
    trial = OmegaConf.load(sweep_dir / "0" / "config.yaml")
    raw = OmegaConf.to_container(trial, resolve=False)
    assert raw["sweep"]["storage"] == "${oc.env:OPTUNA_STORAGE}" and raw["model"]["revision"] == "${oc.env:HF_TOKEN}"
    assert OmegaConf.load(sweep_dir / "optimization_results.yaml").storage == storage  # it resolves as written
    assert "${oc.env:OPTUNA_STORAGE}" in (sweep_dir / "optimization_results.yaml").read_text()


@pytest.mark.slow
def test_a_multirun_writes_no_typed_secret(tmp_path, monkeypatch):
    """``-m`` (Hydra's basic sweeper) with a token typed as it is in an override: Hydra's multirun.yaml (the sweep's
    config, overrides included) and each job's files are redacted, also where a job's trainer is not the one the
    sweep dir was named after."""
    from autotrain_hydra.__main__ import main

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.chdir(tmp_path)
    main(["-m", "trainer=sft,dpo", "training.max_steps=1", f"distillation.teacher_model={TOKEN}",
          "hydra.job.chdir=true"])  # jobs in their own dirs, and of other trainers than the sweep dir's name says
    (sweep_dir,) = Path(tmp_path, "multirun").glob("*/*/*")  # one sweep dir, nothing made beside it
    files = [p for p in sweep_dir.rglob("*") if p.is_file()]
    assert {"multirun.yaml", "config.yaml", "overrides.yaml"} <= {p.name for p in files}
    for p in files:
        assert TOKEN.encode() not in p.read_bytes(), p
    assert "distillation.teacher_model=***" in (sweep_dir / "multirun.yaml").read_text()


def test_scrub_file_rewrites_whole_keeps_the_mode_and_follows_a_link(tmp_path, monkeypatch):
    """A file with a secret is rewritten redacted, its mode kept, no temporary file left; a link's target is the file
    rewritten (the link stays a link); a file without one is not touched; a failed write leaves the file as it was."""
    import os

    from autotrain_hydra import secrets

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    target = tmp_path / "multirun.yaml"
    target.write_text(f"overrides: [model.revision={TOKEN}]\n")
    os.chmod(target, 0o640)
    link = tmp_path / "link.yaml"
    link.symlink_to(target)
    assert secrets.scrub_file(str(link)) is True
    assert link.is_symlink() and target.read_text() == "overrides: [model.revision=***]\n"
    assert oct(target.stat().st_mode & 0o777) == oct(0o640)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.yaml", "multirun.yaml"]
    clean = tmp_path / "clean.yaml"
    clean.write_text("nothing: here\n")
    before = clean.stat().st_mtime_ns
    assert secrets.scrub_file(str(clean)) is False and clean.stat().st_mtime_ns == before
    target.write_text(f"again: {TOKEN}\n")

    def failing_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        secrets.scrub_file(str(target))
    assert target.read_text() == f"again: {TOKEN}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean.yaml", "link.yaml", "multirun.yaml"]
