"""launcher=... presets and their rules, hydra/launcher=slurm, the accelerate config presets; the launch plan; real
multi-process runs (launcher=multiprocess over gloo, submitit_local)."""

import json
import os
import re
import signal
import textwrap
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from autotrain_hydra import models, paths
from autotrain_hydra.__main__ import main
from autotrain_hydra.schema.params import STRATEGIES
from tests.helpers import check, fake_reward_dir, messages, python_m
from tests.helpers import compose as compose_app
from tests.test_guide_examples import guide_folder


@pytest.mark.parametrize("preset,name,strategy", [
    ("local", "local", "ddp"), ("multiprocess", "multiprocess", "ddp"), ("fsdp", "multiprocess", "fsdp"),
    ("deepspeed_zero2", "multiprocess", "deepspeed_zero2"), ("deepspeed_zero3", "multiprocess", "deepspeed_zero3"),
])
def test_launcher_presets_compose_and_validate(preset, name, strategy):
    cfg = compose_app(f"launcher={preset}")
    assert (cfg.launcher.name, cfg.launcher.strategy, cfg.launcher.num_processes) == (name, strategy, None)
    report = check(f"launcher={preset}")
    assert not report.errors and not report.warnings, report.render()


def test_multinode_preset_validates_with_its_settings():
    cfg = compose_app("launcher=multinode")
    assert (cfg.launcher.num_machines, cfg.launcher.main_process_port) == (2, 29500)
    report = check("launcher=multinode", "launcher.machine_rank=1", "launcher.main_process_ip=10.0.0.1",
                   "output_dir=/shared/run")
    assert not report.errors, report.render()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_accelerate_presets_are_valid_accelerate_configs(strategy):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(paths.config_dir() / "accelerate" / f"{strategy}.yaml"))
    expected = {"ddp": "MULTI_GPU", "fsdp": "FSDP", "deepspeed_zero2": "DEEPSPEED", "deepspeed_zero3": "DEEPSPEED"}
    assert config.distributed_type.value == expected[strategy]
    if strategy == "fsdp":
        assert config.fsdp_config["fsdp_version"] == 2
        assert config.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"  # save_pretrained gets full weights
    if strategy.startswith("deepspeed"):
        assert config.deepspeed_config["zero_stage"] == int(strategy[-1])


def test_keys_set_for_the_local_launcher_are_warned_about():
    report = check("launcher.num_processes=4", "launcher.strategy=fsdp")
    assert messages(report, "warning") == [
        "num_processes only applies with launcher=multiprocess or launcher=multinode, will be ignored",
        "strategy only applies with launcher=multiprocess or launcher=multinode, will be ignored"]
    assert not report.errors


def test_ppo_is_refused_with_a_multiprocess_launcher():
    report = check("trainer=ppo", f"trainer.rl.reward_model_path={fake_reward_dir()}", "launcher=multiprocess")
    assert messages(report, "error") == [
        "PPO trains in one process: its rollouts and updates are not sharded across processes"]
    assert "use launcher=local for trainer=ppo" in report.render()


@pytest.mark.parametrize("overrides,error", [
    (("launcher=multiprocess", "launcher.num_machines=2"), "launcher=multiprocess runs on one machine"),
    (("launcher=multinode", "launcher.num_machines=1"), "launcher=multinode needs launcher.num_machines >= 2"),
    (("launcher=multinode", "launcher.machine_rank=2"),
     "launcher.machine_rank must be below launcher.num_machines (2)"),
    (("launcher=multiprocess", "launcher.accelerate_config=/no/such/file.yaml"),
     "launcher.accelerate_config is not a file"),
    (("launcher=fsdp", "peft=lora", "peft.merge_adapter=true"),
     "peft.merge_adapter=true: merging a LoRA adapter needs the whole model in one process, and "
     "launcher.strategy=fsdp shards it"),
    (("launcher=deepspeed_zero3", "trainer=reward", "peft=lora", "data.rejected_text_column=rejected"),
     "the reward scorer is saved merged: merging a LoRA adapter needs the whole model in one process, and "
     "launcher.strategy=deepspeed_zero3 shards it"),
])
def test_launcher_errors_exact_text(overrides, error):
    report = check(*overrides)
    assert error in messages(report, "error"), report.render()


