"""One owner per run dir, a manifest, all-or-nothing results (rundir.py), and the run-level guarantees built on them:
a NaN never becomes a result, two runs never share a dir, a resume continues its own run with its own recipe, an
overwrite never mixes two runs, a full disk names the last checkpoint, and a run killed at any moment resumes to a
complete dir (the random-kill test)."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autotrain_hydra import paths, rundir
from autotrain_hydra.compat.hydra import compose_config
from autotrain_hydra.run import run
from autotrain_hydra.trainers import common
from tests.helpers import poison_weights_at, python_m

TEMPORARY = (".staging", ".commit.json", ".saving-", ".overwritten-")


def leftovers(out):
    """Temporary files and folders anywhere under ``out``."""
    found = []
    for root, dirs, files in os.walk(out):
        for name in dirs + files:
            if name.startswith(TEMPORARY) or name.endswith(".tmp"):
                found.append(os.path.join(root, name))
    return found


# --------------------------------------------------------------------------------------------------- unit tests
def test_a_second_owner_is_refused_naming_the_holder_and_a_killed_holder_leaves_no_lock(tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from autotrain_hydra import rundir\n"
                               f"with rundir.owned({str(out)!r}):\n print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert f"pid {holder.pid}" in rundir.holder(str(out))
        with pytest.raises(rundir.DirInUse, match=rf"output_dir {out} is in use by another run \(pid {holder.pid} "):
            with rundir.owned(str(out)):
                pass
    finally:
        holder.kill()  # SIGKILL: the kernel releases the lock
        holder.wait()
    assert rundir.holder(str(out)) is None
    with rundir.owned(str(out)):
        assert f"pid {os.getpid()}" in (out / rundir.LOCK).read_text()
    assert rundir.DirInUse("x").exit_code == 2


def test_commit_moves_every_staged_result_and_replaces_the_old_ones(tmp_path):
    out = tmp_path
    (out / "model.safetensors").write_text("old")
    (out / "merged").mkdir()
    (out / "merged" / "old.bin").write_text("old")
    stage = Path(rundir.fresh_staging(str(out)))
    (stage / "model.safetensors").write_text("new")
    (stage / "merged").mkdir()
    (stage / "merged" / "new.bin").write_text("new")
    (stage / "metrics.json").write_text("{}")
    (out / ".overwritten-x").mkdir()
    assert rundir.commit(str(out)) == ["merged", "metrics.json", "model.safetensors"]
    assert (out / "model.safetensors").read_text() == "new" and os.listdir(out / "merged") == ["new.bin"]
    assert leftovers(out) == []


def test_a_commit_cut_short_is_finished_by_the_next_run_and_an_unfinished_save_is_removed(tmp_path):
    out = tmp_path / "cut"
    out.mkdir()
    stage = Path(rundir.fresh_staging(str(out)))
    for name in ("model.safetensors", "metrics.json", "config.yaml"):
        (stage / name).write_text("new")
    (out / rundir.JOURNAL).write_text(json.dumps({"names": ["config.yaml", "metrics.json", "model.safetensors"]}))
    os.replace(stage / "config.yaml", out / "config.yaml")  # killed after the first move
    said = []
    rundir.recover(str(out), said.append)
    assert all((out / n).read_text() == "new" for n in ("model.safetensors", "metrics.json", "config.yaml"))
    assert leftovers(out) == [] and "finished" in said[0]

    before = tmp_path / "before"  # killed while staging: the dir stays as it was
    before.mkdir()
    (before / "metrics.json").write_text("old")
    (Path(rundir.fresh_staging(str(before))) / "metrics.json").write_text("new")
    (before / "run.json.123.tmp").write_text("half")
    checkpoints = before / "checkpoints"
    (checkpoints / "checkpoint-3").mkdir(parents=True)  # its trainer_state.json never written
    (checkpoints / ".saving-abc").mkdir()
    kept = checkpoints / "checkpoint-2"  # complete, but killed while its stamp was being written (CI, stop 23)
    kept.mkdir()
    (kept / "trainer_state.json").write_text("{}")
    (kept / "autotrain_hydra.json.12329.tmp").write_text("{\"run")
    rundir.recover(str(before), said.append)
    assert (before / "metrics.json").read_text() == "old"
    assert leftovers(before) == [] and not (checkpoints / "checkpoint-3").exists()
    assert sorted(os.listdir(kept)) == ["trainer_state.json"]


def test_an_overwrite_sets_the_earlier_run_aside_keeping_this_run_s_hydra_files(tmp_path):
    (tmp_path / "model.safetensors").write_text("A")
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / ".hydra").mkdir()
    aside = rundir.set_aside(str(tmp_path), keep=lambda n: n == ".hydra")
    assert sorted(os.listdir(tmp_path)) == [".hydra", os.path.basename(aside)]
    assert sorted(os.listdir(aside)) == ["checkpoints", "model.safetensors"]
    (tmp_path / rundir.MANIFEST).write_text("{}")  # the new run, refused while loading: all back as it was
    rundir.restore(str(tmp_path), aside)
    assert sorted(os.listdir(tmp_path)) == [".hydra", "checkpoints", "model.safetensors"]


def test_an_overwrite_never_moves_a_dir_a_running_run_holds(tmp_path):
    """Red team: overwrite_output_dir=true into a running sweep's dir moved its trial dirs and study away."""
    sweep = tmp_path / "sweep"
    (sweep / "0").mkdir(parents=True)
    (sweep / "optuna.db").write_text("")
    holder = subprocess.Popen([sys.executable, "-c", "import time; from autotrain_hydra import rundir\n"
                               f"with rundir.owned({str(sweep / '0')!r}):\n print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(rundir.DirInUse, match=rf"holds {sweep / '0'}, in use by a running run \(pid {holder.pid}"):
            rundir.set_aside(str(sweep), keep=lambda n: False)
        assert sorted(os.listdir(sweep)) == ["0", "optuna.db"]
    finally:
        holder.kill()
        holder.wait()


def test_a_resume_with_no_checkpoint_of_its_run_starts_again_with_the_new_recipe(tmp_path):
    """Red team: killed before its first checkpoint, resumed with another lr: the checkpoints it then wrote were
    stamped with the old recipe (and a later resume continued at the wrong rate)."""
    first = rundir.start(str(tmp_path), "generic", "tiny", "d", {"training.lr": {"digest": "a", "value": 0.001}}, False)
    again = rundir.start(str(tmp_path), "generic", "tiny", "d", {"training.lr": {"digest": "b", "value": 0.02}}, True)
    assert again.run_id == first.run_id and rundir.read_manifest(str(tmp_path)).recipe["training.lr"]["value"] == 0.02


def test_a_checkpoint_stamp_holds_no_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_DB_PASSWORD", "dbRTpwZq8x7c6v")
    paths.stamp_checkpoint(str(tmp_path), {"trainer": "generic", "model": "/models/m_dbRTpwZq8x7c6v"})
    assert "dbRTpwZq8x7c6v" not in (tmp_path / paths.STAMP).read_text()


def test_a_changed_recipe_is_listed_key_by_key():
    from autotrain_hydra.schema.recipe import changes, recipe

    a = recipe(compose_config(["training.lr=0.001"]))
    b = recipe(compose_config(["training.lr=0.01", "data.text_column=other", "training.max_steps=99"]))
    assert changes(a, b) == ["data.text_column: changed", "training.lr: 0.001 in the checkpoint, 0.01 now"]
    assert "training.max_steps" not in a and "model.allow_pickle_weights" not in a  # may change on a resume
    # peft.bits shapes a run only with peft=qlora: a checkpoint written before the key existed still resumes
    assert "peft.bits" not in a and "peft.bits" not in recipe(compose_config(["peft=lora"]))
    assert changes(recipe(compose_config(["peft=qlora"])), recipe(compose_config(["peft=qlora", "peft.bits=8"]))) == [
        "peft.bits: 4 in the checkpoint, 8 now"]


def test_a_path_is_the_same_however_it_is_spelled(tmp_path, monkeypatch):
    """Bug (review): with hydra.job.chdir=true a relative data.path is made absolute in the job, so its recipe
    differed from the one validation computed and every resume was refused."""
    from autotrain_hydra.schema.recipe import changes, recipe

    (tmp_path / "d.jsonl").write_text('{"text": "a"}\n')
    monkeypatch.chdir(tmp_path)
    assert changes(recipe(compose_config(["data.path=d.jsonl"])),
                   recipe(compose_config([f"data.path={tmp_path / 'd.jsonl'}"]))) == []


def test_an_edited_reward_function_file_changes_the_recipe(tmp_path, monkeypatch):
    """Red team: a resume went on with a reward function whose file was edited since the checkpoint (the config,
    the same ./rewards.py:f, was the same)."""
    from autotrain_hydra.schema.recipe import changes, recipe

    (tmp_path / "rewards.py").write_text("def f(prompts, completions, **kw):\n    return [1.0] * len(completions)\n")
    monkeypatch.chdir(tmp_path)
    overrides = ["trainer=grpo", "trainer.grpo.reward_funcs=[./rewards.py:f]"]
    before = recipe(compose_config(overrides))
    assert changes(before, recipe(compose_config(["trainer=grpo",
                                                  f"trainer.grpo.reward_funcs=[{tmp_path}/rewards.py:f]"]))) == []
    (tmp_path / "rewards.py").write_text("def f(prompts, completions, **kw):\n    return [0.0] * len(completions)\n")
    assert changes(before, recipe(compose_config(overrides))) == ["trainer.grpo.reward_funcs: changed"]


def test_a_resume_takes_only_its_own_run_s_checkpoints(tmp_path):
    folder = tmp_path / "checkpoints"
    for step, run_id in ((2, "mine"), (4, "mine"), (6, "theirs"), (8, None)):
        path = folder / f"checkpoint-{step}"
        path.mkdir(parents=True)
        (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
        (path / "model.safetensors").write_text("")
        if run_id:
            paths.stamp_checkpoint(str(path), {"trainer": "generic", "model": "tiny", "run_id": run_id})
    said = []
    assert paths.last_complete_checkpoint(str(folder), said.append, run_id="mine") == str(folder / "checkpoint-4")
    assert [s.split(" was written by ")[1] for s in said] == ["another run (no stamp, not mine): skipped",
                                                             "another run (theirs, not mine): skipped"]
    assert paths.last_complete_checkpoint(str(folder)) == str(folder / "checkpoint-8")  # no manifest: any


def test_a_full_disk_is_recognised_however_torch_says_it():
    import errno

    assert common.disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert common.disk_full(RuntimeError("[enforce fail at inline_container.cc] . PytorchStreamWriter failed writing "
                                         "file data/0: file write failed"))
    assert common.disk_full(RuntimeError("basic_ios::clear: iostream error"))
    assert not common.disk_full(RuntimeError("CUDA out of memory"))
    empty = RuntimeError("")
    empty.__cause__ = OSError(errno.ENOSPC, "")
    job = common.Job(cfg=compose_config([]), output_dir="/nowhere")
    assert common.disk_full(empty) and "the disk is full" in str(common.disk_full_error(job, empty))


# ---------------------------------------------------------------------------------------------- runs (slow)
SHORT = ["trainer=generic", "training.block_size=32", "training.batch_size=4", "training.logging_steps=10",
         "training.eval_strategy=no"]


def train(out, *overrides):
    args = [*SHORT, f"output_dir={out}", *overrides]
    run(compose_config(args), args)
    return json.loads((Path(out) / "metrics.json").read_text())


@pytest.mark.slow
def test_a_nan_never_becomes_a_model_a_checkpoint_or_an_objective(tmp_path, monkeypatch):
    """A loss that goes NaN between logged steps stops the run at that step (the guide's 1e30 example); weights that
    are NaN when a checkpoint would be saved stop it before the save. Exit 1, no model, no metrics, no checkpoint
    from NaN; the manifest says failed."""
    out = tmp_path / "lr"
    code = python_m(*SHORT, "training.lr=1e30", "training.scheduler=constant", "training.warmup_ratio=0",
                    "training.max_steps=6", "training.save_steps=3", f"output_dir={out}", cwd=tmp_path)
    err = code.communicate(timeout=300)[0]
    assert code.returncode == 1 and "Traceback" not in err, err[-3000:]
    assert "Error: the training loss became nan at step" in err  # not a logged step: logging_steps=10
    assert not (out / "model.safetensors").exists() and not (out / "metrics.json").exists()
    assert not (out / "checkpoints" / "checkpoint-3").exists()
    assert json.loads((out / "run.json").read_text())["status"] == "failed"

    with monkeypatch.context() as m:  # NaN weights at a checkpoint step: the checkpoint is not written
        poison_weights_at(m, 4)
        with pytest.raises(common.NumericalError, match=r"the weight .* became NaN or infinite at step 4.*Last good "
                                                        r"checkpoint: .*checkpoint-2"):
            train(tmp_path / "ckpt", "training.max_steps=6", "training.save_steps=2")
    assert sorted(os.listdir(tmp_path / "ckpt" / "checkpoints")) == ["checkpoint-2"]


def test_a_model_with_a_nan_weight_is_never_saved(tmp_path):
    import torch

    model = torch.nn.Linear(2, 2)
    with torch.no_grad():
        model.bias[1] = float("inf")
    job = common.Job(cfg=compose_config([]), output_dir=str(tmp_path))
    with pytest.raises(common.NumericalError, match="the weight bias of the trained model is NaN or infinite: "
                                                    "training stopped and no model was saved"):
        common.stage_model(job, model, lambda folder: pytest.fail("written"))
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_two_runs_into_one_dir_the_second_is_refused_at_once(tmp_path):
    """The first run owns its dir from before Hydra writes its .hydra/ there: a second one, through hydra.run.dir or
    output_dir, with overwrite or resume, is refused (exit 2) naming the holder, and the first's files are as they
    were (red team: a second run rewrote the first's .hydra/overrides.yaml before it was refused)."""
    out = tmp_path / "run"
    first = python_m(*SHORT, "training.max_steps=400", f"hydra.run.dir={out}", cwd=tmp_path)
    try:
        deadline = time.time() + 120
        while rundir.holder(str(out)) is None or not (out / ".hydra" / "overrides.yaml").exists():
            assert first.poll() is None and time.time() < deadline, first.communicate()[0][-3000:]
            time.sleep(0.1)
        overrides = (out / ".hydra" / "overrides.yaml").read_text()
        for extra in ([f"hydra.run.dir={out}", "training.seed=777"], [f"output_dir={out}", "overwrite_output_dir=true"],
                      [f"output_dir={out}", "training.resume_from_checkpoint=true"]):
            second = python_m(*SHORT, "training.max_steps=4", *extra, cwd=tmp_path)
            err = second.communicate(timeout=300)[0]
            assert second.returncode == 2 and "Traceback" not in err, err[-3000:]
            assert f"{out} is in use by another run (pid {first.pid} on " in err, err[-3000:]
        assert first.poll() is None  # the first run goes on, untouched
        assert (out / ".hydra" / "overrides.yaml").read_text() == overrides
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=120)


@pytest.mark.slow
def test_a_resume_continues_its_own_run_with_its_own_recipe(tmp_path):
    """Run A, then B over it with overwrite_output_dir=true, B stopped before its results were written: B resumed
    takes B's checkpoint, never A's (A's files were set aside, and removed once B's results are written). A changed
    lr or model is refused, listed key by key. A run stopped after its last checkpoint, before writing its results,
    is finished from that checkpoint."""
    out = tmp_path / "run"
    a = train(out, "training.max_steps=6", "training.save_steps=3", "training.lr=0.001")
    args = [*SHORT, f"output_dir={out}", "training.max_steps=6", "training.save_steps=3", "training.lr=0.002"]
    with pytest.MonkeyPatch.context() as m:
        m.setattr(rundir, "commit", lambda out: (_ for _ in ()).throw(KeyboardInterrupt("killed while saving")))
        with pytest.raises(KeyboardInterrupt):
            run(compose_config([*args, "overwrite_output_dir=true"]), [*args, "overwrite_output_dir=true"])
    assert not (out / "metrics.json").exists()  # A's results are aside, B's not written: never a mix
    b_id = json.loads((out / "run.json").read_text())["run_id"]
    assert b_id != a["run_id"]

    from autotrain_hydra.schema.errors import ConfigError

    for changed, listed in (("training.lr=0.003", "training.lr: 0.002 in the checkpoint, 0.003 now"),
                            ("trainer.name=sft", "was written by trainer=generic")):
        bad = [*args, "training.resume_from_checkpoint=true", changed]
        with pytest.raises(ConfigError, match=listed):
            run(compose_config(bad), bad)

    resume = [*args, "training.resume_from_checkpoint=true"]
    b = run(compose_config(resume), resume)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["run_id"] == b_id and metrics["objective"] == pytest.approx(b)
    assert "results written from checkpoint-6, the run's last step" in metrics["notes"]
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["status"] == "complete" and manifest["checkpoints"] == ["checkpoints/checkpoint-3",
                                                                            "checkpoints/checkpoint-6"]
    for name in manifest["checkpoints"]:
        assert json.loads((out / name / paths.STAMP).read_text())["run_id"] == b_id
    assert leftovers(out) == []
    assert "0.002" in (out / "config.yaml").read_text()

    # the complete run extended to 9 steps, stopped after its last checkpoint while writing: finished from it
    longer = [*args, "training.max_steps=9", "training.resume_from_checkpoint=true"]
    with pytest.MonkeyPatch.context() as m:
        m.setattr(rundir, "commit", lambda out: (_ for _ in ()).throw(KeyboardInterrupt("killed while saving")))
        with pytest.raises(KeyboardInterrupt):
            run(compose_config(longer), longer)
    assert json.loads((out / "metrics.json").read_text())["global_step"] == 6  # the 6-step results, whole
    run(compose_config(longer), longer)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["global_step"] == 9 and "results written from checkpoint-9, the run's last step" in metrics["notes"]
    assert json.loads((out / "run.json").read_text())["step"] == 9


@pytest.mark.slow
def test_a_full_disk_during_a_checkpoint_names_the_last_complete_one(tmp_path, monkeypatch):
    import errno

    import torch

    real = torch.save

    def full(obj, f, *a, **k):
        if "checkpoint-4" in str(f):
            raise OSError(errno.ENOSPC, "No space left on device", str(f))
        return real(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", full)
    from autotrain_hydra.errors import RunError

    with pytest.raises(RunError, match=r"the disk is full: .*Last complete checkpoint: .*checkpoint-2\.\n    fix: "
                                       r"free space") as e:
        train(tmp_path / "o", "training.max_steps=6", "training.save_steps=2")
    assert e.value.exit_code == 1


# --------------------------------------------------------------------------------------- the random-kill test
class ForkServer:
    def __init__(self, cwd):
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("fork_server.py"))], cwd=cwd,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                         [str(Path(__file__).parent.parent), os.environ.get("PYTHONPATH", "")])})

    def ask(self, **request):
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def start(self, args, cwd, log):
        return self.ask(run=list(args), cwd=str(cwd), log=str(log))["pid"]

    def wait(self, pid):
        return self.ask(wait=pid)["code"]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def phase(out):
    """Where a kill landed, from what it left."""
    if (out / rundir.JOURNAL).exists():
        return "commit"
    if (out / rundir.STAGING).exists():
        return "final save"
    if (out / "metrics.json").exists():
        return "after the results"
    folder = out / "checkpoints"
    names = os.listdir(folder) if folder.is_dir() else []
    if any(not paths.checkpoint_complete(str(folder / n)) for n in names):
        return "checkpointing"
    return "training after a checkpoint" if names else "before the first checkpoint"


