"""Rules of one trainer's own settings, beyond the guide: GRPO's rewards and generation groups, KTO's batches.

- ``grpo_rewards``: at least one reward source; each reward function resolved and signature-checked
  (``autotrain_hydra.reward_funcs``, the code the run uses), against the columns of the data; one weight per source;
- ``grpo_groups``: the completions of a prompt (``trainer.grpo.num_generations``) fill whole batches: the count
  divides the effective batch (per-device batch × gradient accumulation × processes) and the eval batch;
- ``grpo_lengths``: a completion leaves the prompt room in ``training.block_size``;
- ``grpo_vllm``: ``use_vllm`` where vLLM can run (the package here; a GPU is checked before load);
- ``kto_batch``: KTO estimates its KL term from the other rows of a batch: two rows at least; a label column
  beside pairs is not read.

Light module (the user's reward modules are imported to check them).
"""

from __future__ import annotations

import importlib.util
import math
from typing import List, Optional

from autotrain_hydra.schema.checks import is_number
from autotrain_hydra.schema.metrics import has_eval_data
from autotrain_hydra.schema.rules.context import Context

FUNCS, MODEL, WEIGHTS = "trainer.grpo.reward_funcs", "trainer.grpo.reward_model_path", "trainer.grpo.reward_weights"


def data_columns(ctx: Context) -> Optional[List[str]]:
    """The columns the reward functions get: those every data set they score has (the training data, the validation
    data, enhanced evaluation's prompts), without the prompt column (passed as ``prompts``); None when none of them
    can be peeked (dataset names)."""
    from autotrain_hydra.schema import data_peek

    sources = [(ctx.get("data.path"), ctx.get("data.train_split") or "train")]
    if ctx.get("data.valid_path"):
        sources.append((ctx.get("data.valid_path"), "train"))
    if ctx.enabled("eval") and ctx.get("eval.dataset_path"):
        sources.append((ctx.get("eval.dataset_path"), "train"))
    found = [c for c in (data_peek.columns(path, split) for path, split in sources) if c is not None]
    if not found:
        return None
    prompt = ctx.get("data.prompt_text_column") or ctx.get("data.text_column")
    return [c for c in found[0] if c != prompt and all(c in other for other in found[1:])]


def grpo_rewards(ctx: Context) -> None:
    from autotrain_hydra import reward_funcs

    if ctx.trainer != "grpo":
        return
    try:
        items = reward_funcs.items_of(ctx.get(FUNCS))
    except reward_funcs.RewardFuncError as e:
        ctx.report.error(e.message, e.key, e.item, e.fix)
        return
    model = ctx.get(MODEL)
    if not items and not model:
        ctx.report.error(f"grpo requires a reward: {FUNCS} or {MODEL}", FUNCS, [],
                         f"set {FUNCS}=[package.module.function] (or ./my_rewards.py:function; shipped ones: "
                         f"autotrain_hydra.rewards), and/or {MODEL}=<the output_dir of a trainer=reward run>")
        return
    columns = data_columns(ctx)
    clash = sorted(set(columns or ()) & set(reward_funcs.TRL_ARGUMENTS + ("prompt", "completion")))
    if clash:
        ctx.report.error(f"the data have a column named {clash[0]!r}, which GRPO passes its reward functions itself "
                         f"(or drops)", "data.path", ctx.get("data.path"),
                         f"rename the column (reserved: {', '.join(reward_funcs.TRL_ARGUMENTS)}, prompt, completion)")
        return
    try:
        found = reward_funcs.resolve(items, columns)
    except reward_funcs.RewardFuncError as e:
        ctx.report.error(e.message, e.key, reward_funcs.shown(e.item), e.fix)
        return
    weights = ctx.get(WEIGHTS)
    if weights is not None:
        sources = len(found) + (1 if model else 0)
        names = [f.name for f in found] + (["the reward model"] if model else [])
        values = list(weights) if not isinstance(weights, (str, int, float)) else None
        if values is None or not all(is_number(w) for w in values):
            ctx.report.error(f"{WEIGHTS} must be a list of finite numbers", WEIGHTS, weights,
                             f"give one number per reward source ({', '.join(names)}), e.g. {WEIGHTS}=[1.0]")
        elif len(values) == sources and not any(values):
            ctx.report.warn(f"{WEIGHTS} are all 0: every completion gets the reward 0, and GRPO learns nothing",
                            WEIGHTS, values, "give at least one reward source a weight other than 0")
        elif len(values) != sources:
            plural = lambda n, word: f"{n} {word}" + ("s" if n != 1 else "")  # noqa: E731
            ctx.report.error(f"{WEIGHTS} has {plural(len(values), 'weight')} for {plural(sources, 'reward source')} "
                             f"({', '.join(names)})", WEIGHTS, values,
                             f"give {plural(sources, 'weight')}, in that order (the reward functions, then the reward "
                             "model)")


