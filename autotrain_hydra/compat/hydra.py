"""The Hydra internals autotrain_hydra uses, all in one place (hydra-core 1.3): the one way it initializes Hydra and
composes a config, and the pieces ``@hydra.main`` is made of.

Hydra's public API composes a config (``hydra.compose``) but cannot run a composed config: ``@hydra.main`` parses,
composes and runs in one call, composing twice on the way (once to find the mode, once to run) and offering no
point between composition and the run dir where a config can be checked. The entry point (``autotrain_hydra.app``)
therefore does those steps itself with the pieces ``@hydra.main`` is made of:

- ``parse_args``: Hydra's own command-line parser (``hydra._internal.utils.get_args_parser``), so every Hydra flag
  means what it means in any Hydra app;
- ``initialize``: the config search path (ours, and ``--config-dir`` searched first) and the global Hydra
  (``Hydra.create_main_hydra2``, ``create_config_search_path``);
- ``compose``: ``Hydra.compose_config`` in the mode the command needs (run or multirun); ``compose_config`` is the
  same for tests, ``--help`` and notebooks (no ``hydra`` node, initialized once per process);
- ``run`` / ``multirun``: what ``Hydra.run`` / ``Hydra.multirun`` do, on the already composed config: the job
  through ``hydra.core.utils.run_job`` (run dir, ``.hydra/``, logging), the multirun through the configured sweeper
  and launcher (``hydra.core.plugins.Plugins``, public), with the user's ``hydra.callbacks``
  (``hydra._internal.callbacks.Callbacks``);
- ``outcome``: a launched job's return value or its exception, read from ``JobReturn`` (``status``, and the private
  ``_return_value`` that holds a failed job's exception) without ``JobReturn.return_value``, which writes "Error
  executing job with overrides: [...]" to stderr for every trial that did not complete (a pruned one too) before
  re-raising: the sweeper says what happened to each trial itself;
- ``delegate``: the flags that only print Hydra's own information (``--info``, ``--shell-completion``,
  ``--hydra-help``, ``--experimental-rerun``) run through Hydra's own main (``_run_hydra``).

``tests/compat/test_hydra.py`` checks each of these hooks against the installed Hydra.
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any, Callable, Iterable, List, Optional, Sequence

from omegaconf import DictConfig, OmegaConf

TaskFunction = Callable[[DictConfig], Any]
JOB_NAME = "train"
_initialized_for: Optional[tuple] = None


def args_parser() -> argparse.ArgumentParser:
    from hydra._internal.utils import get_args_parser

    return get_args_parser()


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Hydra's command line: its flags (``--multirun``, ``--cfg``, ``--config-dir``, ...) and the overrides."""
    return args_parser().parse_args(list(argv))


def initialize(config_dir: str, extra_dir: Optional[str] = None) -> None:
    """The global Hydra for our config dir (and ``--config-dir``, searched first, as Hydra does); our schema nodes
    and our sweeper's node are registered. Raises InputError for a ``--config-dir`` that does not exist."""
    global _initialized_for
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.config_search_path import SearchPathQuery
    from hydra.core.global_hydra import GlobalHydra

    from autotrain_hydra.errors import InputError
    from autotrain_hydra.schema import register

    if extra_dir is not None and not os.path.isdir(os.path.expanduser(extra_dir)):
        what = "a file, not a directory" if os.path.exists(os.path.expanduser(extra_dir)) else "no such directory"
        raise InputError(f"--config-dir {extra_dir}: {what}\n    fix: give the folder that holds your "
                         "config groups (e.g. my_configs/model/my_model.yaml)")
    register()
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its set-up lines (optuna imports it) are noise
    GlobalHydra.instance().clear()
    search_path = create_config_search_path(search_path_dir=os.path.abspath(config_dir))
    if extra_dir is not None:
        search_path.prepend(provider="command-line", path=f"file://{os.path.abspath(os.path.expanduser(extra_dir))}",
                            anchor=SearchPathQuery(provider="schema"))
    Hydra.create_main_hydra2(task_name=JOB_NAME, config_search_path=search_path)
    register_sweeper()  # hydra/sweeper=optuna is our sweeper: stored over the plugin's, after Hydra's plugin scan
    _initialized_for = (os.path.abspath(config_dir), extra_dir)


SWEEPER_TARGET = "hydra_plugins.autotrain_hydra_sweeper.SharedStudySweeper"


