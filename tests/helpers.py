import copy
import functools

from omegaconf import OmegaConf

from autotrain_hydra.compat.hydra import compose_config
from autotrain_hydra.schema.resolve import resolve
from autotrain_hydra.schema.rules import validate


@functools.lru_cache(maxsize=None)
def _composed(groups):
    return compose_config(list(groups))


def compose(*overrides):
    """Compose as the app does. Group overrides go through Hydra (cached: a composition costs ~0.2 s); key
    overrides are parsed by Hydra's override grammar and applied as Hydra applies them. Full Hydra composition
    of every trainer x peft x feature combination is tested in test_configs.py."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    groups = tuple(o for o in overrides if "." not in o.split("=", 1)[0])
    keys = [o for o in overrides if o not in groups and not o.startswith("hydra.")]  # hydra.*: Hydra's node
    cfg = copy.deepcopy(_composed(groups))
    for o in OverridesParser.create().parse_overrides(keys):
        if o.is_sweep_override():
            continue  # composed as in a multirun: the sweeper gives it a value per trial
        key = o.key_or_group
        OmegaConf.update(cfg, key, o.value(), merge=True, force_add=o.is_add())
    return cfg


def resolved(*overrides):
    """The config as the app resolves it (built-in sample, text column, sweep objective, hold-outs)."""
    return resolve(compose(*overrides), overrides).cfg


def check(*overrides, filesystem=True):
    """The rule report for these overrides, as the app would produce it."""
    return validate(resolved(*overrides), overrides, check_filesystem=filesystem)


def messages(report, level):
    return [i.message for i in report.issues if i.level == level]


def fake_reward_dir(root=None):
    """A directory that looks like a saved reward model to the validator (its config.json names a
    sequence-classification architecture); no weights: validation never loads them."""
    import json
    import os
    import tempfile

    path = os.path.join(str(root) if root else tempfile.mkdtemp(), "reward_model")
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump({"architectures": ["LlamaForSequenceClassification"]}, f)
    return path


LM_FAST = ["training.epochs=4", "training.batch_size=8", "training.logging_steps=2", "training.warmup_ratio=0"]
PAIRS_FAST = ["training.logging_steps=4", "training.warmup_ratio=0"]


def train_lm(tmp_path, *overrides):
    """A short generic/sft-style run (4 epochs of 8-example steps, every other step logged, no warm-up)."""
    return train_in(tmp_path, LM_FAST, *overrides)


def train_pairs(tmp_path, *overrides):
    """A short preference-trainer run (its sample's default epochs, every 4th step logged, no warm-up)."""
    return train_in(tmp_path, PAIRS_FAST, *overrides)


def train_in(tmp_path, defaults, *overrides):
    """Train with ``run`` (the command line's job, in this process) into ``tmp_path/out``: (out dir, metrics.json,
    objective). ``defaults`` come first, so that the test's own overrides win."""
    import json

    from autotrain_hydra.run import run

    out = tmp_path / "out"
    objective = run(compose_config([*defaults, f"output_dir={out}", *overrides]), overrides=list(overrides))
    return out, json.loads((out / "metrics.json").read_text()), objective


def spy_init(monkeypatch, cls):
    """Record the keyword arguments a class is constructed with."""
    seen = {}
    init = cls.__init__

    def spy(self, *a, **k):
        seen.update(k)
        init(self, *a, **k)

    monkeypatch.setattr(cls, "__init__", spy)
    return seen


def python_m(*args, cwd, env=None, **kwargs):
    """``python -m autotrain_hydra <args>`` in a process of its own (stdout and stderr together)."""
    import os
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-m", "autotrain_hydra", *args], cwd=cwd,
                            env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, **kwargs)


def composed_with_hydra(*overrides):
    """The config with its hydra node, as the entry point composes it."""
    from autotrain_hydra import paths
    from autotrain_hydra.compat import hydra as hy

    hy.initialize(str(paths.config_dir()))
    return hy.compose("config", list(overrides), multirun=False)


def poison_weights_at(monkeypatch, step):
    """A callback (run before the checkpoint's) that makes every weight NaN at the end of optimizer step ``step``."""
    import torch

    from autotrain_hydra.trainers import common

    original = common.finite_loss_guard

    def guard():
        g = original()

        def on_step_end(args, state, control, model=None, **kwargs):
            if state.global_step == step:
                with torch.no_grad():
                    for p in model.parameters():
                        p.fill_(float("nan"))

        g.on_step_end = on_step_end
        return g

    monkeypatch.setattr(common, "finite_loss_guard", guard)


def assert_a_trained_causal_lm(out):
    """The run dir holds a Llama causal LM that reloads, with weights other than the tiny base model's."""
    import torch
    from transformers import AutoModelForCausalLM

    from autotrain_hydra import models

    policy = AutoModelForCausalLM.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(models.tiny_model_dir())
    assert type(policy).__name__ == "LlamaForCausalLM"
    assert not torch.equal(policy.model.embed_tokens.weight, base.model.embed_tokens.weight)
