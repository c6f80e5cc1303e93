"""Rules of a resume: it continues this run, with the recipe its checkpoint was trained with.

``training.resume_from_checkpoint=true`` takes the newest complete checkpoint of the run that owns the output dir
(``run.json``); one written by an earlier run of the dir is skipped. A key that shapes training (``schema.
recipe``: every key the trainer reads but how long to train, how often to log/evaluate/save and how to compute)
that differs from the checkpoint's is refused, each listed with both values: the checkpoint's optimizer and
schedule would carry the old value on while config.yaml recorded the new one.
"""

from __future__ import annotations

import os

from autotrain_hydra import paths, rundir
from autotrain_hydra.schema.recipe import changes, recipe
from autotrain_hydra.schema.rules.context import Context


def checkpoint_of(ctx: Context):
    """The checkpoint a resume would take, or None."""
    value, out = ctx.get("training.resume_from_checkpoint"), ctx.get("output_dir")
    if value is True and isinstance(out, str):
        out = os.path.expanduser(out)
        manifest = rundir.read_manifest(out)
        return paths.last_complete_checkpoint(os.path.join(out, "checkpoints"),
                                              run_id=manifest.run_id if manifest else None)
    if isinstance(value, str) and os.path.isdir(os.path.expanduser(value)):
        return os.path.expanduser(value)
    return None


def same_recipe(ctx: Context) -> None:
    checkpoint = checkpoint_of(ctx)
    state = paths.checkpoint_state(checkpoint) if checkpoint else None
    then = (state or {}).get("stamp", {}).get("recipe")
    if not then or (state["stamp"].get("trainer") not in (None, ctx.trainer)):  # another trainer: paths.resume says
        return
    changed = changes(then, recipe(ctx.cfg))
    if changed:
        listed = "; ".join(changed)
        ctx.report.error(f"resuming {checkpoint} with a changed recipe: {listed}. The checkpoint's optimizer, "
                         "schedule and data order were made with the values it was trained with",
                         "training.resume_from_checkpoint", ctx.get("training.resume_from_checkpoint"),
                         "resume with the checkpoint's values (its run's config.yaml or .hydra/overrides.yaml), or "
                         "start a new run in a new output_dir to train with the new ones")
