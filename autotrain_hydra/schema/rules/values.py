"""Rules on values: the range or choices of each key, the keys a trainer requires, and settings that need another."""

from __future__ import annotations

import difflib
import os
from typing import Any

from autotrain_hydra import registry
from autotrain_hydra.schema.checks import non_finite
from autotrain_hydra.schema.keys import key_type
from autotrain_hydra.schema.params import CHAT_TEMPLATES, PARAMS, Param
from autotrain_hydra.schema.rules.context import Context


def _value_fix(p: Param, value: Any) -> str:
    if p.check and p.check.choices and p.check.text.startswith("a list of "):
        bad = [str(x) for x in value if x not in p.check.choices] if not isinstance(value, str) else [value]
        close = difflib.get_close_matches(bad[0], [str(c) for c in p.check.choices], n=1) if bad else []
        hint = f"did you mean {close[0]}? " if close else ""
        return f"{hint}write {p.key} as a list of those names, e.g. {p.key}=[{p.check.choices[0]}]"
    if p.check and p.check.choices:
        choices = [str(c) for c in p.check.choices if c is not None]
        close = [c for c in choices if c.startswith(str(value))] or difflib.get_close_matches(
            str(value), choices, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]}? " if close else ""
        return f"{hint}set {p.key} to {p.check.text[len('one of '):].replace(', ', ' | ')}"
    return f"set {p.key} to {p.check.text}"


def value_checks(ctx: Context) -> None:
    for p in PARAMS:
        value = ctx.get(p.key)
        if non_finite(value):  # any float key: inf and nan are refused here, not after the model loads
            ctx.report.error(f"{p.key}={value} is not a finite number", p.key, value,
                             f"set {p.key} to {p.check.text if p.check else 'a finite number'}")
        elif p.check is not None and value is not None and not p.check.ok(value):
            ctx.report.error(f"{p.key} must be {p.check.text}", p.key, value, _value_fix(p, value))


def swept_values(ctx: Context) -> None:
    """A sweep that would give a key values it cannot take (``training.lr=-1,1e-4``, ``interval(0, 1e-3)`` for a
    learning rate that must be > 0) fails here, before the first trial, not in one trial after another."""
    from autotrain_hydra.schema.params import PARAM_BY_KEY
    from autotrain_hydra.schema.sweep_space import candidates, search_space, typed_space

    searched = {}
    if ctx.enabled("sweep"):
        try:
            space = search_space(ctx.cfg)
        except ValueError:  # SweepSpecError, or sweep.params not JSON: reported by the sweep rule
            space = {}
        searched.update(typed_space([f"{k}={g}" for k, g in space.items()]))
    searched.update(typed_space(ctx.typed))
    for key, (text, dist) in searched.items():
        if key_type(key) is int and dist.kind == "float":
            ctx.report.error(f"{key} takes whole numbers; the sweep {text} gives it fractions", key,
                             text.split("=", 1)[-1],
                             f"search it with int(interval(a, b)) or range(a, b) (e.g. {key}=int(interval(2, 8)))")
            continue
        p = PARAM_BY_KEY.get(key)
        if p is None or p.check is None:
            continue
        bad = [v for v in candidates(dist) if v is not None and not p.check.ok(v)]
        if bad:
            ctx.report.error(f"{key} must be {p.check.text}; the sweep {text} gives it {bad[0]}", key, bad[0],
                             f"search values that {key} can take ({p.check.text})")


def required_keys(ctx: Context) -> None:
    flags = {p.key: p.flag for p in PARAMS}
    for key in registry.spec(ctx.trainer).requires:
        if ctx.get(key) in (None, ""):
            flag = f" (the guide's {flags[key]})" if flags.get(key) else ""
            ctx.report.error(f"{ctx.trainer} requires {key}", key, None, f"set {key}=<value>{flag}")


def chat_template(ctx: Context) -> None:
    value = ctx.get("trainer.chat_template")
    if value is not None and value not in CHAT_TEMPLATES and "{%" not in value \
            and not os.path.isfile(os.path.expanduser(value)):
        close = difflib.get_close_matches(value, CHAT_TEMPLATES, n=1)
        ctx.report.error("trainer.chat_template must be a named template, a Jinja template or a template file",
                         "trainer.chat_template", value,
                         (f"did you mean {close[0]}? " if close else "") + f"use one of {', '.join(CHAT_TEMPLATES)}, "
                         "null for the tokenizer's own, or a path to a .jinja file")


def eval_steps_needed(ctx: Context) -> None:
    if "training.eval_strategy" not in registry.spec(ctx.trainer).reads:
        return  # warned about and ignored
    if ctx.get("training.eval_strategy") == "steps" and not ctx.get("training.eval_steps"):
        ctx.report.error("training.eval_strategy=steps needs training.eval_steps", "training.eval_steps", None,
                         "set training.eval_steps=<n>, or training.eval_strategy=epoch")


