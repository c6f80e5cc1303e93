"""The Optuna sweeper that ``features=[sweep]`` runs: hydra-optuna-sweeper's, made safe for several workers.

Start the same sweep command in several processes, on several machines or as several SLURM jobs, pointed at one
Optuna RDB storage (``sweep.storage``: sqlite on one machine, a PostgreSQL/MySQL URL on a cluster; by default
sqlite in the sweep dir, so workers given the same ``hydra.sweep.dir`` share it) and they share one study:

- **one budget**: ``sweep.n_trials`` is the study's total, over every worker (failed trials count). A worker asks
  for a trial only while the study has fewer; with sqlite the count and the ask are one step under a file lock, so
  the total is exact. Running the command again continues an unfinished study up to ``n_trials``.
- **distinct trials**: trial numbers come from the storage, and each trial's dir is its study number
  (``<sweep dir>/<number>``), so workers sharing a sweep dir never write into the same trial dir. Trial k draws its
  random parameters from ``sweep.seed + k``: workers given the same seed do not propose the same parameters.
- **no trial left running forever**: while a trial runs, its worker records a heartbeat in the storage every
  ``sweep.heartbeat_interval`` seconds. A worker that dies (killed, its machine lost) stops beating; every worker
  marks trials whose heartbeat is older than ``sweep.grace_period`` as FAIL before it asks for the next one. A worker
  stopped by SIGTERM/SIGINT (scancel, Ctrl-C) marks its own trial FAIL as it exits.

Imported only when a sweep runs (optuna and the sweeper plugin are not light).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import warnings
from typing import Any, Iterator, List, Optional

logging.getLogger("alembic").setLevel(logging.WARNING)  # its plugin set-up lines (on import) are noise in a sweep log

import optuna  # noqa: E402
from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl, create_params_from_overrides  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from autotrain_hydra.features.sweep import redact, write_report  # noqa: E402
from autotrain_hydra.launch import sigterm_as_interrupt  # noqa: E402

log = logging.getLogger(__name__)

OVER_BUDGET = "autotrain_hydra: not run, the study already had sweep.n_trials trials"


def shared_study_sweeper(**kwargs: Any) -> "SharedStudyImpl":
    """The sweeper behind ``hydra_plugins.autotrain_hydra_sweeper.SharedStudySweeper`` (the ``_target_`` that
    ``features.sweep.sweep_arguments`` sets on ``hydra/sweeper=optuna``): the upstream one's state, our loop."""
    return SharedStudyImpl(**kwargs)  # OptunaSweeper's own arguments, passed on as it does


def storage_for(url: Any, heartbeat_interval: Optional[int], grace_period: Optional[int]) -> Any:
    """An RDBStorage with heartbeats for a database URL; anything else (None: in memory, a storage object) as is."""
    if isinstance(url, str) and "://" in url and heartbeat_interval:
        return optuna.storages.RDBStorage(url, heartbeat_interval=int(heartbeat_interval),
                                          grace_period=int(grace_period) if grace_period else None)
    return url


def open_study(url: Any, *, study_name: Optional[str], sampler: Any, directions: List[Any],
               heartbeat_interval: Optional[int], grace_period: Optional[int], tries: int = 5) -> tuple:
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
                                            directions=directions, load_if_exists=True)
            return storage, study
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError) as e:
            if attempt == tries:
                raise
            log.info("sweep: another worker is creating the study's storage (%s); retrying", type(e).__name__)
            time.sleep(0.2 * attempt)


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


def reseed(sampler: Any, seed: int) -> None:
    """Trial k's random draws come from the sampler's seed + k (``sweep.seed + k``), whichever worker runs it: workers
    started with the same seed would otherwise propose the same parameters, and a sweep gives the same trials however
    many workers run it."""
    import numpy as np

    nested = [v for v in vars(sampler).values() if isinstance(v, optuna.samplers.BaseSampler)]
    for obj in (sampler, *nested):
        for name, value in list(vars(obj).items()):
            if isinstance(value, np.random.RandomState):
                setattr(obj, name, np.random.RandomState(seed))


