"""The Optuna sweeper that ``hydra/sweeper=optuna`` and ``features=[sweep]`` run, on Hydra's public ``Sweeper``
interface and Optuna's public API (ask and tell), with hydra-optuna-sweeper's settings and grammar.

Start the same sweep command in several processes, on several machines or as several SLURM jobs, pointed at one
Optuna RDB storage (``sweep.storage``: sqlite on one machine, a PostgreSQL/MySQL URL on a cluster; by default
sqlite in the sweep dir, so workers given the same ``hydra.sweep.dir`` share it) and they share one study:

- **one budget**: ``n_trials`` is the study's total, over every worker, of the trials that ended by themselves
  (completed, pruned, or failed by their own error) or run; a trial lost with its worker is not counted. A worker
  asks for a trial only while the study has fewer; with sqlite the count and the ask are one step under a file
  lock, so the total is exact. Running the command again continues an unfinished study up to ``n_trials``; a
  finished one runs no trial and says so.
- **distinct trials**: trial numbers come from the storage, and each trial's dir is its study number
  (``<sweep dir>/<number>``). Trial k draws its random parameters from a sampler seeded with ``seed + k``: workers
  given the same seed do not propose the same parameters, and a sweep gives the same trials however many workers
  run it.
- **no trial left running forever, none lost**: while a trial runs, its worker records a heartbeat in the storage
  every ``sweep.heartbeat_interval`` seconds. Before it asks for a trial, every worker marks FAIL the trials lost
  with their worker: those whose heartbeat is older than ``sweep.grace_period`` (any machine), and those whose
  worker process on this machine is gone (SIGKILL, the OOM killer: at once). A worker stopped by SIGTERM/SIGINT
  marks its own trial so as it exits. A lost trial is re-run, with its parameters, by the next worker to ask (as
  ``optuna.storages.RetryFailedTrialCallback`` queues a retry; the report says which trial re-ran which), one
  worker only; a trial lost three times is given up. A trial that failed by its own error is not re-run.

**What is searched**: ``hydra.sweeper.params`` (Hydra's way), the sweep feature's space (``sweep.params``, or the
trainer's default space) and sweep overrides on the command line. A key that is searched and also given a fixed
value on the command line is searched: the log says which values are replaced, and every trial's config and the
report hold the searched value. **Settings**: a setting typed as ``hydra.sweeper.<x>`` (or
``hydra/sweeper/sampler=``) wins over the sweep node's; each trial gets the sweep node of the settings that ran.

Imported only when a sweep runs (optuna is not light).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
import warnings
from typing import Any, Dict, Iterator, List, Optional, Tuple

import optuna
from omegaconf import DictConfig, OmegaConf
from optuna.trial import TrialState

from autotrain_hydra.errors import InputError, SweepFailed, TrialPruned
from autotrain_hydra.features.sweep import LOST, NOT_RUN, NOTE, redact, rerun_of, trial_fates, write_report
from autotrain_hydra.processes import sigterm_as_interrupt
from autotrain_hydra.schema.keys import get
from autotrain_hydra.schema.metrics import sweep_objective
from autotrain_hydra.schema.sweep_space import Dist, grid_choices, legacy_dist, parse_space, search_space

log = logging.getLogger(__name__)

OVER_BUDGET = f"{NOT_RUN}, the study already had n_trials trials"
WORKER = "autotrain_hydra_worker"  # user attribute: the worker process that runs the trial (this_worker)
MAX_RERUNS = 2  # a trial lost a third time is given up: a new trial takes its place in the budget
SAMPLERS = {"tpe": "optuna.samplers.TPESampler", "random": "optuna.samplers.RandomSampler",
            "grid": "optuna.samplers.GridSampler", "cmaes": "optuna.samplers.CmaEsSampler"}


# ----------------------------------------------------------------------------------------------- distributions
# ----------------------------------------------------------------------------------------------- storage
def storage_for(url: Any, heartbeat_interval: Optional[int], grace_period: Optional[int]) -> Any:
    """An RDBStorage for a database URL, with heartbeats when an interval is given (a trial whose heartbeat is older
    than the grace period is failed by ``fail_stale_trials``, which queues its re-run through the storage's
    ``failed_trial_callback``: ``rerun_stale``); anything else (None: in memory, a storage object) as is."""
    if isinstance(url, str) and "://" in url:
        try:
            from autotrain_hydra.compat.optuna import engine_kwargs

            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs(url),
                                              heartbeat_interval=int(heartbeat_interval) if heartbeat_interval
                                              else None, grace_period=int(grace_period) if grace_period else None,
                                              failed_trial_callback=rerun_stale if heartbeat_interval else None)
        except ModuleNotFoundError as e:  # the database's driver (psycopg2, pymysql, ...)
            from autotrain_hydra.errors import InputError
            from autotrain_hydra.secrets import redact_url

            raise InputError(f"sweep.storage {redact_url(url)} needs the {e.name} package, which is not installed."
                             f"\n    fix: pip install {e.name} (or use a sqlite:/// storage)") from None
    return url


def sqlite_path(url: Any) -> Optional[str]:
    if isinstance(url, str) and url.startswith("sqlite:///"):
        return url[len("sqlite:///"):]
    return None


@contextlib.contextmanager
def budget_lock(url: Any) -> Iterator[None]:
    """Count-then-ask as one step for the workers of one machine: a file lock beside a sqlite database."""
    path = sqlite_path(url)
    if path is None or path == ":memory:":
        yield
        return
    import fcntl

    with open(path + ".lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def open_study(url: Any, *, study_name: Optional[str], sampler: Any, directions: List[str],
               heartbeat_interval: Optional[int], grace_period: Optional[int], tries: int = 5,
               pruner: Any = None) -> tuple:
    """(storage, study): the shared study, created by whichever worker comes first and loaded by the others.

    Workers started together race to create a new database's tables and its alembic version row (``UNIQUE constraint
    failed: alembic_version.version_num``, ``table ... already exists``). With sqlite the workers of one machine take
    turns under the budget lock; on a database server the loser of the race retries once the winner's schema is
    there."""
    import sqlalchemy.exc

    path = sqlite_path(url)
    if path and path != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)  # the default: optuna.db in the sweep dir
    attempt = 0
    while True:
        attempt += 1
        try:
            with budget_lock(url):
                storage = storage_for(url, heartbeat_interval, grace_period)
                study = optuna.create_study(study_name=study_name, storage=storage, sampler=sampler,
                                            directions=directions, load_if_exists=True, pruner=pruner)
            return storage, study
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError) as e:
            if attempt == tries:
                raise
            log.info("sweep: another worker is creating the study's storage (%s); retrying", type(e).__name__)
            time.sleep(0.2 * attempt)


def trial_id(storage: Any, study: optuna.Study, number: int) -> int:
    """The storage's id of trial ``number`` of ``study`` (what heartbeats are recorded against)."""
    from autotrain_hydra.compat.optuna import trial_id as storage_trial_id

    return storage_trial_id(storage, study.study_name, number)


