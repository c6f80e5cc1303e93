"""The contract between the trainer registry (and so the rules table) and the trainers: a key that applies to a
trainer is a key its run reads, and its run reads no key that does not apply to it.

Each trainer trains a tiny run (LoRA, eval data, periodic evaluation, a checkpoint: the paths that read keys) on a
*read-recording* config: each key of the trainer-scoped sections (model, data, training, peft, trainer) is an
interpolation whose resolver records the key when the run reads it. The keys read must be exactly the ones the
registry declares (``registry.SPECS[trainer].reads``): a key declared but never read would be one the rules say
applies and the trainer ignores (a silent no-op); a key read but not declared would be one the rules warn about as
ignored while the trainer uses it. Also the keys a trainer does not read get the guide-style warning.

What it checks is that a key is read, not what is done with it: a key handed to transformers' TrainingArguments
counts as read, and transformers honours it. The run takes the paths where keys are read on condition: PPO runs by
epochs (``training.max_steps`` unset: both are read), without a prompt column (its fallback, ``data.text_column``, is
read) and with a checkpoint (``training.save_total_limit``); GRPO likewise without a prompt column, with a reward
function and a reward model.
"""

import copy

import pytest
from omegaconf import OmegaConf, open_dict, read_write

from autotrain_hydra import registry
from autotrain_hydra.compat.hydra import compose_config
from autotrain_hydra.schema.keys import default, get, schema_keys
from autotrain_hydra.schema.params import PARAM_BY_KEY, ignored_message
from autotrain_hydra.schema.resolve import JobPlace, place, resolve
from autotrain_hydra.schema.rules import validate
from tests.helpers import fake_reward_dir

SCOPED = sorted(k for k in schema_keys(leaves_only=True) if registry.is_trainer_scoped(k) and k in PARAM_BY_KEY)
# LoRA for half the trainers, QLoRA (on a 4-bit base) for the other half: both paths checkpoint, evaluate and save
PEFT = {trainer: "qlora" if i % 2 else "lora" for i, trainer in enumerate(registry.TRAINERS)}
RUN = ["training.max_steps=2", "training.eval_strategy=steps", "training.eval_steps=1",
       "training.logging_steps=1", "training.save_steps=1", "training.batch_size=2"]
# PPO: by epochs (2 iterations of 48 prompts from the 96), the text column as the prompt column, small rollouts
PPO = ["training.max_steps=-1", "training.epochs=1", "trainer.rl.chunk_size=48", "data.prompt_text_column=null",
       "trainer.rl.mini_batch_size=24", "trainer.rl.num_ppo_epochs=1", "trainer.rl.max_new_tokens=2"]
# GRPO: groups of 2 (the batch is 2), short completions, the prompt column's fallback, a reward function and model
GRPO = ["trainer.grpo.num_generations=2", "trainer.grpo.max_completion_length=4", "data.prompt_text_column=null",
        "trainer.grpo.reward_funcs=[autotrain_hydra.rewards.has_number]"]
READS = []


def record(key, *, _root_):
    READS.append(key)
    return get(_root_, f"_values.{key.replace('.', '__')}")


@pytest.fixture
def contract_resolver():
    """The recording resolver, registered for the test only: Hydra pickles the registered resolvers with a submitit
    job, and a job process cannot import this module (a resolver left registered failed the submitit test that ran
    after it in the same worker)."""
    OmegaConf.register_new_resolver("contract_read", record, replace=True)
    yield
    OmegaConf.clear_resolver("contract_read")


def recording(cfg):
    """A copy of ``cfg`` whose trainer-scoped keys record their reads (values kept aside, under ``_values``)."""
    out = copy.deepcopy(cfg)
    with read_write(out), open_dict(out):
        out._values = {k.replace(".", "__"): get(cfg, k) for k in SCOPED}
        for key in SCOPED:
            OmegaConf.update(out, key, f"${{contract_read:{key}}}", merge=False)
    OmegaConf.set_readonly(out, True)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("trainer", registry.TRAINERS)
def test_a_trainer_reads_exactly_the_keys_the_registry_declares(trainer, tmp_path, tiny_scorer, contract_resolver):
    from autotrain_hydra.run import train_here
    from autotrain_hydra.trainers.common import Job

    overrides = [f"trainer={trainer}", f"peft={PEFT[trainer]}", *RUN]
    if trainer == "ppo":
        overrides += [*PPO, f"trainer.rl.reward_model_path={tiny_scorer}"]
    if trainer == "grpo":
        overrides += [*GRPO, f"trainer.grpo.reward_model_path={tiny_scorer}"]
    resolved = resolve(compose_config(overrides), overrides)
    assert not validate(resolved.cfg, overrides).errors
    cfg = recording(place(resolved.cfg, JobPlace(str(tmp_path / "out"))))
    READS.clear()
    train_here(Job(cfg=cfg, output_dir=str(tmp_path / "out")))
    read = set(READS)
    declared = registry.spec(trainer).reads - ({"peft.bits"} if PEFT[trainer] == "lora" else set())  # qlora's
    assert not declared - read, f"trainer={trainer}: the registry says these apply and the run never read them: " \
                                f"{sorted(declared - read)}"
    assert not read - declared, f"trainer={trainer}: the run read these and the registry does not declare them: " \
                                f"{sorted(read - declared)}"


@pytest.mark.parametrize("trainer", registry.TRAINERS)
def test_every_key_a_trainer_does_not_read_is_warned_about(trainer):
    """Set to a value other than its default, each key outside the trainer's reads gets the guide's warning."""
    reads = registry.spec(trainer).reads
    extra = [f"trainer.rl.reward_model_path={fake_reward_dir()}"] if trainer == "ppo" else []
    overrides = [f"trainer={trainer}", *extra]
    resolved = resolve(compose_config(overrides), overrides).cfg
    for key in SCOPED:
        if key in reads or key == "peft.method":
            continue
        value = _another_value(key)
        cfg = copy.deepcopy(resolved)
        with read_write(cfg):
            OmegaConf.update(cfg, key, value, merge=False)
        report = validate(cfg, [*overrides, f"{key}={value}"], check_filesystem=False)
        assert ignored_message(PARAM_BY_KEY[key]) in [i.message for i in report.warnings], (trainer, key)


# a value other than the default for each key whose default is null or a word
OTHER = {"trainer.grpo.reward_funcs": ["autotrain_hydra.rewards.has_number"], "trainer.grpo.reward_weights": [2.0],
         "trainer.grpo.max_prompt_length": 64, "trainer.max_seq_length": 64, "training.eval_steps": 5, "training.eval_strategy": "steps",
         "trainer.chat_template": "chatml", "training.attn_implementation": "eager"}


def _another_value(key):
    value = default(key)
    if key in OTHER:
        return OTHER[key]
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1 if value >= 0 else 5
    return "x"
