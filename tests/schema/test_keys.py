"""Keys: the schema's list, and did-you-mean for what users type, from other tools too."""

import pytest

from autotrain_hydra import cli
from autotrain_hydra.schema.keys import ALIASES, did_you_mean, schema_keys, unknown_key_fix


def test_schema_keys_come_from_the_dataclasses():
    keys = schema_keys(leaves_only=True)
    assert "trainer.rl.gamma" in keys and "training.lr" in keys and "trainer.rl" not in keys
    assert "trainer.rl" in schema_keys()


def test_every_alias_names_a_schema_key():
    assert set(ALIASES.values()) <= set(schema_keys(leaves_only=True))


@pytest.mark.parametrize("typed,meant", [
    ("training.learning_rate", "training.lr"), ("learning_rate", "training.lr"),
    ("training.lerning_rate", "training.lr"), ("training.num_train_epochs", "training.epochs"),
    ("training.per_device_train_batch_size", "training.batch_size"),
    ("training.gradient_accumulation_steps", "training.gradient_accumulation"),
    ("training.max_length", "training.block_size"), ("peft.lora_rank", "peft.lora_r"),
    ("training.micro_batch_size", "training.batch_size"), ("data.sequence_len", "training.block_size"),
    ("training.lr_scheduler_type", "training.scheduler"), ("trainer.dpo_bta", "trainer.dpo_beta"),
    ("model.model_name_or_path", "model.name"), ("training.warmup_steps", "training.warmup_ratio"),
])
def test_names_from_other_tools_and_misspellings_get_our_key(typed, meant):
    """Bug: training.learning_rate suggested --merge-adapter, training.lerning_rate got no suggestion."""
    assert did_you_mean(typed) == meant
    assert unknown_key_fix(typed) == f"did you mean {meant}? Set it as {meant}=<value>"


@pytest.mark.parametrize("flag,meant", [("--learning-rate", "--lr"), ("--num-train-epochs", "--epochs"),
                                        ("--per-device-train-batch-size", "--batch-size"),
                                        ("--gradient-accumulation-steps", "--gradient-accumulation"),
                                        ("--lora-rank", "--lora-r"), ("--max-length", "--block-size"),
                                        ("--lerning-rate", "--lr"), ("--dpo-bta", "--dpo-beta")])
def test_flags_from_other_tools_get_ours(flag, meant):
    with pytest.raises(cli.FlagError, match=f"unknown flag {flag}: did you mean {meant}\\?"):
        cli.translate(["--trainer", "sft", flag, "1"])
