"""launcher=... presets and their rules; hydra/launcher=slurm; the accelerate config presets (no torch here)."""

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from autotrain_hydra import paths
from autotrain_hydra.schema.params import STRATEGIES
from tests.unit.helpers import check, compose as compose_app, fake_reward_dir, messages


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
