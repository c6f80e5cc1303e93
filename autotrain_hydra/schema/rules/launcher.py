"""Rules of the launcher (beyond the guide): what local, multiprocess and multinode need, and what none can run."""

from __future__ import annotations

import os

from autotrain_hydra import registry
from autotrain_hydra.schema.checks import is_number
from autotrain_hydra.schema.params import LAUNCHER_KEYS, LAUNCHERS, SHARDED_WEIGHTS, uses_lora
from autotrain_hydra.schema.rules.context import Context


def launcher(ctx: Context) -> None:
    name = ctx.get("launcher.name")
    if name not in LAUNCHERS:
        return  # reported with the values
    if name == "local":
        for key in LAUNCHER_KEYS:
            if ctx.is_set(key):
                ctx.report.warn(f"{key.split('.', 1)[1]} only applies with launcher=multiprocess or "
                                "launcher=multinode, will be ignored", key, ctx.get(key),
                                "add launcher=multiprocess (one machine) or launcher=multinode, or remove it")
        return
    spec = registry.spec(ctx.trainer)
    if not spec.launchable:
        ctx.report.error(f"{spec.label} trains in one process: its rollouts and updates are not sharded across "
                         "processes", "launcher", name, f"use launcher=local for trainer={ctx.trainer}")
    machines = ctx.get("launcher.num_machines")
    if name == "multiprocess" and is_number(machines) and machines > 1:
        ctx.report.error("launcher=multiprocess runs on one machine", "launcher.num_machines", machines,
                         "use launcher=multinode for several machines")
    if name == "multinode":
        if is_number(machines) and machines < 2:
            ctx.report.error("launcher=multinode needs launcher.num_machines >= 2", "launcher.num_machines", machines,
                             "set launcher.num_machines=<machines>, or use launcher=multiprocess on one machine")
        rank = ctx.get("launcher.machine_rank")
        if is_number(rank) and is_number(machines) and rank >= machines:
            ctx.report.error(f"launcher.machine_rank must be below launcher.num_machines ({machines})",
                             "launcher.machine_rank", rank, f"use 0..{machines - 1}, one per machine")
    strategy = ctx.get("launcher.strategy")
    sharded = strategy in SHARDED_WEIGHTS and ctx.get("launcher.accelerate_config") is None
    if sharded and ctx.get("peft.method") == "qlora":
        ctx.report.error(f"peft=qlora is not sharded here: launcher.strategy={strategy} splits the weights across "
                         "processes, and bitsandbytes' quantised weights are kept whole", "launcher.strategy", strategy,
                         "use launcher.strategy=ddp (each process holds the 4-bit base: it is small), or peft=lora")
    elif sharded and uses_lora(ctx.get("peft.method")) and (ctx.get("peft.merge_adapter")
                                                           or spec.output != "causal_lm"):
        what = "the reward scorer is saved merged" if spec.output != "causal_lm" else "peft.merge_adapter=true"
        ctx.report.error(f"{what}: merging a LoRA adapter needs the whole model in one process, and "
                         f"launcher.strategy={strategy} shards it", "launcher.strategy", strategy,
                         "use launcher.strategy=ddp, or train the adapter sharded and merge it afterwards "
                         "(peft.merge_adapter=false)")
    config = ctx.get("launcher.accelerate_config")
    if config is not None and not os.path.isfile(os.path.expanduser(str(config))):
        ctx.report.error("launcher.accelerate_config is not a file", "launcher.accelerate_config", config,
                         "give the path of an accelerate config file (accelerate config --config_file <path> writes "
                         "one), or remove it to use launcher.strategy's")
    elif config is not None and ctx.is_set("launcher.strategy"):
        ctx.report.warn("launcher.strategy is replaced by launcher.accelerate_config, will be ignored",
                        "launcher.strategy", strategy, "remove one of the two")
