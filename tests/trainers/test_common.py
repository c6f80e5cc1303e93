"""What every trainer shares (trainers/common.py): kill-and-resume, incomplete checkpoints skipped, a NaN loss stops
the run with the last good checkpoint loadable, schedules that never run a step at learning rate 0, batch_size as
examples per step, a run that changes no weight fails, the reported train loss is the end of training's."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from autotrain_hydra import models, paths, rundir
from autotrain_hydra.__main__ import main
from autotrain_hydra.compat.hydra import compose_config
from autotrain_hydra.run import run
from autotrain_hydra.trainers import common
from tests.helpers import poison_weights_at

RESUMABLE = {  # trainer → overrides for a short run with checkpoints every 2 steps
    "generic": ["trainer=generic", "training.block_size=32"],
    "sft": ["trainer=sft", "trainer.max_seq_length=64"],
    "dpo": ["trainer=dpo"],
    "orpo": ["trainer=orpo"],
    "reward": ["trainer=reward"],
    "kto": ["trainer=kto"],
    "grpo": ["trainer=grpo", "trainer.grpo.num_generations=2", "trainer.grpo.max_completion_length=4"],
}
SHORT = ["training.max_steps=8", "training.save_steps=2", "training.logging_steps=1", "training.batch_size=4",
         "training.eval_strategy=no"]


def train(out, *overrides):
    run(compose_config([*SHORT, f"output_dir={out}", *overrides]), list(overrides))
    return json.loads((out / "metrics.json").read_text())


class Crash(RuntimeError):
    pass


def crash_at(monkeypatch, step):
    """Make the run die right after optimizer step ``step`` (the checkpoints before it are on disk)."""
    original = common.finite_loss_guard

    def guard():
        g = original()

        def on_step_end(args, state, control, **kwargs):
            if state.global_step == step:
                raise Crash(f"simulated crash at step {step}")

        g.on_step_end = on_step_end
        return g

    monkeypatch.setattr(common, "finite_loss_guard", guard)


@pytest.mark.slow
@pytest.mark.parametrize("trainer", list(RESUMABLE))
def test_crash_and_resume_ends_like_an_uninterrupted_run(tmp_path, monkeypatch, trainer):
    whole = train(tmp_path / "whole", *RESUMABLE[trainer])
    with monkeypatch.context() as m:
        crash_at(m, 5)
        with pytest.raises(Crash):
            train(tmp_path / "resumed", *RESUMABLE[trainer])
    assert not (tmp_path / "resumed" / "metrics.json").exists()
    saved = sorted(n for n in os.listdir(tmp_path / "resumed" / "checkpoints") if n.startswith("checkpoint-"))
    assert saved == ["checkpoint-2", "checkpoint-4"]
    resumed = train(tmp_path / "resumed", *RESUMABLE[trainer], "training.resume_from_checkpoint=true")
    assert resumed["global_step"] == whole["global_step"] == 8
    assert "resumed from checkpoint-4" in resumed["notes"]
    assert resumed["train_loss"] == pytest.approx(whole["train_loss"], rel=1e-3, abs=1e-3)
    if trainer == "grpo":  # its loss is near 0 by construction: the sampled completions' rewards must match too
        rewards = [[r for _, r in m["history"]["mean_reward"][-2:]] for m in (resumed, whole)]
        assert rewards[0] == pytest.approx(rewards[1])  # steps 7 and 8, after the resume from step 4
        assert resumed["eval_mean_reward_after"] == pytest.approx(whole["eval_mean_reward_after"])


@pytest.mark.slow
def test_sigterm_mid_training_then_resume(tmp_path):
    """`python -m autotrain_hydra` stopped by SIGTERM (exit 130, saying how to go on), then resumed: the same steps
    and the same loss as a run never stopped."""
    out = tmp_path / "run"
    args = [*SHORT, "training.max_steps=12", "trainer.max_seq_length=64", f"output_dir={out}"]

    def start_and_stop(extra, checkpoint, sig):
        log = tmp_path / f"stderr-{sig}"
        with open(log, "w") as err:
            proc = subprocess.Popen([sys.executable, "-m", "autotrain_hydra", *args, *extra], cwd=tmp_path,
                                    stdout=subprocess.DEVNULL, stderr=err)
            deadline = time.time() + 300
            while not paths.checkpoint_complete(str(out / "checkpoints" / checkpoint)):
                assert proc.poll() is None and time.time() < deadline, "the run ended before it could be stopped"
                time.sleep(0.05)
            os.kill(proc.pid, sig)
            code = proc.wait(timeout=120)
        assert not (out / "metrics.json").exists()
        return code, log.read_text()

    code, err = start_and_stop([], "checkpoint-4", signal.SIGTERM)
    assert code == 130 and "Traceback" not in err, err[-2000:]
    assert f"to go on: the same command with output_dir={out} training.resume_from_checkpoint=true" in err
    # (kill -9 at random moments, then resume: tests/test_rundir.py's random-kill test)
    resumed = train(out, "trainer.max_seq_length=64", "training.max_steps=12", "training.resume_from_checkpoint=true")
    whole = train(tmp_path / "whole", "training.max_steps=12", "trainer.max_seq_length=64")
    assert resumed["global_step"] == whole["global_step"] == 12
    assert resumed["train_loss"] == pytest.approx(whole["train_loss"], rel=1e-3, abs=1e-3)


@pytest.mark.slow
def test_incomplete_checkpoint_is_never_taken(tmp_path):
    train(tmp_path / "o", "trainer=sft", "trainer.max_seq_length=64", "training.max_steps=4")
    folder = tmp_path / "o" / "checkpoints"
    half = folder / "checkpoint-6"  # a crash while writing: weights there, trainer_state.json cut short
    half.mkdir()
    (half / "model.safetensors").write_bytes(b"\0" * 16)
    (half / "trainer_state.json").write_text('{"global_step": 6, "log_hist')
    assert paths.last_complete_checkpoint(str(folder)) == str(folder / "checkpoint-4")
    with pytest.raises(common.CheckpointError, match="is not a complete checkpoint"):
        train(tmp_path / "o", "trainer=sft", "trainer.max_seq_length=64", f"training.resume_from_checkpoint={half}")


@pytest.mark.slow
def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM

    poison_weights_at(monkeypatch, 5)  # after checkpoint-4: the weights go NaN
    out = tmp_path / "o"
    with pytest.raises(common.NumericalError, match=r"the training loss became nan at step 6.*Last good checkpoint: "
                                                    r".*checkpoint-4"):
        train(out, "trainer=sft", "trainer.max_seq_length=64")
    assert not (out / "model.safetensors").exists() and not (out / "metrics.json").exists()
    good = AutoModelForCausalLM.from_pretrained(out / "checkpoints" / "checkpoint-4")
    assert all(torch.isfinite(p).all() for p in good.parameters())


@pytest.mark.slow
def test_ppo_crash_and_resume_ends_like_an_uninterrupted_run(tmp_path, monkeypatch):
    from autotrain_hydra.trainers import ppo

    reward = tmp_path / "reward"
    train(reward, "trainer=reward", "training.max_steps=2", "training.save_steps=null")
    args = ["trainer=ppo", f"trainer.rl.reward_model_path={reward}", "trainer.rl.chunk_size=16",
            "trainer.rl.max_new_tokens=4", "trainer.rl.num_ppo_epochs=1", "trainer.rl.mini_batch_size=8",
            "training.max_steps=4", "training.save_steps=1"]
    whole = train(tmp_path / "whole", *args)
    original = ppo.PPO.optimise
    calls = {"n": 0}

    def crashing(self, ro):
        calls["n"] += 1
        if calls["n"] == 3:
            raise Crash("simulated crash in iteration 3")
        return original(self, ro)

    with monkeypatch.context() as m:
        m.setattr(ppo.PPO, "optimise", crashing)
        with pytest.raises(Crash):
            train(tmp_path / "resumed", *args)
    saved = sorted(n for n in os.listdir(tmp_path / "resumed" / "checkpoints") if n.startswith("checkpoint-"))
    assert saved == ["checkpoint-1", "checkpoint-2"]
    resumed = train(tmp_path / "resumed", *args, "training.resume_from_checkpoint=true")
    assert "resumed from checkpoint-2" in resumed["notes"]
    assert [r["iteration"] for r in resumed["ppo_log"]] == [1, 2, 3, 4]
    for a, b in zip(resumed["ppo_log"], whole["ppo_log"]):
        assert a["mean_reward"] == pytest.approx(b["mean_reward"], abs=1e-4)
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-4)
    assert resumed["eval_mean_reward_before"] == pytest.approx(whole["eval_mean_reward_before"])


@pytest.mark.slow
def test_too_long_sft_rows_are_truncated_and_counted(tmp_path):
    m = train(tmp_path / "o", "trainer=sft", "trainer.max_seq_length=24", "training.max_steps=2")
    assert m["sequences_truncated"] > 0
    assert any("training sequences are longer than 24 tokens" in n for n in m["notes"])


# --- what a step is, and that every step trains (the schedule, padding-free batches, the weights-changed check)


import math

import pytest

from autotrain_hydra import cli
from autotrain_hydra.trainers.common import lr_factor

SCHEDULES = ["linear", "cosine", "constant", "constant_with_warmup"]


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize("warmup,total", [(0, 1), (1, 1), (1, 6), (3, 10), (2, 12)])
def test_no_step_of_a_schedule_runs_at_learning_rate_zero(name, warmup, total):
    factors = [lr_factor(name, warmup, total)(s) for s in range(total)]
    assert all(0 < f <= 1 for f in factors), factors
    assert all(a <= b for a, b in zip(factors[: warmup + 1], factors[1: warmup + 1]))  # warm-up rises


def test_schedules_after_warmup():
    assert lr_factor("linear", 2, 12)(2) == 1.0 and lr_factor("linear", 2, 12)(7) == pytest.approx(0.5)
    assert lr_factor("cosine", 0, 10)(5) == pytest.approx(0.5) and lr_factor("constant", 0, 10)(9) == 1.0
    assert lr_factor("linear", 1, 1)(0) == 0.5  # one step with warm-up: half the rate, not 0 (it was 0)


def rows(name, n):
    lines = (paths.ASSETS_DIR / "data" / f"{name}.jsonl").read_text().splitlines()
    return "\n".join(lines[:n]) + "\n"


@pytest.mark.slow
@pytest.mark.parametrize("trainer,sample", [("sft", "chat"), ("generic", "text")])
def test_the_guide_s_example_trains_batch_size_examples_per_step(tmp_path, monkeypatch, trainer, sample):
    """Bug: `autotrain llm --trainer sft ... --epochs 1 --batch-size 4 --chat-template chatml` on 48 rows packed them
    into three 1024-token blocks: one optimizer step, at learning rate 0 (warm-up), and the saved weights were the
    base model's (exit 0). Now: 48 rows / 4 = 12 steps, the first at a learning rate above 0, and weights change."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.jsonl").write_text(rows(sample, 48))
    model = str(models.tiny_model_dir())
    flags = ["--trainer", trainer, "--model", model, "--data-path", "./data.jsonl", "--lr", "2e-5", "--epochs", "1",
             "--batch-size", "4", "--output-dir", "./out"]
    if trainer == "sft":
        flags += ["--chat-template", "chatml"]
    assert cli.llm(flags) == 0
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["global_step"] == 12 and m["weights_changed"] is True
    first_step, first_lr = m["history"]["learning_rate"][0]
    assert first_step == 1 and first_lr > 0
    # packing is the opt-in: 48 short rows in 1024-token rows is one step
    assert cli.llm([*flags[:-2], "--output-dir", "./packed", "--packing"]) == 0
    assert json.loads((tmp_path / "packed" / "metrics.json").read_text())["global_step"] == 1