def optimizer_alias(ctx: Context) -> None:
    """``adamw_hf`` (the guide lists it) is transformers' own AdamW, which transformers 5 removed: said once."""
    if ctx.get("training.optimizer") == "adamw_hf":
        ctx.report.warn("optimizer adamw_hf is transformers' AdamW, which transformers 5 removed: training uses "
                        "adamw_torch (torch's AdamW, the same algorithm)", "training.optimizer", "adamw_hf",
                        "set training.optimizer=adamw_torch to say so")


def padding_free_attention(ctx: Context) -> None:
    """Padding-free batches run a batch as one row: with an attention that needs a mask over the whole row (sdpa,
    eager) that costs the row's length squared. The trainers then pad their batches (``trainers.common``)."""
    attn = ctx.get("training.attn_implementation")
    packs = ctx.get("training.packing") and "training.packing" in registry.spec(ctx.trainer).reads
    if "training.padding_free" in registry.spec(ctx.trainer).reads and ctx.get("training.padding_free") \
            and attn not in registry.PACKED_ATTENTION and not packs:  # packed rows: training.packing's own choice
        ctx.report.warn(f"training.attn_implementation={attn} attends over a whole packed row: batches are padded "
                        "instead of padding-free", "training.attn_implementation", attn,
                        "leave training.attn_implementation=auto (varlen attention on a CPU, flash or flex attention "
                        "on a GPU), or set training.padding_free=false to say so")


def eval_data_sources(ctx: Context) -> None:
    """One source of eval data: a validation file, a split of the data, or a held-out fraction."""
    given = [k for k in ("data.valid_path", "data.valid_split", "data.valid_fraction") if ctx.get(k) is not None]
    if len(given) > 1:
        ctx.report.error(f"{' and '.join(given)} are both set: a run has one source of eval data", given[-1],
                         ctx.get(given[-1]), f"keep one of {', '.join(given)} (set the others to null)")


def trackers_installed(ctx: Context) -> None:
    """A tracker of ``report_to`` whose package is not installed is refused here, not by transformers after the
    model loaded (a traceback)."""
    import importlib.util

    from autotrain_hydra.schema.params import TRACKER_PACKAGES

    value = ctx.get("report_to")
    for tracker in (list(value) if value is not None and not isinstance(value, str) else []):
        packages = TRACKER_PACKAGES.get(tracker)
        if packages and not any(importlib.util.find_spec(p) is not None for p in packages):
            ctx.report.error(f"report_to={tracker}: the {' or '.join(packages)} package is not installed",
                             "report_to", list(value),
                             f"pip install {packages[0]}, or leave {tracker} out of report_to")
        elif tracker == "wandb" and not wandb_can_log():
            ctx.report.error("report_to=wandb: no W&B login here (no WANDB_API_KEY, no key in ~/.netrc), and W&B is "
                             "not offline: the run would fail once the model is loaded", "report_to", list(value),
                             "run `wandb login` (or set WANDB_API_KEY), or WANDB_MODE=offline to log locally "
                             "(wandb sync uploads it later)")


def wandb_can_log() -> bool:
    """W&B will start a run: offline or disabled, or an API key in the environment or in ~/.netrc for its host."""
    import netrc
    from urllib.parse import urlparse

    if os.environ.get("WANDB_MODE", "").lower() in ("offline", "disabled", "dryrun") or os.environ.get(
            "WANDB_API_KEY") or os.environ.get("WANDB_DISABLED", "").lower() in ("true", "1"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname
    try:
        return netrc.netrc(os.environ.get("NETRC") or None).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def quantized_base(ctx: Context) -> None:
    """``peft=qlora``: ``peft.bits`` means nothing without it (an error: the user asked for a quantised base and would
    train a full-precision one), and bitsandbytes must be installed (sharded weights: ``launcher.launcher``)."""
    import importlib.util

    method = ctx.get("peft.method")
    if method != "qlora":
        if ctx.is_set("peft.bits"):
            ctx.report.error(f"peft.bits quantises the base model only with peft=qlora (this run: peft={method})",
                             "peft.bits", ctx.get("peft.bits"),
                             "use peft=qlora (LoRA on a 4-bit or 8-bit base), or remove peft.bits")
        return
    if importlib.util.find_spec("bitsandbytes") is None:
        ctx.report.error("peft=qlora loads the base model through bitsandbytes, which is not installed", "peft.method",
                         method, "pip install bitsandbytes (the version pyproject.toml pins), or use peft=lora")