def _processes(ctx: Context) -> Optional[int]:
    """How many processes train (None: one per GPU, unknown here)."""
    name = ctx.get("launcher.name")
    if name == "local":
        return 1
    n, machines = ctx.get("launcher.num_processes"), ctx.get("launcher.num_machines") or 1
    if not (is_number(n) and is_number(machines)):
        return None
    return int(n) * (int(machines) if name == "multinode" else 1)


def _divisors(n: int) -> str:
    return ", ".join(str(d) for d in range(2, n + 1) if n % d == 0) or "none above 1"


def grpo_groups(ctx: Context) -> None:
    if ctx.trainer != "grpo":
        return
    g, batch, accum = (ctx.get(k) for k in ("trainer.grpo.num_generations", "training.batch_size",
                                            "training.gradient_accumulation"))
    world = _processes(ctx)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in (g, batch, accum)) or g < 2:
        return  # reported with the values
    if world is None:
        return  # one process per GPU: how many is known where it runs (TRL's check, said as a config error)
    total = batch * accum * world
    if total % g:
        where = f" × {world} processes" if world > 1 else ""
        multiple = g * batch // math.gcd(g, batch)
        ctx.report.error(
            f"trainer.grpo.num_generations={g} must divide the effective batch (training.batch_size={batch} × "
            f"training.gradient_accumulation={accum}{where} = {total}): each step scores whole groups of {g} "
            "completions of one prompt", "trainer.grpo.num_generations", g,
            f"set trainer.grpo.num_generations to a divisor of {total} ({_divisors(total)}), or training.batch_size "
            f"to {multiple} (or training.gradient_accumulation so that the product is a multiple of {g})")
        return
    eval_batch = ctx.get("training.eval_batch_size") or batch
    if has_eval_data(ctx.cfg) and ctx.get("training.eval_strategy") != "no" and isinstance(eval_batch, int) \
            and (eval_batch * world) % g:
        ctx.report.error(
            f"trainer.grpo.num_generations={g} must divide the eval batch (training.eval_batch_size="
            f"{eval_batch}{f' × {world} processes' if world > 1 else ''}): the periodic evaluation generates "
            f"whole groups too", "training.eval_batch_size", eval_batch,
            f"set training.eval_batch_size to a multiple of {g}, or training.eval_strategy=no")


def grpo_lengths(ctx: Context) -> None:
    """``training.block_size`` caps prompt + completion: a completion as long leaves the prompt no room."""
    if ctx.trainer != "grpo":
        return
    block, completion = ctx.get("training.block_size"), ctx.get("trainer.grpo.max_completion_length")
    if is_number(block) and is_number(completion) and completion >= block:
        ctx.report.error(f"trainer.grpo.max_completion_length={completion} leaves no room for the prompt in "
                         f"training.block_size={block} (prompt + completion)", "trainer.grpo.max_completion_length",
                         completion, f"set trainer.grpo.max_completion_length below {block}, or raise "
                         "training.block_size (the tiny model's preset is 128)")


def grpo_vllm(ctx: Context) -> None:
    if ctx.trainer != "grpo" or ctx.get("trainer.grpo.use_vllm") is not True:
        return
    if importlib.util.find_spec("vllm") is None:
        ctx.report.error("trainer.grpo.use_vllm=true needs the vllm package (and a CUDA GPU), which this machine "
                         "lacks", "trainer.grpo.use_vllm", True,
                         "set trainer.grpo.use_vllm=false (generation with transformers), or pip install vllm on "
                         "a GPU machine")


def kto_batch(ctx: Context) -> None:
    if ctx.trainer != "kto":
        return
    for key in ("training.batch_size", "training.eval_batch_size"):
        batch = ctx.get(key)
        if isinstance(batch, int) and not isinstance(batch, bool) and batch < 2:
            ctx.report.error(f"trainer=kto needs {key} >= 2: KTO estimates its KL term from the other rows of each "
                             "batch (a batch of one has none)", key, batch,
                             f"set {key}=2 or more (with training.gradient_accumulation for memory)")
    if ctx.get("data.rejected_text_column") and ctx.is_set("data.label_column"):
        ctx.report.warn("label_column is not read when data.rejected_text_column is set (preference pairs: chosen is "
                        "desirable, rejected undesirable), will be ignored", "data.label_column",
                        ctx.get("data.label_column"), "remove one of the two: data.label_column for unpaired "
                        "feedback, data.rejected_text_column for pairs")
