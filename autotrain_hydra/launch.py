"""launcher=multiprocess | multinode: data-parallel training in several processes, started by ``accelerate launch``.

The run (``run.execute``) stays in the process Hydra started: it validates the config, resolves the run dir *once*,
evaluates, and writes metrics, plots and the model card. Only the training step is handed to
``accelerate launch`` (torchrun underneath; FSDP or DeepSpeed through the accelerate config of
``launcher.strategy``), whose processes run ``autotrain_hydra.worker`` on the resolved config and the same output
dir: no rank composes a config or makes a run dir of its own (the known Hydra + torchrun problem of one timestamped
dir per rank cannot happen). Rank 0 alone writes the model and checkpoints, and hands its metrics back in a result
file. Under SLURM the machine rank and the main node are read from the job (``$SLURM_NODEID``,
``$SLURM_JOB_NODELIST``).
"""

from __future__ import annotations

import glob
import importlib
import importlib.util
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from omegaconf import DictConfig, OmegaConf

from autotrain_hydra import paths, secrets
from autotrain_hydra.errors import HardwareError, RunError
from autotrain_hydra.schema.errors import Report
from autotrain_hydra.schema.params import SHARDED
from autotrain_hydra.processes import sigterm_as_interrupt

log = logging.getLogger(__name__)

@dataclass
class Plan:
    """What ``accelerate launch`` is told: processes per machine, machines, this machine's rank, the rendezvous."""

    num_processes: int
    num_machines: int
    machine_rank: int
    main_process_ip: Optional[str]
    main_process_port: int
    config_file: str
    mixed_precision: str
    cpu: bool

    @property
    def world_size(self) -> int:
        return self.num_processes * self.num_machines


def accelerate_config_file(cfg: DictConfig) -> str:
    """``launcher.accelerate_config`` when given, else the shipped ``configs/accelerate/<strategy>.yaml``."""
    own = cfg.launcher.accelerate_config
    if own:
        return os.path.abspath(os.path.expanduser(str(own)))
    return str(paths.config_dir() / "accelerate" / f"{cfg.launcher.strategy}.yaml")


def slurm_machine() -> Dict[str, Any]:
    """This machine's rank, the first host and the node count of the SLURM job this runs in ({} outside SLURM)."""
    env = os.environ
    if "SLURM_JOB_ID" not in env:
        return {}
    out: Dict[str, Any] = {}
    if env.get("SLURM_NODEID", "").isdigit():
        out["machine_rank"] = int(env["SLURM_NODEID"])
    if env.get("SLURM_JOB_NUM_NODES", "").isdigit():
        out["num_machines"] = int(env["SLURM_JOB_NUM_NODES"])
    nodelist = env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST")
    if nodelist:
        hosts = hostlist(nodelist)  # empty when unreadable: the user gives launcher.main_process_ip
        if hosts:
            out["main_process_ip"] = hosts[0]
    return out


def hostlist(text: str) -> List[str]:
    """SLURM's compressed host list (``gpu[01-04,07],cpu7``, ``rack[1-2]-n[01-02]``) expanded, in order (``scontrol
    show hostnames``'s rule); [] when it cannot be read."""
    import itertools
    import re

    def expand(ranges: str) -> List[str]:
        out = []
        for part in ranges.split(","):
            lo, _, hi = part.partition("-")
            if not lo.isdigit() or (hi and not hi.isdigit()) or (hi and int(hi) < int(lo)):
                raise ValueError(part)
            out += [f"{n:0{len(lo)}d}" for n in range(int(lo), int(hi or lo) + 1)]
        return out

    items, depth, start = [], 0, 0  # split at the commas outside brackets
    for i, ch in enumerate(text + ","):
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if depth not in (0, 1):
            return []
        if ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    hosts: List[str] = []
    try:
        for item in items:
            pieces = re.split(r"\[([^\[\]]*)\]", item)  # text, ranges, text, ranges, ..., text
            if not item or any(c in p for p in pieces[0::2] for c in "[]"):
                return []
            choices = [[p] if k % 2 == 0 else expand(p) for k, p in enumerate(pieces)]
            hosts += ["".join(c) for c in itertools.product(*choices)]
    except ValueError:
        return []
    return hosts


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mixed_precision(value: Optional[str], cuda: bool, bf16: bool) -> str:
    if value in ("fp16", "bf16"):
        return value
    if value in (None, "auto"):
        return "bf16" if cuda and bf16 else "no"
    return "no"