def test_own_accelerate_config_replaces_the_strategy(tmp_path):
    own = tmp_path / "mine.yaml"
    own.write_text("distributed_type: MULTI_GPU\n")
    report = check("launcher=multiprocess", f"launcher.accelerate_config={own}", "launcher.strategy=fsdp")
    assert messages(report, "warning") == [
        "launcher.strategy is replaced by launcher.accelerate_config, will be ignored"]
    assert not report.errors
    assert not check("launcher=multiprocess", f"launcher.accelerate_config={own}").issues
    # a sharding strategy that is replaced by the user's own file is not checked as one
    assert not check("launcher=multiprocess", f"launcher.accelerate_config={own}", "peft=lora",
                     "peft.merge_adapter=true").errors


def test_slurm_preset_sets_submitit_resources_from_the_launcher():
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(paths.config_dir()), version_base="1.3"):
            cfg = compose("config", overrides=["hydra/launcher=slurm", "launcher=multinode", "launcher.num_machines=4",
                                               "hydra.launcher.partition=gpu"], return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (4, 1, 8)
    assert (launcher.partition, launcher.timeout_min) == ("gpu", 1440)


# --- launched runs: the plan, and real processes (launcher=multiprocess, submitit)
EXPERIMENT = ["+experiment=sft_mistral_chatml", "model=tiny", "training.max_steps=6", "training.logging_steps=1",
              "training.save_steps=3", "training.lr=1e-3", "data.valid_path=data/test.jsonl"]  # batch 4 (the guide)

SAVE_SPY = textwrap.dedent("""
    import importlib.abc, importlib.util, os, sys

    class _Spy(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name != "transformers.modeling_utils":
                return None
            sys.meta_path.remove(self)
            spec = importlib.util.find_spec(name)
            run = spec.loader.exec_module

            def exec_module(module):
                run(module)
                original = module.PreTrainedModel.save_pretrained

                def save_pretrained(self, save_directory, *args, **kwargs):
                    with open(os.environ["SAVE_SPY_LOG"], "a") as f:
                        f.write(f"{os.environ.get('RANK', '-')} {save_directory}\\n")
                    return original(self, save_directory, *args, **kwargs)

                module.PreTrainedModel.save_pretrained = save_pretrained

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, _Spy())
""")

SWEEP = ["features=[sweep]", "sweep.sampler=random", "sweep.study_name=shared", "training.max_steps=2",
         "training.logging_steps=1"]


def layout(run_dir: Path):
    """Every file of a run dir, relative (the content of checkpoint folders included). A checkpoint holds one RNG
    state per rank (rng_state.pth; rng_state_0.pth, rng_state_1.pth): written as rng_state*.pth."""
    return sorted({re.sub(r"rng_state(_\d+)?\.pth$", "rng_state*.pth", str(p.relative_to(run_dir)))
                   for p in run_dir.rglob("*") if p.is_file()})


def losses(run_dir: Path):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return [loss for _, loss in metrics["history"]["train"]], metrics


@pytest.mark.slow
def test_same_experiment_in_one_process_two_processes_and_submitit(tmp_path, monkeypatch):
    """The same experiment file: in this process, in 2 data-parallel processes (half the batch each: the same global
    batch), and as a submitit_local job. One output dir each, the same layout, the same losses; in the 2-process run
    rank 0 alone saves."""
    root = guide_folder(tmp_path / "guide")
    spy = tmp_path / "spy"
    spy.mkdir()
    (spy / "sitecustomize.py").write_text(SAVE_SPY)
    saves = tmp_path / "saves.log"
    two = python_m(*EXPERIMENT, "launcher=multiprocess", "launcher.num_processes=2", "training.batch_size=2",
                   "report_to=[wandb]", cwd=root,
                   env={"PYTHONPATH": os.pathsep.join([str(spy), os.environ.get("PYTHONPATH", "")]),
                        "SAVE_SPY_LOG": str(saves), "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path)})
    out, _ = two.communicate(timeout=600)
    assert two.returncode == 0, out[-4000:]

    monkeypatch.chdir(root)
    main([*EXPERIMENT, f"hydra.run.dir={tmp_path / 'one'}"])
    one = tmp_path / "one"
    main([*EXPERIMENT, "hydra/launcher=submitit_local", f"hydra.sweep.dir={tmp_path / 'submitit'}"])  # -m implied
    job = tmp_path / "submitit" / "0"

    (run_dir,) = [p for p in (root / "outputs").glob("*/*/*")]  # exactly one run dir for both ranks
    assert sorted(p.name for p in root.iterdir()) == ["data", "outputs"]
    assert layout(run_dir) == layout(one) == layout(job)
    assert "checkpoints/checkpoint-6/model.safetensors" in layout(run_dir)

    two_losses, two_metrics = losses(run_dir)
    one_losses, one_metrics = losses(one)
    job_losses, _ = losses(job)
    assert two_metrics["world_size"] == 2 and "world_size" not in one_metrics
    assert len(two_losses) == 6 and two_losses == pytest.approx(one_losses, rel=1e-3)
    assert job_losses == pytest.approx(one_losses, rel=1e-6)
    assert two_metrics["eval_loss"] == pytest.approx(one_metrics["eval_loss"], rel=5e-3)
    assert two_losses[-1] < two_losses[0]

    # rank 0 alone wrote models: the two checkpoints and the final model, once each
    records = [line.split(" ", 1) for line in saves.read_text().splitlines()]
    assert {rank for rank, _ in records} == {"0"}, records
    assert len([p for _, p in records if p.rstrip("/").endswith(".staging")]) == 1 and len(records) == 3
    log = (run_dir / "train.log").read_text()
    assert "[rank 0/2]" in log and "rank 0 of 2: training done" in log and "[rank 1/2]" not in log
    assert "[rank 1/2]" in out  # the other rank's lines reach the console, marked

    # report_to=[wandb]: the one W&B run is rank 0's, and its summary has the run's numbers and the objective, as a
    # one-process run's has (a W&B sweep reads its metric there; before, only the Trainer's eval/loss keys were there)
    (run_file,) = (tmp_path / "wandb").glob("offline-run-*/run-*.wandb")
    summary = offline_wandb_summary(run_file)
    assert two_metrics["objective_name"] == "eval_loss"
    assert summary["objective"] == pytest.approx(two_metrics["objective"])
    assert summary["eval_loss"] == pytest.approx(two_metrics["eval_loss"])
    assert summary["train_loss"] == pytest.approx(two_metrics["train_loss"])

    from transformers import AutoModelForCausalLM, LlamaForCausalLM

    model = AutoModelForCausalLM.from_pretrained(run_dir)
    base = AutoModelForCausalLM.from_pretrained(models.tiny_model_dir())
    assert isinstance(model, LlamaForCausalLM)
    assert any((a - b).abs().max() > 0 for a, b in zip(model.parameters(), base.parameters()))


def _plan(*overrides):
    from autotrain_hydra import launch
    from tests.helpers import compose

    return launch.plan(compose(*overrides))


def _gpus(monkeypatch, n):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)


@pytest.mark.parametrize("overrides,gpus,text", [
    (("launcher=multiprocess",), 0,
     "launcher.num_processes=null means one process per GPU, and this machine has no GPU"),
    (("launcher=multiprocess", "launcher.num_processes=4"), 2,
     "launcher.num_processes=4, but this machine has 2 GPU(s): one process per GPU"),
    (("launcher=fsdp", "launcher.num_processes=2"), 0,
     "launcher.strategy=fsdp shards the model across CUDA GPUs, and this machine has none"),
    (("launcher=deepspeed_zero3",), 2, "launcher.strategy=deepspeed_zero3 needs the deepspeed package"),
])
def test_launch_plan_refuses_what_this_machine_cannot_run(overrides, gpus, text, monkeypatch):
    import importlib.util

    from autotrain_hydra.errors import HardwareError

    if gpus:
        _gpus(monkeypatch, gpus)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "deepspeed" else real(name, *a))
    with pytest.raises(HardwareError, match="fix: ") as e:
        _plan(*overrides)
    assert str(e.value).startswith(text)


def test_multinode_by_hand_needs_address_rank_and_output_dir(monkeypatch):
    from autotrain_hydra.schema.errors import ConfigError

    for var in ("SLURM_JOB_ID", "SLURM_NODEID", "SLURM_JOB_NUM_NODES", "SLURM_JOB_NODELIST"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError) as e:
        _plan("launcher=multinode", "launcher.num_processes=2")
    assert [i.key for i in e.value.report.errors] == ["launcher.main_process_ip", "launcher.machine_rank",
                                                      "output_dir"]


def test_multinode_under_slurm_reads_rank_and_main_node_from_the_job(monkeypatch):
    from autotrain_hydra import launch
    from autotrain_hydra.schema.errors import ConfigError

    _gpus(monkeypatch, 2)
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.setenv("SLURM_NODEID", "1")
    monkeypatch.setenv("SLURM_JOB_NUM_NODES", "2")
    monkeypatch.setenv("SLURM_JOB_NODELIST", "gpu[07-08]")
    p = _plan("launcher=multinode")
    assert (p.num_processes, p.num_machines, p.machine_rank, p.main_process_ip, p.main_process_port) == \
        (2, 2, 1, "gpu07", 29500)
    assert p.mixed_precision == "bf16" and not p.cpu
    cmd = launch.command(p, "/tmp/spec.json")
    args = dict(zip(cmd[3::2], cmd[4::2]))
    assert args["--num_processes"] == "4" and args["--machine_rank"] == "1" and args["--main_process_ip"] == "gpu07"
    assert args["--config_file"].endswith("configs/accelerate/ddp.yaml")
    assert cmd[-3:] == ["-m", "autotrain_hydra.worker", "/tmp/spec.json"]
    with pytest.raises(ConfigError, match="launcher.num_machines=3, but this SLURM job has 2 nodes"):
        _plan("launcher=multinode", "launcher.num_machines=3")


def test_cpu_plan_uses_gloo_and_a_free_port():
    import torch

    from autotrain_hydra import launch

    if torch.cuda.is_available():
        pytest.skip("a CPU-only machine")
    p = _plan("launcher=multiprocess", "launcher.num_processes=2")
    assert (p.world_size, p.cpu, p.mixed_precision, p.num_machines) == (2, True, "no", 1)
    assert 1024 < p.main_process_port < 65536
    assert "--main_process_ip" not in launch.command(p, "spec.json")


def test_a_failed_rank_s_error_is_raised_in_the_launching_process(tmp_path):
    """The error a rank had (its type and message) is what the run reports, so its exit code and text are those of a
    one-process run; rank 0's own result comes first, else the lowest failed rank's."""
    from autotrain_hydra import launch
    from autotrain_hydra.errors import DataError
    from autotrain_hydra.trainers.common import Job

    p = launch.Plan(2, 1, 0, None, 1234, "ddp.yaml", "no", True)
    job = Job(cfg=None, output_dir=str(tmp_path))
    result = tmp_path / "result.json"
    (tmp_path / "result.json.rank1").write_text(json.dumps(
        {"ok": False, "error_type": "DataError", "error_module": "autotrain_hydra.data", "message": "no column x"}))
    with pytest.raises(DataError, match="^no column x$"):
        launch._collect(job, str(result), 1, p)
    result.write_text(json.dumps({"ok": True, "metrics": {"train_loss": 1.5}, "job_metrics": {"n": 3},
                                  "notes": ["a note"]}))
    assert launch._collect(job, str(result), 0, p) == {"train_loss": 1.5, "world_size": 2}
    assert job.metrics == {"n": 3} and job.notes == ["a note"]
    result.unlink()
    (tmp_path / "result.json.rank1").unlink()
    from autotrain_hydra.errors import RunError

    with pytest.raises(RunError, match=r"the 2 training processes failed \(accelerate launch exited with 1\)"):
        launch._collect(job, str(result), 1, p)


def offline_wandb_summary(run_file: Path) -> dict:
    """The summary of an offline W&B run, read from its ``run-<id>.wandb`` file: after a 7-byte W&B header, a
    leveldb-style log (32 KiB blocks; records of crc32, length, type; FULL=1, FIRST=2, MIDDLE=3, LAST=4) of protobuf
    ``Record``s. wandb ships no reader for it."""
    import struct

    from wandb.proto import wandb_internal_pb2 as pb

    data = run_file.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, summary, pending = 7, 32768, {}, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a record header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        pending += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(pending)
            pending = b""
            if record.WhichOneof("record_type") == "summary":
                for item in record.summary.update:
                    summary[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return summary




@pytest.mark.slow
def test_stopping_a_launched_run_stops_every_rank_and_it_resumes(tmp_path):
    """SIGTERM (scancel, kill) to the command of a 2-process run: every rank stops (no orphan keeps training), the
    command says how to go on and exits 130; the same command with resume_from_checkpoint=true then continues from
    the last complete checkpoint in 2 processes."""
    import psutil

    out = tmp_path / "run"
    args = ["launcher=multiprocess", "launcher.num_processes=2", "training.batch_size=2", "training.save_steps=5",
            "training.logging_steps=1", f"output_dir={out}"]
    proc = python_m(*args, "training.max_steps=100000", cwd=tmp_path)
    deadline = time.time() + 300
    while not list(out.glob("checkpoints/checkpoint-*/trainer_state.json")) and time.time() < deadline:
        time.sleep(0.5)
    ranks = psutil.Process(proc.pid).children(recursive=True)
    workers = [p for p in ranks if p.cmdline()[1:4] == ["-u", "-m", "autotrain_hydra.worker"]]
    assert len(workers) == 2, [p.cmdline() for p in ranks]
    proc.send_signal(signal.SIGTERM)
    text, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, text[-3000:]
    assert "Stopped (signal 15)" in text and "training.resume_from_checkpoint=true" in text
    gone, alive = psutil.wait_procs(ranks, timeout=30)
    assert not alive, [p.cmdline() for p in alive]
    assert not (out / "model.safetensors").exists()

    last = max(int(p.parent.name.split("-")[1]) for p in out.glob("checkpoints/checkpoint-*/trainer_state.json"))
    resumed = python_m(*args, f"training.max_steps={last + 4}", "training.resume_from_checkpoint=true", cwd=tmp_path)
    text, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, text[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["global_step"] == last + 4 and metrics["world_size"] == 2
    assert f"resumed from checkpoint-{last}" in metrics["notes"]


@pytest.mark.parametrize("text,hosts", [
    ("gpu07", ["gpu07"]),
    ("gpu[07-09]", ["gpu07", "gpu08", "gpu09"]),
    ("gpu[01-02,07],cpu7", ["gpu01", "gpu02", "gpu07", "cpu7"]),
    ("rack[1-2]-n[01-02]", ["rack1-n01", "rack1-n02", "rack2-n01", "rack2-n02"]),
    ("a[9-11]", ["a9", "a10", "a11"]),
    ("n[008-010]", ["n008", "n009", "n010"]),
    ("gpu[07-05]", []), ("gpu[07", []), ("gpu]07[", []), ("gpu[a-b]", []), ("gpu[[1-2]]", []), ("a,,b", []),
])
def test_slurm_host_lists_expand_as_scontrol_does(text, hosts):
    from autotrain_hydra.launch import hostlist

    assert hostlist(text) == hosts


@pytest.mark.slow
def test_grpo_trains_in_two_processes_and_rank_0_alone_writes(tmp_path):
    """GRPO's groups are scored across ranks (TRL gathers the rewards): two data-parallel CPU processes train, and the
    run dir holds one model and one completions.jsonl (rank 0's)."""
    out = tmp_path / "out"
    proc = python_m("trainer=grpo", f"output_dir={out}", "launcher=multiprocess", "launcher.num_processes=2",
                    "training.batch_size=4", "training.max_steps=2", "training.eval_strategy=no", cwd=tmp_path)
    text, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, text[-4000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["global_step"] == 2 and metrics["weights_changed"]
    assert (out / "model.safetensors").is_file()
    assert len((out / "completions.jsonl").read_text().splitlines()) >= 128