def suggest(trial: optuna.trial.Trial, key: str, dist: Dist) -> Any:
    """Draw one parameter through the trial's public suggest API."""
    if dist.kind == "categorical":
        return trial.suggest_categorical(key, list(dist.choices))
    if dist.kind == "int":
        return trial.suggest_int(key, int(dist.low), int(dist.high), step=int(dist.step or 1), log=dist.log)
    return trial.suggest_float(key, dist.low, dist.high, step=None if dist.log else dist.step, log=dist.log)


@contextlib.contextmanager
def heartbeat(storage: Any, trial: Optional[int]) -> Iterator[None]:
    """Record the trial's heartbeat every heartbeat interval until the block ends (the first one is recorded with
    the ask)."""
    if trial is None:
        yield
        return
    interval = storage.get_heartbeat_interval()
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            try:
                storage.record_heartbeat(trial)
            except Exception as e:  # a missed beat is not fatal; several make the trial stale
                log.warning("sweep: could not record the heartbeat of trial id %s (%s)", trial, e)

    thread = threading.Thread(target=beat, name=f"optuna-heartbeat-{trial}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def beats(storage: Any) -> bool:
    return isinstance(storage, optuna.storages.RDBStorage) and bool(storage.get_heartbeat_interval())


# ----------------------------------------------------------------------------------------------- lost trials
def _proc_stat(pid: Any) -> Optional[List[str]]:
    """The fields of /proc/<pid>/stat after the command name (state first, start time at index 19), or None."""
    try:
        with open(f"/proc/{int(pid)}/stat", encoding="utf-8", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError, TypeError, ValueError):
        return None


def this_worker() -> Dict[str, Any]:
    """Who runs a trial: the machine (host name, boot id), the pid namespace, the process (pid and start time)."""
    import socket

    def read(path: str, link: bool = False) -> Optional[str]:
        try:
            if link:
                return os.readlink(path)
            with open(path, encoding="utf-8") as f:
                return f.read().strip()
        except OSError:
            return None

    stat = _proc_stat(os.getpid())
    return {"host": socket.gethostname(), "boot": read("/proc/sys/kernel/random/boot_id"),
            "pidns": read("/proc/self/ns/pid", link=True), "pid": os.getpid(), "start": stat[19] if stat else None}


def worker_gone(worker: Any) -> bool:
    """True when the worker that runs a trial is known to be gone: it ran on this machine since its last boot, in
    this pid namespace, and its pid is now free, a zombie or another process (another start time). A worker of
    another machine or container, or a system without /proc, is not known here: its heartbeat tells."""
    me = this_worker()
    if not isinstance(worker, dict) or me["boot"] is None or me["pidns"] is None or me["start"] is None:
        return False
    if any(worker.get(k) != me[k] for k in ("host", "boot", "pidns")):
        return False
    stat = _proc_stat(worker.get("pid"))
    return stat is None or stat[0] in ("Z", "X") or stat[19] != worker.get("start")


@contextlib.contextmanager
def plain_sampler(study: optuna.Study) -> Iterator[None]:
    """``study.sampler`` swapped for one that does nothing when a trial starts or ends, while a re-run (its
    parameters already set) is taken or a trial that did not run is told: the searching sampler's own records (a
    grid's point, CMA-ES's state) stay those of the trials it drew."""
    sampler = study.sampler
    study.sampler = optuna.samplers.RandomSampler()
    try:
        yield
    finally:
        study.sampler = sampler


def tell(study: optuna.Study, trial: Any, value: Optional[float] = None,
         state: TrialState = TrialState.COMPLETE) -> None:
    """A trial's end told to the study: its value, or its state (pruned, failed). optuna's grid sampler stops the
    study when its last point is told (``Study.stop``, which raises outside optuna's own loop: the sweep ended with
    exit 1 and no final report when the last trial was pruned or failed): told with a sampler that does nothing at a
    trial's end (a grid's points are recorded when drawn; this sweeper counts its trials itself)."""
    with plain_sampler(study) if isinstance(study.sampler, optuna.samplers.GridSampler) else contextlib.nullcontext():
        study.tell(trial, value, state=state)


def rerun(study: optuna.Study, lost: Any) -> None:
    """Queue the re-run of a lost trial, with its parameters: a WAITING trial that the next ``ask`` takes (optuna's
    trial queue), recorded as ``optuna.storages.RetryFailedTrialCallback`` records a retry (system attributes
    ``failed_trial``: the first lost trial; ``retry_history``: every lost one in order), so that its
    ``retried_trial_number`` reads it. A trial lost more than MAX_RERUNS times is given up: a FAIL record that is not
    run takes the re-run's place, so that a new trial fills the budget. Nothing when the trial has its successor."""
    if any(rerun_of(t) == lost.number for t in study.get_trials(deepcopy=False)):
        return
    history = [*lost.system_attrs.get("retry_history", []), lost.number]
    system_attrs = {**lost.system_attrs, "failed_trial": history[0], "retry_history": history}
    given_up = len(history) > MAX_RERUNS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.add_trial(optuna.trial.create_trial(
            state=TrialState.FAIL if given_up else TrialState.WAITING, params=lost.params,
            distributions=lost.distributions, system_attrs=system_attrs,
            user_attrs={NOTE: f"{NOT_RUN}: trial {history[0]} was lost {len(history)} times, given up"}
            if given_up else {}))
    if given_up:
        log.warning("sweep: trial %d (parameters of trial %d) was lost with its worker %d times: given up; a new "
                    "trial takes its place", lost.number, history[0], len(history))
    else:
        log.warning("sweep: trial %d will be re-run with its parameters (%s) by the next worker to ask", lost.number,
                    ", ".join(f"{k}={v}" for k, v in lost.params.items()) or "none")


def rerun_stale(study: optuna.Study, trial: Any) -> None:
    """The storage's ``failed_trial_callback``: ``fail_stale_trials`` marked the trial FAIL because its heartbeat
    was older than the grace period (its worker died, or its machine was lost)."""
    log.warning("sweep: trial %d was lost: its worker stopped sending heartbeats (it died); marked FAIL",
                trial.number)
    rerun(study, trial)


def lose(study: optuna.Study, storage: Any, number: int, why: str) -> bool:
    """Mark a RUNNING trial lost (noted first, so a re-run follows even if this process dies next) and FAIL. False
    when it ended meanwhile (another worker marked it, or it finished)."""
    try:
        with plain_sampler(study):  # through the study (its storage caches the trials it has read)
            optuna.trial.Trial(study, trial_id(storage, study, number)).set_user_attr(NOTE, f"{LOST}: {why}")
            study.tell(number, state=TrialState.FAIL)
    except (RuntimeError, ValueError) as e:  # already finished: "can not be updated"
        log.debug("sweep: trial %d: %s", number, e)
        return False
    log.warning("sweep: trial %d was lost: %s; marked FAIL", number, why)
    return True


def sampler_of(config: DictConfig) -> Tuple[str, DictConfig]:
    """(name, node to instantiate) of the sampler that runs. With the sweep feature: ``sweep.sampler``, seeded with
    ``hydra.sweeper.sampler.seed`` when typed, else ``sweep.seed``; a sampler chosen Hydra's way
    (``hydra/sweeper/sampler=<x>``, ``hydra.sweeper.sampler.*``) wins, as it is."""
    typed_sampler = any(o.split("=", 1)[0].lstrip("+") == "hydra/sweeper/sampler" for o in config.hydra.overrides.hydra)
    if get(config, "sweep.enabled") and not typed_sampler:
        name = str(get(config, "sweep.sampler"))
        node: Dict[str, Any] = {"_target_": SAMPLERS[name]}
        if name == "grid":
            node["_partial_"] = True  # the grid's points are known when the sweep begins
        else:
            typed_seed = OmegaConf.select(config, "hydra.sweeper.sampler.seed")
            node["seed"] = get(config, "sweep.seed") if typed_seed is None else typed_seed
        return name, OmegaConf.create(node)
    node = OmegaConf.create(OmegaConf.to_container(config.hydra.sweeper.sampler, resolve=True))
    target = node.get("_target_")
    return next((k for k, v in SAMPLERS.items() if v == target), str(target)), node


# ----------------------------------------------------------------------------------------------- the sweeper
class SharedStudy:
    """hydra-optuna-sweeper's settings (``hydra.sweeper.*``), our loop."""

    def __init__(self, sampler: Any, direction: Any, storage: Any, study_name: Optional[str], n_trials: int,
                 n_jobs: int, max_failure_rate: float, search_space: Any, custom_search_space: Optional[str],
                 params: Any) -> None:
        self.direction, self.storage, self.study_name = direction, storage, study_name
        self.n_trials, self.n_jobs, self.max_failure_rate = int(n_trials), n_jobs, max_failure_rate
        self.search_space, self.params = search_space, params
        self.extender = None
        if custom_search_space:
            from hydra.utils import instantiate

            self.extender = instantiate({"_target_": custom_search_space, "_partial_": True})

    def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        if self.n_trials < 1:
            raise InputError(f"hydra.sweeper.n_trials={self.n_trials}: a sweep runs at least one trial\n    fix: "
                             "hydra.sweeper.n_trials=<a number >= 1>")
        if not 0.0 <= self.max_failure_rate <= 1.0:  # here, not in __init__: Hydra's instantiate would wrap the error
            raise InputError(f"hydra.sweeper.max_failure_rate={self.max_failure_rate}: it is the share of trials that "
                             "may fail, from 0 to 1\n    fix: hydra.sweeper.max_failure_rate=1.0 (the default)")
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(config=config, hydra_context=hydra_context,
                                                                task_function=task_function)
        self.sweep_dir = str(config.hydra.sweep.dir)
        self.app_sweep = bool(get(config, "sweep.enabled"))
        sweep = config.get("sweep") or {}
        self.heartbeat_interval = sweep.get("heartbeat_interval")
        self.grace_period = sweep.get("grace_period")
        self.sampler_name, self.sampler_node = sampler_of(config)
        self.seed = self.sampler_node.get("seed")
        self.pruner = None  # the study's pruner (a trial finds its study itself: compat.hydra.sweep_study)
        if self.app_sweep:
            from autotrain_hydra.compat.optuna import pruner
            from autotrain_hydra.paths import default_storage, default_study_name

            self.metric, direction = sweep_objective(config)
            self.direction = self.direction or direction
            self.storage = self.storage or default_storage(self.sweep_dir)
            self.study_name = self.study_name or default_study_name(get(config, "trainer.name"))
            self.pruner = pruner(config)
        else:
            self.metric = "objective"  # what the trials return: the run's objective

    # -- the space
    def _space(self, arguments: List[str]) -> Tuple[Dict[str, Dist], Dict[str, str]]:
        searched: Dict[str, Dist] = {}
        if self.search_space and not self.params:
            warnings.warn("hydra.sweeper.search_space is deprecated by hydra-optuna-sweeper: use hydra.sweeper.params")
            searched = {str(k): legacy_dist(v) for k, v in OmegaConf.to_container(self.search_space).items()}
        lines = [f"{k}={v}" for k, v in (self.params or {}).items()]
        if self.app_sweep:
            lines += [f"{k}={g}" for k, g in search_space(self.config).items()]
        searched.update(parse_space(lines)[0])
        typed_searched, fixed = parse_space(arguments)
        searched.update(typed_searched)
        for key in [k for k in fixed if k.lstrip("+") in searched]:
            log.warning("sweep: %s is searched; its value on the command line (%s) is replaced in every trial",
                        key.lstrip("+"), fixed.pop(key))
        return searched, fixed

    def _settings_overrides(self, directions: List[str]) -> List[str]:
        """The sweep node of the settings that run (a setting typed as hydra.sweeper.<x> wins), for each trial."""
        if not self.app_sweep:
            return []
        out = [f"sweep.n_trials={self.n_trials}", f"sweep.metric={self.metric}"]
        if len(directions) == 1:
            out.append(f"sweep.direction={directions[0].lower()}")
        if self.sampler_name in SAMPLERS:
            out.append(f"sweep.sampler={self.sampler_name}")
        return out

    def _sampler(self, dists: Dict[str, Dist], seed_offset: int = 0) -> Any:
        from hydra.utils import instantiate

        from hydra.errors import InstantiationException

        try:
            if self.sampler_name == "grid" or self.sampler_node.get("_target_") == SAMPLERS["grid"]:
                choices = {k: grid_choices(d) for k, d in dists.items()}
                return instantiate(self.sampler_node)(choices)
            if self.seed is not None:
                return instantiate(self.sampler_node, seed=int(self.seed) + seed_offset)
            return instantiate(self.sampler_node)
        except InstantiationException as e:
            raise InputError(f"hydra.sweeper.sampler ({self.sampler_node.get('_target_')}) cannot be made: "
                             f"{str(e).splitlines()[0]}\n    fix: sweep.sampler=tpe|random|grid|cmaes, or "
                             "hydra/sweeper/sampler=<one of hydra-optuna-sweeper's>") from e

    def _directions(self) -> List[str]:
        """The study's direction. A run returns one objective: several directions (a multi-objective study) are
        refused, before any trial."""
        direction = self.direction
        if isinstance(direction, (list, tuple)) or OmegaConf.is_list(direction):
            raise InputError(f"hydra.sweeper.direction={list(direction)}: a run returns one objective, so a sweep "
                             "has one direction\n    fix: hydra.sweeper.direction=minimize (or maximize)")
        name = str(getattr(direction, "name", direction) or "minimize").lower()
        if name not in ("minimize", "maximize"):
            raise InputError(f"hydra.sweeper.direction={direction}: not a direction\n    fix: "
                             "hydra.sweeper.direction=minimize (or maximize)")
        return [name]

    def _fit_to_grid(self, searched: Dict[str, Dist]) -> None:
        """A grid smaller than n_trials is visited once: n_trials becomes its size, and the log says so."""
        size = math.prod(len(grid_choices(d)) for d in searched.values())
        if size < self.n_trials:
            log.warning("sweep: the grid has %d points, fewer than n_trials=%d: %d trials", size, self.n_trials, size)
            self.n_trials = size

    # -- the loop
    def sweep(self, arguments: List[str]) -> None:
        searched, fixed = self._space(list(arguments))
        if self.sampler_name == "grid":
            self._fit_to_grid(searched)
        if self.n_jobs and self.n_jobs > 1:
            log.info("sweep: n_jobs=%s: this worker runs its trials one at a time; start more workers on the same "
                     "storage to run trials in parallel (docs/scaling.md)", self.n_jobs)
        directions = self._directions()
        base = [f"{k}={v}" for k, v in fixed.items()]
        base += [o for o in self._settings_overrides(directions) if o.split("=", 1)[0] not in fixed]
        storage, study = open_study(self.storage, study_name=self.study_name, sampler=self._sampler(searched),
                                    directions=directions, heartbeat_interval=self.heartbeat_interval,
                                    grace_period=self.grace_period, pruner=self.pruner)
        os.makedirs(self.sweep_dir, exist_ok=True)
        log.info("sweep: study %s in %s, %d trial(s) in all (already there: %d), searching %s", study.study_name,
                 redact(self.storage) if self.storage else "memory", self.n_trials, len(study.trials),
                 ", ".join(searched) or "nothing")
        ran, failures, last_error = 0, 0, None
        with sigterm_as_interrupt():  # a stopped worker (scancel, Ctrl-C) marks its trial FAIL
            while True:
                if ran:  # a trial ended: the report and the page say so, live (a failure there stops no sweep)
                    try:
                        self._report(study, directions, final=False)
                    except Exception as e:
                        log.warning("sweep: the report could not be rewritten (%s: %s); the sweep goes on",
                                    type(e).__name__, e)
                trial = self._next_trial(study, storage, searched)
                if trial is None:
                    break
                try:
                    params = dict(trial.params)
                    if self.extender is not None:
                        self.extender(self.config, trial)
                        params = dict(trial.params)
                    overrides = base + [f"{k}={v}" for k, v in params.items()]
                    beat = trial_id(storage, study, trial.number) if beats(storage) else None
                    with heartbeat(storage, beat):
                        ret = self.launcher.launch([overrides], initial_job_idx=trial.number)[0]
                except KeyboardInterrupt:  # the worker is stopping (Ctrl-C, SIGTERM): the trial did not finish
                    with budget_lock(self.storage):
                        trial.set_user_attr(NOTE, f"{LOST}: its worker was stopped (SIGTERM/SIGINT)")
                        with plain_sampler(study):
                            study.tell(trial, state=TrialState.FAIL)
                        log.warning("sweep: trial %d marked FAIL: this worker was stopped", trial.number)
                        rerun(study, frozen(study, trial.number))
                    raise
                except Exception as e:  # the sweeper itself failed around the trial (not the trial's own error)
                    study.tell(trial, state=TrialState.FAIL)
                    log.error("sweep: trial %d marked FAIL: the sweeper failed to run it (%s)", trial.number, e)
                    raise
                ran += 1
                try:
                    tell(study, trial, self._value(ret))
                except TrialPruned as e:  # the run reported through its own storage: this worker's cached study
                    trial.report(e.value, e.step)  # learns the last value (the study's value of a pruned trial)
                    tell(study, trial, state=TrialState.PRUNED)
                    log.info("sweep: trial %d ended PRUNED: %s", trial.number, e)
                except Exception as e:
                    tell(study, trial, state=TrialState.FAIL)
                    log.warning("sweep: trial %d failed: %s", trial.number, e)
                    failures += 1
                    last_error = str(e)  # its text: the error's traceback holds the failed trial's model
                    if failures / ran > self.max_failure_rate:
                        self._report(study, directions)
                        raise SweepFailed(f"the sweep stopped: {failures} of {ran} trial(s) failed "
                                          f"(hydra.sweeper.max_failure_rate={self.max_failure_rate}); the last "
                                          f"error: {e}") from e
                finally:
                    ret = None  # a failed trial's return holds its traceback, its frames, its model: not kept
        self._report(study, directions)
        trials = study.get_trials(deepcopy=False)
        fates = trial_fates(trials)
        counted = [t for t in trials if fates[t.number] == "own"]
        complete = sum(t.state == TrialState.COMPLETE for t in trials)
        running = sum(t.state == TrialState.RUNNING for t in counted)
        if running:
            log.info("sweep: %d trial(s) still run in other workers; a worker that died is found when its heartbeat "
                     "is older than sweep.grace_period (at once on its own machine), and its trial is re-run by the "
                     "next worker to run", running)
        if ran == 0:
            log.info("sweep: the study %s is complete: it has %d of n_trials=%d trials (%d complete); no trial was "
                     "run. Raise n_trials to continue it.", study.study_name, len(counted), self.n_trials,
                     complete)
            return
        log.info("sweep: this worker ran %d trial(s), %d failed; the study has %d (and %d lost with their worker, "
                 "re-run)", ran, failures, len(counted), sum(f == "lost" for f in fates.values()))
        if complete == 0:
            raise SweepFailed(f"no trial of the sweep completed ({failures} of {ran} failed); the last error: "
                              f"{last_error}")

    @staticmethod
    def _value(ret: Any) -> float:
        """A trial's objective: a finite float (a run returns one; several directions are refused before)."""
        from autotrain_hydra.compat.hydra import outcome

        value = outcome(ret)  # raises the trial's own error when it failed
        try:
            value = float(value)
        except (ValueError, TypeError) as e:
            raise ValueError(f"a trial must return a float; got {value!r}") from e
        if not math.isfinite(value):
            raise ValueError(f"a trial returned a value that is not finite: {value}")
        return value

    def _report(self, study: optuna.Study, directions: List[str], final: bool = True) -> None:
        from autotrain_hydra import secrets

        storage = self.storage
        if isinstance(storage, str):  # one set through ${oc.env:...} is reported as that interpolation, not its URL
            storage = secrets.written(storage, OmegaConf.to_container(self.config, resolve=False))
        with budget_lock(self.storage):  # workers ending together: one at a time, the last reads the newest study
            write_report(self.sweep_dir, study, storage, self.metric, directions[0].lower(), self._trial_dir, final)

    def _trial_dir(self, number: int) -> str:
        """Where trial ``number`` writes: ``<output_dir>/<number>`` when output_dir is set, else its Hydra job dir."""
        base = get(self.config, "output_dir")
        return os.path.join(str(base), str(number)) if base else os.path.join(self.sweep_dir, str(number))

    def _next_trial(self, study: optuna.Study, storage: Any,
                    searched: Dict[str, Dist]) -> Optional[optuna.trial.Trial]:
        """The next trial to run, its parameters set, or None when the study has its n_trials (the trials that
        ended by themselves or run; lost trials and trials that were not run are not counted). A re-run of a lost
        trial comes first, with the lost trial's parameters; else a new trial, its parameters drawn.

        Under the budget lock (sqlite: the workers of one machine take turns): lost trials are found and their
        re-runs queued (``_recover_lost``), the budget counted and the trial taken, so one worker alone takes a
        re-run. Across machines a database server does the same: optuna takes a WAITING trial only while it still is
        one (a row lock); a second re-run queued for the same lost trial, or a new trial over the budget, is marked
        not run (FAIL, not counted) and never runs. The trial's worker and first heartbeat are recorded at once
        (optuna never takes a RUNNING trial without a heartbeat for stale)."""
        while True:
            with budget_lock(self.storage):
                self._recover_lost(study, storage)
                trials = study.get_trials(deepcopy=False)
                fates = trial_fates(trials)
                counted = [t for t in trials if fates[t.number] == "own"]
                if sum(t.state != TrialState.WAITING for t in counted) >= self.n_trials:
                    return None
                expect_rerun = any(t.state == TrialState.WAITING and rerun_of(t) is not None for t in counted)
                if expect_rerun:
                    with plain_sampler(study):  # its parameters are set: the searching sampler draws nothing
                        trial = study.ask()
                else:
                    number = len(trials)
                    reseed = self.sampler_name != "grid" and self.seed is not None
                    if reseed:
                        study.sampler = self._sampler(searched, seed_offset=number)  # trial k draws from seed + k
                    trial = study.ask()
                    if reseed and trial.number != number:  # another machine asked meanwhile (no shared lock)
                        study.sampler = self._sampler(searched, seed_offset=trial.number)
                trial.set_user_attr(WORKER, this_worker())
                if beats(storage):
                    storage.record_heartbeat(trial_id(storage, study, trial.number))
                not_run = self._not_run(study, trial.number, expect_rerun)
            if not_run is None:
                lost = rerun_of(frozen(study, trial.number))
                try:
                    for key, dist in searched.items():
                        suggest(trial, key, dist)  # a re-run's parameters are set: they are kept
                except ValueError as e:
                    if lost is None:
                        raise
                    not_run = f"{NOT_RUN}: the parameters of trial {lost} do not fit the search space ({e})"
                else:
                    if lost is not None:
                        log.info("sweep: trial %d re-runs trial %d, with its parameters", trial.number, lost)
                    return trial
            trial.set_user_attr(NOTE, not_run)
            with plain_sampler(study):
                study.tell(trial, state=TrialState.FAIL)
            if not not_run.startswith(OVER_BUDGET):
                log.warning("sweep: trial %d %s", trial.number, not_run[len(NOTE) + 2:])

    def _not_run(self, study: optuna.Study, number: int, expect_rerun: bool) -> Optional[str]:
        """Why a trial just taken must not run, or None: a second re-run of one lost trial, a new trial taken where
        a re-run was expected (another machine took it: the searching sampler was not there to draw), or a new
        trial over the budget (another machine asked at the same instant)."""
        trials = study.get_trials(deepcopy=False)
        fates = trial_fates(trials)
        me = next(t for t in trials if t.number == number)
        lost = rerun_of(me)
        if lost is not None:
            first = min(t.number for t in trials if rerun_of(t) == lost and fates[t.number] != "not run")
            return None if first == number else f"{NOT_RUN}: trial {first} re-runs trial {lost}"
        if expect_rerun:
            return f"{NOT_RUN}: another worker took the re-run it was asked for"
        if sum(fates[t.number] == "own" for t in trials if t.number < number) >= self.n_trials:
            return OVER_BUDGET
        return None

    def _recover_lost(self, study: optuna.Study, storage: Any) -> None:
        """Find the trials lost with their worker, mark them FAIL and queue their re-runs (``rerun``): a RUNNING
        trial whose worker process on this machine is gone (SIGKILL, the OOM killer: found at once), one whose
        heartbeat is older than the grace period (any machine: optuna's ``fail_stale_trials``, which calls
        ``rerun_stale``), and one noted lost whose re-run is not queued yet (its worker was stopped, or died
        between the two steps)."""
        trials = study.get_trials(deepcopy=False)
        if storage is not None and not isinstance(storage, str):
            for t in trials:
                if t.state == TrialState.RUNNING and worker_gone(t.user_attrs.get(WORKER)):
                    lose(study, storage, t.number, f"its worker (pid {t.user_attrs[WORKER].get('pid')} on this "
                                                   "machine) is gone")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
        except Exception as e:  # storages without heartbeats
            log.debug("sweep: no stale-trial check (%s)", e)
        for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
            if str(t.user_attrs.get(NOTE, "")).startswith(LOST):
                rerun(study, t)


def frozen(study: optuna.Study, number: int) -> Any:
    """Trial ``number`` as the storage has it now."""
    return next(t for t in study.get_trials(deepcopy=False) if t.number == number)