def register_sweeper() -> None:
    """``hydra/sweeper=optuna`` → our sweeper: hydra-optuna-sweeper's config schema (its settings and sampler group),
    our ``_target_``. Stored after Hydra's plugin scan registered the plugin's node, which it replaces."""
    from dataclasses import dataclass

    from hydra.core.config_store import ConfigStore
    from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf

    @dataclass
    class SharedStudySweeperConf(OptunaSweeperConf):
        _target_: str = SWEEPER_TARGET

    ConfigStore.instance().store(group="hydra/sweeper", name="optuna", node=SharedStudySweeperConf,
                                 provider="autotrain_hydra")


def clear() -> None:
    """Forget the global Hydra (a process may run several commands: tests, notebooks)."""
    global _initialized_for
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    _initialized_for = None


def compose(config_name: str, overrides: List[str], multirun: bool, with_hydra_logging: bool = False) -> DictConfig:
    """The composed config, with its ``hydra`` node, in run or multirun mode (multirun: sweep overrides are left to
    the sweeper). A config that cannot be composed is an InputError."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from hydra.types import RunMode
    from omegaconf.errors import OmegaConfBaseException

    from autotrain_hydra.errors import InputError

    mode = RunMode.MULTIRUN if multirun else RunMode.RUN
    try:
        return GlobalHydra.instance().hydra.compose_config(config_name=config_name, overrides=list(overrides),
                                                           run_mode=mode, with_log_configuration=with_hydra_logging)
    except (HydraException, OmegaConfBaseException) as e:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        cause = f"\n    ({e.__cause__})" if isinstance(e.__cause__, OmegaConfBaseException) else ""
        raise InputError(f"the configuration cannot be composed: {e}{cause}") from e


def compose_config(overrides: Iterable[str] = (), config_dir: Optional[str] = None) -> DictConfig:
    """The app's config for these overrides (no ``hydra`` node), as ``python -m autotrain_hydra <overrides>`` composes
    it: for tests, ``--help`` and notebooks. Hydra is initialized once and kept."""
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import open_dict

    from autotrain_hydra import paths

    wanted = (os.path.abspath(str(config_dir or paths.config_dir())), None)
    if _initialized_for != wanted or not GlobalHydra.instance().is_initialized():
        initialize(wanted[0])
    cfg = compose("config", list(overrides), multirun=False)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def _context(cfg: DictConfig) -> Any:
    from hydra._internal.callbacks import Callbacks
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import HydraContext

    return HydraContext(config_loader=GlobalHydra.instance().config_loader(), callbacks=Callbacks(cfg))


def run(cfg: DictConfig, task: TaskFunction) -> Any:
    """One job, as ``Hydra.run`` runs it: the run dir, ``.hydra/`` and the job's logging, then ``task``; returns
    what ``task`` returned (its exception is raised here)."""
    from hydra.core.utils import run_job

    context = _context(cfg)
    context.callbacks.on_run_start(config=cfg, config_name=cfg.hydra.job.config_name)
    ret = run_job(hydra_context=context, task_function=task, config=cfg, job_dir_key="hydra.run.dir",
                  job_subdir_key=None, configure_logging=True)
    context.callbacks.on_run_end(config=cfg, config_name=cfg.hydra.job.config_name, job_return=ret)
    return ret.return_value  # raises the job's exception


def multirun(cfg: DictConfig, task: TaskFunction) -> Any:
    """A multirun, as ``Hydra.multirun`` runs it: the configured sweeper, given the typed overrides."""
    from hydra.core.plugins import Plugins
    from hydra.errors import InstantiationException

    from autotrain_hydra.errors import InputError

    context = _context(cfg)
    context.callbacks.on_multirun_start(config=cfg, config_name=cfg.hydra.job.config_name)
    try:
        sweeper = Plugins.instance().instantiate_sweeper(config=cfg, hydra_context=context, task_function=task)
    except InstantiationException as e:  # a _target_ in hydra.sweeper (its sampler, ...) that cannot be made
        raise InputError(f"the sweeper cannot be made from hydra.sweeper: {str(e).splitlines()[0]}\n    fix: check "
                         "the _target_ of hydra.sweeper and hydra.sweeper.sampler (or use sweep.sampler)") from e
    global _MULTIRUN_FILE
    # where the sweeper writes multirun.yaml (the sweep's config and overrides as typed): this process's sweep dir,
    # resolved once (unique_dir caches it on cfg, which the sweeper reads); redacted by each job run in this process
    # (scrub_job_files) and when the sweep ends, however it ends
    _MULTIRUN_FILE = os.path.join(os.path.abspath(str(cfg.hydra.sweep.dir)), "multirun.yaml")
    try:
        result = sweeper.sweep(arguments=list(OmegaConf.to_container(cfg.hydra.overrides.task, resolve=False)))
    finally:
        from autotrain_hydra import secrets

        if os.path.isfile(_MULTIRUN_FILE):
            secrets.scrub_file(_MULTIRUN_FILE)
        _MULTIRUN_FILE = None
    context.callbacks.on_multirun_end(config=cfg, config_name=cfg.hydra.job.config_name)
    return result


_MULTIRUN_FILE: Optional[str] = None  # multirun.yaml of the sweep this process runs (``multirun``)


def delegate(args: argparse.Namespace, task: TaskFunction, config_dir: str) -> int:
    """Hydra's own main for the flags that print Hydra's information (``--info``, ``--hydra-help``, ...); returns
    its exit code (it exits when done)."""
    from hydra._internal.utils import _run_hydra

    from autotrain_hydra.schema import register

    register()  # our base_* schema nodes, which the configs' defaults lists name
    clear()
    try:
        _run_hydra(args=args, args_parser=args_parser(), task_function=task,
                   config_path=os.path.abspath(config_dir), config_name=args.config_name or "config")
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        clear()
    return 0


def job_number() -> Optional[int]:
    """This job's number in a multirun (None in a single run or outside Hydra)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    hc = HydraConfig.get()
    # a launcher numbers each job of a multirun (hydra.job.num); a single run has none. A job's own config is
    # composed again for it (ConfigLoaderImpl.load_sweep_config), where hydra.mode is not set: it cannot tell a job
    # of a multirun (it was read here once, and every trial of a sweep with output_dir=... wrote into output_dir)
    return None if OmegaConf.is_missing(hc.job, "num") else hc.job.num