@pytest.mark.slow
def test_a_run_that_changes_no_weight_fails_loudly(tmp_path, monkeypatch, capsys):
    """A learning rate too small for any weight to move: the results are written, metrics.json says
    weights_changed=false, and the command fails (exit 1) saying so."""

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(["trainer=generic", "training.optimizer=sgd", "training.lr=1e-30", "training.max_steps=2",
              "output_dir=out", "training.eval_strategy=no"])
    assert stop.value.code == 1
    err = capsys.readouterr().err
    assert "Error: the run changed no weight of the model in 2 optimizer step(s)" in err and "Traceback" not in err
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["weights_changed"] is False and math.isfinite(m["train_loss"])


@pytest.mark.slow
def test_the_train_loss_reported_is_the_end_of_training_s(tmp_path):
    """Bug: a run shorter than training.logging_steps reported its first logged loss as train_loss."""
    from autotrain_hydra.compat.hydra import compose_config
    from autotrain_hydra.run import run

    overrides = ["trainer=generic", "training.max_steps=4", "training.logging_steps=10", "training.lr=5e-3",
                 "training.batch_size=4", f"output_dir={tmp_path}/o", "data.valid_path=null"]
    assert run(compose_config(overrides), overrides) == pytest.approx(
        json.loads((tmp_path / "o" / "metrics.json").read_text())["train_loss"])
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    steps = [s for s, _ in m["history"]["train"]]
    assert steps == [1, 4] and m["train_loss"] == m["history"]["train"][-1][1] != m["first_train_loss"]