@contextlib.contextmanager
def heartbeat(storage: Any, trial_id: int) -> Iterator[None]:
    """Record the trial's heartbeat every heartbeat interval until the block ends (the first one is recorded with
    the ask, in ``SharedStudyImpl._next_trial``)."""
    if not isinstance(storage, optuna.storages.RDBStorage) or not storage.get_heartbeat_interval():
        yield
        return
    interval = storage.get_heartbeat_interval()
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            try:
                storage.record_heartbeat(trial_id)
            except Exception as e:  # a missed beat is not fatal; several make the trial stale
                log.warning("sweep: could not record the heartbeat of trial %s (%s)", trial_id, e)

    thread = threading.Thread(target=beat, name=f"optuna-heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


class SharedStudyImpl(OptunaSweeperImpl):
    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        sweep = config.get("sweep") or {}
        self.heartbeat_interval = sweep.get("heartbeat_interval")
        self.grace_period = sweep.get("grace_period")
        # the sampler's own seed (features=[sweep] sets it from sweep.seed; hydra.sweeper.sampler.seed when the
        # sweeper is named directly); null: every worker seeds at random
        self.seed = OmegaConf.select(config, "hydra.sweeper.sampler.seed", default=None)
        # the report's column: what the trials return (sweep.metric with features=[sweep], else the run's objective)
        self.metric = sweep.get("metric") if sweep.get("enabled") else "objective"

    def _values(self, ret: Any, n_directions: int) -> List[float]:
        value = ret.return_value  # raises the trial's own error when it failed
        try:
            values = [float(value)] if n_directions == 1 else [float(v) for v in value]
        except (ValueError, TypeError) as e:
            raise ValueError(f"a trial must return {'a float' if n_directions == 1 else 'floats'}; got {value!r}") \
                from e
        if len(values) != n_directions:
            raise ValueError(f"a trial returned {len(values)} values for {n_directions} objectives")
        return values

    def sweep(self, arguments: List[str]) -> None:
        self._process_searchspace_config()
        params_conf = self._parse_sweeper_params_config()
        params_conf.extend(arguments)
        distributions, fixed = create_params_from_overrides(params_conf)
        if self.search_space_distributions:
            distributions = {**self.search_space_distributions, **distributions}
        grid = getattr(self.sampler, "func", None) is optuna.samplers.GridSampler
        if grid:
            choices = {name: self._to_grid_sampler_choices(d) for name, d in distributions.items()}
            self.sampler = self.sampler(choices)
            size = 1
            for v in choices.values():
                size *= len(v)
            if size < self.n_trials:
                log.info("sweep: the grid has %d points: n_trials %d -> %d", size, self.n_trials, size)
                self.n_trials = size
        for name in fixed:
            distributions.pop(name, None)
        directions = self._get_directions()
        storage, study = open_study(self.storage, study_name=self.study_name, sampler=self.sampler,
                                    directions=directions, heartbeat_interval=self.heartbeat_interval,
                                    grace_period=self.grace_period)
        log.info("sweep: study %s in %s, %d trial(s) in all (already there: %d)", study.study_name,
                 redact(self.storage), self.n_trials, len(study.trials))
        ran, failures = 0, 0
        with sigterm_as_interrupt():  # a stopped worker (scancel, Ctrl-C) marks its trial FAIL
            while True:
                trial = self._next_trial(study, storage)
                if trial is None:
                    break
                try:
                    if self.seed is not None:
                        reseed(self.sampler, self.seed + trial.number)
                    overrides = self._configure_trials([trial], distributions, fixed)
                    with heartbeat(storage, trial._trial_id):
                        ret = self.launcher.launch(overrides, initial_job_idx=trial.number)[0]
                except BaseException:  # the worker is stopping (Ctrl-C, SIGTERM): the trial did not finish
                    study.tell(trial, state=TrialState.FAIL)
                    log.warning("sweep: trial %d marked FAIL: this worker was stopped", trial.number)
                    raise
                ran += 1
                try:
                    values = self._values(ret, len(directions))
                    study.tell(trial, values=values)
                except Exception as e:
                    if grid and "Study.stop" in str(e):
                        continue
                    study.tell(trial, state=TrialState.FAIL)
                    log.warning("sweep: trial %d failed: %s", trial.number, e)
                    failures += 1
                    if failures / ran > self.max_failure_rate:
                        self._report(study, directions)
                        ret.return_value  # raise the trial's error, as the upstream sweeper does
        log.info("sweep: this worker ran %d trial(s), %d failed; the study has %d", ran, failures, len(study.trials))
        self._report(study, directions)

    def _report(self, study: optuna.Study, directions: List[str]) -> None:
        write_report(self.sweep_dir, study, self.storage, self.metric, directions[0].lower())

    def _next_trial(self, study: optuna.Study, storage: Any) -> Optional[optuna.trial.Trial]:
        """A new trial while the study has fewer than n_trials (every state counts), else None. Its first heartbeat
        is recorded at once: optuna never takes a RUNNING trial without one for stale."""
        with budget_lock(self.storage):
            self._fail_stale(study)
            if len(study.get_trials(deepcopy=False)) >= self.n_trials:
                return None
            trial = study.ask()
            if isinstance(storage, optuna.storages.RDBStorage) and storage.get_heartbeat_interval():
                storage.record_heartbeat(trial._trial_id)
        if trial.number >= self.n_trials:  # another machine asked at the same instant (no shared lock)
            trial.set_user_attr("autotrain_hydra", OVER_BUDGET)
            study.tell(trial, state=TrialState.FAIL)
            return None
        return trial

    def _fail_stale(self, study: optuna.Study) -> None:
        try:
            before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
        except Exception as e:  # storages without heartbeats
            log.debug("sweep: no stale-trial check (%s)", e)
            return
        after = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
        for number in sorted(before - after):
            state = study.get_trials(deepcopy=False)[number].state
            if state == TrialState.FAIL:
                log.warning("sweep: trial %d was marked FAIL: its worker stopped sending heartbeats (it died)", number)

