"""Rules on keys: every key must be one of the schema's; the trainer must exist (and not be a removed one)."""

from __future__ import annotations


from omegaconf import OmegaConf

from autotrain_hydra import registry
from autotrain_hydra.schema.keys import schema_keys, unknown_key
from autotrain_hydra.schema.params import REMOVED_TRAINERS
from autotrain_hydra.schema.rules.context import Context


def unknown_keys(ctx: Context) -> None:
    """A key the schema does not have (added with ``+key=`` or by a config file): did you mean ...?"""
    known = set(schema_keys())
    tree = OmegaConf.to_container(ctx.cfg, resolve=False)

    def walk(node: dict, prefix: str) -> None:
        for k, v in node.items():
            path = f"{prefix}{k}"
            if path not in known:
                unknown_key(ctx.report, path, v)
            elif isinstance(v, dict) and any(s.startswith(path + ".") for s in known):
                walk(v, path + ".")

    walk(tree, "")


def trainer_known(ctx: Context) -> bool:
    """``trainer=distillation`` (removed: tells the compositional replacement) or a name no trainer has."""
    if ctx.trainer in REMOVED_TRAINERS:
        msg, fix = REMOVED_TRAINERS[ctx.trainer]
        ctx.report.error(msg, "trainer", ctx.trainer, fix)
        return False
    if ctx.trainer not in registry.SPECS:
        ctx.report.error(f"unknown trainer {ctx.trainer}", "trainer", ctx.trainer,
                         f"choose one of {', '.join(registry.TRAINERS)}")
        return False
    return True