@pytest.mark.slow
def test_a_resume_that_trains_nothing_fails_and_keeps_the_model(tmp_path):
    """A finished run resumed with the same length runs no step: it fails (exit 1) before saving, and the model and
    metrics of the finished run are untouched. The checkpoints say which trainer wrote them."""
    from autotrain_hydra.errors import NothingTrained

    out = tmp_path / "run"
    args = ["trainer=generic", "training.block_size=32", "training.epochs=1", "training.batch_size=16",
            "training.save_steps=3", "training.eval_strategy=no", "training.logging_steps=1", f"output_dir={out}"]
    run(compose_config(args), args)
    stamp = json.loads((out / "checkpoints" / "checkpoint-6" / paths.STAMP).read_text())
    manifest = json.loads((out / "run.json").read_text())
    assert stamp["trainer"] == "generic" and stamp["model"] == "tiny" and stamp["run_id"] == manifest["run_id"]

    def results():  # the lock is bookkeeping: a later run rewrites its holder
        return {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file() and p.name != rundir.LOCK}

    before = results()
    again = [*args, "training.resume_from_checkpoint=true"]
    with pytest.raises(NothingTrained, match="resumed from .*checkpoint-6 at step 6 and ran no step"):
        run(compose_config(again), again)
    assert results() == before