def plan(cfg: DictConfig) -> Plan:
    """Check that this machine can run the launcher's settings and work out the launch; before any model is loaded.
    Raises ConfigError (a setting to add) or HardwareError (a setting this machine cannot run)."""
    import torch

    launcher = cfg.launcher
    cuda = torch.cuda.is_available()
    gpus = torch.cuda.device_count() if cuda else 0
    report = Report()
    n = launcher.num_processes
    if n is None:
        if not gpus:
            raise HardwareError("launcher.num_processes=null means one process per GPU, and this machine has no GPU.\n"
                                "    fix: set launcher.num_processes=<N> (processes on a CPU train over gloo), or use "
                                "launcher=local")
        n = gpus
    elif gpus and n > gpus:
        raise HardwareError(f"launcher.num_processes={n}, but this machine has {gpus} GPU(s): one process per GPU.\n"
                            f"    fix: set launcher.num_processes={gpus} (or null: one per GPU)")
    sharded = launcher.accelerate_config is None and launcher.strategy in SHARDED
    if sharded and not gpus:
        raise HardwareError(f"launcher.strategy={launcher.strategy} shards the model across CUDA GPUs, and this "
                            "machine has none.\n    fix: use launcher.strategy=ddp (data parallel, works on a CPU "
                            "over gloo)")
    if sharded and launcher.strategy.startswith("deepspeed") and importlib.util.find_spec("deepspeed") is None:
        raise HardwareError(f"launcher.strategy={launcher.strategy} needs the deepspeed package, which is not "
                            "installed.\n    fix: pip install deepspeed (on the GPU machines), or use "
                            "launcher.strategy=fsdp")
    slurm = slurm_machine() if launcher.name == "multinode" else {}
    machines = int(launcher.num_machines)
    if "num_machines" in slurm and slurm["num_machines"] != machines:
        report.error(f"launcher.num_machines={machines}, but this SLURM job has {slurm['num_machines']} nodes",
                     "launcher.num_machines", machines,
                     f"set launcher.num_machines={slurm['num_machines']}, or ask SLURM for {machines} nodes")
    rank = launcher.machine_rank if launcher.machine_rank is not None else slurm.get("machine_rank", 0)
    ip = launcher.main_process_ip or slurm.get("main_process_ip")
    if launcher.name == "multinode" and not ip:
        report.error("launcher=multinode needs the address of machine 0", "launcher.main_process_ip", None,
                     "set launcher.main_process_ip=<host or IP of machine 0> on every machine (under SLURM it is "
                     "read from the job)")
    if launcher.name == "multinode" and launcher.machine_rank is None and "machine_rank" not in slurm:
        report.error("launcher=multinode needs this machine's rank", "launcher.machine_rank", None,
                     f"set launcher.machine_rank=0 on machine 0, 1 on the next, ... up to {machines - 1} (under "
                     "SLURM it is read from the job)")
    if launcher.name == "multinode" and not cfg.output_dir and not slurm:
        report.error("launcher=multinode needs output_dir: started by hand, every machine would make its own "
                     "timestamped run dir", "output_dir", None, "set output_dir=<a folder on a filesystem every "
                     "machine shares>, the same on every machine (a SLURM job through hydra/launcher=slurm shares its "
                     "job dir)")
    report.raise_if_errors(before_anything=False)  # checked in the job: Hydra has made its run dir
    port = launcher.main_process_port or (29500 if machines > 1 else _free_port())
    bf16 = cuda and torch.cuda.is_bf16_supported()
    return Plan(num_processes=int(n), num_machines=machines, machine_rank=int(rank), main_process_ip=ip,
                main_process_port=int(port), config_file=accelerate_config_file(cfg),
                mixed_precision=_mixed_precision(cfg.training.mixed_precision, cuda, bf16), cpu=not gpus)


