"""--help: every key and group, with the defaults the chosen presets give (no torch)."""

import re

from autotrain_hydra.help import render
from autotrain_hydra.schema.params import PARAMS


def default_of(text, key):
    (line,) = [line for line in text.splitlines() if line.strip().startswith(key + " ")]
    return re.search(r"default (\S+)", line).group(1), line


def test_help_lists_every_key_and_group():
    text = render()
    for p in PARAMS:
        assert p.key in text
    assert "trainer: dpo, generic, grpo, kto, orpo, ppo, reward, sft" in text and "base_trainer" not in text


def test_help_shows_the_effective_defaults_of_the_chosen_presets():
    """Bug: --help showed training.lr default 2e-05 while the default run (model=tiny) trains at 1e-3."""
    value, line = default_of(render(), "training.lr")
    assert value == "0.001" and "(preset; schema default 2e-05)" in line
    assert default_of(render(), "training.block_size")[0] == "128"
    assert default_of(render(["model=custom"]), "training.lr")[0] == "2e-05"
    assert default_of(render(["trainer=dpo", "trainer.dpo_beta=0.3"]), "trainer.dpo_beta")[0] == "0.3"
    assert "Defaults shown: of trainer=dpo, trainer.dpo_beta=0.3" in render(["trainer=dpo", "trainer.dpo_beta=0.3"])


def test_help_with_overrides_that_do_not_compose_still_helps():
    text = render(["trainer=nope"])
    assert "(they do not compose: the schema's)" in text and default_of(text, "training.lr")[0] == "2e-05"