def test_the_trainer_callback_stops_at_the_next_step_when_asked():
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from autotrain_hydra.processes import sigterm_as_interrupt
    from autotrain_hydra.trainers.common import stop_when_asked

    callback, args = stop_when_asked(), TrainingArguments(output_dir="/tmp/unused", report_to=[])
    callback.on_step_end(args, TrainerState(), TrainerControl())  # not asked: nothing
    with sigterm_as_interrupt():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 1) if hasattr(signal, "sigtimedwait") else None
        except KeyboardInterrupt:
            pass
        with pytest.raises(KeyboardInterrupt, match="signal 15"):
            callback.on_step_end(args, TrainerState(), TrainerControl())


@pytest.mark.slow
def test_a_run_extended_on_resume_trains_its_new_steps_at_the_schedule_s_rate(tmp_path):
    """Red team: a resume with a longer training.max_steps trained its first new step at the old schedule's last
    rate (0 at its end), so a 2 -> 3 step extension changed no weight."""
    import torch
    from safetensors.torch import load_file

    from tests.helpers import train_in

    base = ["training.warmup_ratio=0", "training.logging_steps=1", "training.save_steps=2"]
    out, first, _ = train_in(tmp_path, base, "training.max_steps=2")
    _, resumed, _ = train_in(tmp_path, base, "training.max_steps=3", "training.resume_from_checkpoint=true")
    rates = dict(resumed["history"]["learning_rate"])
    assert rates[3] == pytest.approx(1e-3 * (1 - 2 / 3))  # linear decay over the 3 steps, from the tiny preset's lr
    checkpoint = load_file(str(out / "checkpoints" / "checkpoint-2" / "model.safetensors"))
    final = load_file(str(out / "model.safetensors"))
    assert any(not torch.equal(final[k], v) for k, v in checkpoint.items())