def command(p: Plan, spec_path: str) -> List[str]:
    """The ``accelerate launch`` command line for a plan (its --num_processes counts every machine's processes)."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", p.config_file,
           "--num_processes", str(p.world_size), "--num_machines", str(p.num_machines),
           "--machine_rank", str(p.machine_rank), "--main_process_port", str(p.main_process_port),
           "--mixed_precision", p.mixed_precision, "--dynamo_backend", "no"]
    if p.num_machines > 1:
        cmd += ["--main_process_ip", str(p.main_process_ip)]
    return cmd + ["-m", "autotrain_hydra.worker", spec_path]


def _log_file() -> Optional[str]:
    """The file this process logs to (Hydra's train.log), for rank 0 to append its lines to."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            return handler.baseFilename
    return None


def train(job: Any, p: Plan) -> Dict[str, Any]:
    """Run the training step of ``job`` in ``p.world_size`` processes; return rank 0's metrics (its notes and
    job metrics are added to ``job``). A failure in the processes is raised here as the error rank 0 had."""
    work = tempfile.mkdtemp(prefix="autotrain-launch-")
    try:
        # a string from ${oc.env:...} stays that interpolation: the ranks inherit the environment, and no secret is
        # written into the spec
        config = secrets.with_env_interpolations(OmegaConf.to_container(job.cfg, resolve=False),
                                                 OmegaConf.to_container(job.cfg, resolve=True), strings_only=True)
        spec = {"config": config, "output_dir": job.output_dir,
                "result": os.path.join(work, "result.json"), "log_file": _log_file()}
        spec_path = os.path.join(work, "spec.json")
        with open(spec_path, "w", encoding="utf-8") as f:
            json.dump(spec, f)
        cmd = command(p, spec_path)
        env = dict(os.environ)
        if p.cpu:
            env["ACCELERATE_USE_CPU"] = "true"  # every accelerate state in the workers picks gloo on the CPU
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // p.num_processes)))
        log.info("launcher=%s: %d process(es) on this machine (machine %d of %d, %d in all), strategy %s; output dir "
                 "%s", job.cfg.launcher.name, p.num_processes, p.machine_rank, p.num_machines, p.world_size,
                 os.path.basename(p.config_file).removesuffix(".yaml"), job.output_dir)
        log.info("launching: %s", " ".join(cmd))
        for handler in logging.getLogger().handlers:
            handler.flush()
        code = _wait(subprocess.Popen(cmd, env=env))
        return _collect(job, spec["result"], code, p)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _wait(proc: subprocess.Popen) -> int:
    """The launcher's exit code. Interrupted (Ctrl-C, SIGTERM: scancel, kill), the launcher is asked to stop with
    SIGTERM, which torchrun passes on to every rank, so that no rank trains on as an orphan."""
    with sigterm_as_interrupt():
        try:
            return proc.wait()
        except BaseException:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise


def _collect(job: Any, result_path: str, code: int, p: Plan) -> Dict[str, Any]:
    result = None
    failed_ranks = sorted(glob.glob(result_path + ".rank*"), key=lambda f: int(f.rsplit("rank", 1)[1]))
    for path in [result_path, *failed_ranks]:  # rank 0's result, else the first error of another rank
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                result = json.load(f)
            break
    if result and not result.get("ok"):  # a rank failed: raise its error here (same message, same exit code)
        raise _error(result)
    if code == 0 and p.machine_rank != 0:  # done; rank 0's result is on machine 0
        return {}
    if code != 0 or result is None:
        raise RunError(f"the {p.world_size} training processes failed (accelerate launch exited with {code}); "
                       f"each rank's log is above, marked [rank N/{p.world_size}]")
    job.metrics.update(result.get("job_metrics") or {})
    job.notes.extend(result.get("notes") or [])
    metrics = result["metrics"]
    metrics["world_size"] = p.world_size
    return metrics


def _error(result: Dict[str, Any]) -> BaseException:
    """The error a rank handed back, rebuilt here: ours as itself (same message, same exit code), anything else as a
    RunError naming the rank."""
    try:
        cls = getattr(importlib.import_module(result["error_module"]), result["error_type"])
        if isinstance(cls, type) and issubclass(cls, Exception) and cls.__module__.startswith("autotrain_hydra"):
            if result.get("report") is not None:  # a ConfigError: its issues, rebuilt
                from autotrain_hydra.schema.errors import ConfigError, Issue

                return ConfigError(Report([Issue.from_dict(i) for i in result["report"]]), before_anything=False)
            return cls(result["message"])
    except (ImportError, AttributeError, KeyError, TypeError):
        pass
    return RunError(f"rank {result.get('rank', '?')} failed: {result.get('error_type')}: {result.get('message')}\n"
                    "    its traceback is in the log above")