def job_dir() -> Optional[str]:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get().runtime.output_dir if HydraConfig.initialized() else None


def scrub_job_files() -> None:
    """The files Hydra saved for this job (``.hydra/config.yaml``, ``hydra.yaml``, ``overrides.yaml``: the config as
    written, ``${oc.env:...}`` unresolved) and, in a job of a sweep this process runs, the sweep's ``multirun.yaml``
    (its config and overrides) redacted where they hold a secret typed as it is (``secrets.redact``)."""
    from hydra.core.hydra_config import HydraConfig

    from autotrain_hydra import secrets

    if not HydraConfig.initialized():
        return
    hc = HydraConfig.get()
    files = []
    if hc.output_subdir is not None:
        files += [os.path.join(hc.runtime.output_dir, hc.output_subdir, name)
                  for name in ("config.yaml", "hydra.yaml", "overrides.yaml")]
    if _MULTIRUN_FILE:  # a job of the sweep this process runs: its multirun.yaml, at once
        files.append(_MULTIRUN_FILE)
    for path in files:
        if os.path.isfile(path):
            secrets.scrub_file(path)


def task_overrides() -> List[str]:
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def outcome(ret: Any) -> Any:
    """The job's return value; a failed job's exception is raised (see the module's docstring)."""
    from hydra.core.utils import JobStatus

    if ret.status == JobStatus.COMPLETED:
        return ret._return_value
    error = ret._return_value
    if isinstance(error, BaseException):
        raise error
    return ret.return_value  # an unknown shape: Hydra's own way


def sweep_study() -> Optional[tuple]:
    """(storage URL, study name, trial number) of the Optuna study this job is a trial of, read from the job's own
    Hydra config (``hydra.sweeper.*``, ``hydra.sweep.dir``, ``hydra.job.num``: the sweeper launches trial N as job N);
    None outside a multirun of ``hydra/sweeper=optuna``. Nothing is passed to the trial for it: a storage URL with a
    password is never written into a trial's overrides or config. The defaults are the sweeper's
    (``paths.default_storage``); a relative sqlite path is the launch dir's."""
    from hydra.core.hydra_config import HydraConfig

    from autotrain_hydra.paths import default_storage

    number = job_number()
    if number is None:
        return None
    hc = HydraConfig.get()
    sweeper = hc.sweeper
    if sweeper.get("_target_") != SWEEPER_TARGET:
        return None
    storage = sweeper.get("storage") or default_storage(hc.sweep.dir, hc.runtime.cwd)
    if isinstance(storage, str) and storage.startswith("sqlite:///") and not storage.startswith("sqlite:////"):
        storage = "sqlite:///" + os.path.join(hc.runtime.cwd, storage[len("sqlite:///"):])
    return storage, sweeper.get("study_name"), number