@pytest.mark.slow
def test_a_run_killed_at_20_random_moments_resumes_to_a_complete_dir(tmp_path):
    """SIGKILL at 20 seeded random moments of a run (from its training to the end of its commit: training,
    checkpointing, final save, commit), then the resume command: after each, the dir is complete (model, tokenizer, config, metrics, card, manifest),
    the model finite, the metrics this run's and no temporary is left."""
    import torch
    from transformers import AutoModelForCausalLM

    args = [*SHORT, "training.max_steps=4", "training.save_steps=2", "training.logging_steps=1"]
    server = ForkServer(tmp_path)
    try:
        for n in range(2):  # the second run's timeline: the first one fills caches
            whole, log = tmp_path / f"whole{n}", tmp_path / "whole.log"
            start, first_checkpoint = time.time(), None
            pid = server.start([*args, f"output_dir={whole}"], tmp_path, log)
            while not (whole / "metrics.json").exists():
                if first_checkpoint is None and (whole / "checkpoints" / "checkpoint-2").exists():
                    first_checkpoint = time.time() - start
                assert time.time() - start < 300, log.read_text()[-3000:]
                time.sleep(0.01)
            end = time.time() - start
            assert server.wait(pid) == 0, log.read_text()[-3000:]
        # the moments, seeded: every other kill uniform over the whole run; the others after the first checkpoint
        # appears, uniform over the rest of the run and a half (its last steps, checkpoint, final save, commit), so
        # that the late moments are reached however loaded the machine is
        rng = random.Random(20261202)
        landed = []
        for i in range(20):
            out, log = tmp_path / f"k{i}", tmp_path / f"k{i}.log"
            pid = server.start([*args, f"output_dir={out}"], tmp_path, log)
            if i % 2:
                deadline = time.time() + 120
                while not (out / "checkpoints" / "checkpoint-2").exists() and time.time() < deadline:
                    time.sleep(0.005)
                time.sleep(rng.uniform(0.0, 1.5 * (end - first_checkpoint)))
            else:
                time.sleep(rng.uniform(0.0, end))
            os.kill(pid, signal.SIGKILL)
            killed = server.wait(pid)
            landed.append(phase(out) if killed == -signal.SIGKILL else "ended first")
            code = server.wait(server.start([*args, f"output_dir={out}", "training.resume_from_checkpoint=true"],
                                            tmp_path, log))
            text = log.read_text()
            assert code in (0, 2) and "Traceback" not in text, text[-3000:]
            if code == 2:  # the run had ended before the kill: the resume is refused, the dir as it was
                assert "resuming would train nothing" in text, text[-3000:]
            for name in ("model.safetensors", "tokenizer.json", "config.yaml", "metrics.json", "README.md",
                         "run.json"):
                assert (out / name).is_file(), (i, landed[-1], name, sorted(os.listdir(out)))
            manifest = json.loads((out / "run.json").read_text())
            metrics = json.loads((out / "metrics.json").read_text())
            assert manifest["status"] == "complete" and metrics["run_id"] == manifest["run_id"], i
            assert metrics["global_step"] == 4 and leftovers(out) == [], (i, leftovers(out))
            model = AutoModelForCausalLM.from_pretrained(out)
            assert all(torch.isfinite(p).all() for p in model.parameters()), i
    finally:
        server.close()
    print("kills landed in:", landed)
    assert len(set(landed) - {"ended first"}) >= 3, landed
