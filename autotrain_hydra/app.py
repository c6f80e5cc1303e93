"""``python -m autotrain_hydra [overrides]``: the entry point, in one pass.

1. **parse** the command line once, with Hydra's own parser (its flags mean what they mean in any Hydra app);
2. **check** the overrides against the schema before composing (unknown keys, groups, types: all at once);
3. **compose** once, in the mode the command needs;
4. **resolve** the config once (``schema.resolve``) and **validate** it once (``schema.rules``): every warning and
   error together; an error stops here, before any model is loaded or any file is written;
5. **do** what the command asks: print the config (``--cfg``), say it is valid (``validate_only=true``), run one
   job, a multirun (a sweep, a Hydra launcher, ``--multirun``), or a W&B sweep.

A command is a multirun when it says so: ``--multirun``, a sweep override (``training.lr=1e-4,1e-3``), a Hydra
launcher or sweeper chosen on the command line, ``hydra.mode: MULTIRUN`` in a config, or the sweep feature on.
Every mistake a user can make is a ``UserError`` carrying its exit code (``errors.py``): printed once, no traceback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Any, List, Optional, Sequence

from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from autotrain_hydra import paths, rundir, secrets
from autotrain_hydra.errors import EXIT_CONFIG_ERROR, EXIT_OK, InputError, Stopped, UserError
from autotrain_hydra.processes import sigterm_as_interrupt

log = logging.getLogger("autotrain_hydra")

DELEGATED = ("info", "shell_completion", "hydra_help", "experimental_rerun")  # Hydra's own output, unchanged


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run a command line; returns the exit code (0, 1: the run failed, 2: the input is wrong, 130: stopped)."""
    full = os.environ.get("HYDRA_FULL_ERROR") == "1"
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    except UserError as e:
        if full:
            raise
        print(secrets.redact(e.render()), file=sys.stderr)
        return e.exit_code
    except BrokenPipeError:  # the reader of our output went away (| head): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt as e:  # Ctrl-C (or SIGTERM where it is turned into one) before a job started
        stopped = Stopped(str(e) or "Ctrl-C")
        print(stopped.render(), file=sys.stderr)
        return stopped.exit_code


def finish(code: int) -> None:
    """End the command line's process (its entry points only: ``python -m autotrain_hydra``, the ``autotrain`` and
    ``autotrain-hydra`` scripts) with ``code``. After a run that succeeded, without the interpreter's final teardown:
    every result is committed and every file closed by then (the trackers too: ``run.end_run``), the exit hooks
    (``atexit``) are run and the logs and streams flushed, and what is skipped — freeing torch's objects and thread
    pools one by one — took 1.8 s after the last line (measured on the default run: 2.6 s → 0.45 s). A run that
    failed or was stopped, or a command that loaded no model, exits the ordinary way."""
    if code != 0 or "torch" not in sys.modules:
        sys.exit(code)
    import atexit

    atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def entry() -> None:
    """``python -m autotrain_hydra``: the command line, ended by ``finish``."""
    finish(main())


def _main(argv: List[str]) -> int:
    secrets.guard_logging()  # no log record of this process carries a secret
    sys.argv = [secrets.redact(a) for a in sys.argv]  # trackers (W&B) record the command line
    refuse_launched_rank()
    from autotrain_hydra.compat import hydra as hy

    if "--help" in argv or "-h" in argv:
        from autotrain_hydra.help import render

        print(render([a for a in argv if a not in ("--help", "-h") and not a.startswith("-")]))
        return EXIT_OK
    try:
        args = hy.parse_args(argv)
    except SystemExit as e:  # argparse printed its usage error
        return e.code if isinstance(e.code, int) else EXIT_CONFIG_ERROR
    config_dir = str(paths.config_dir()) if args.config_path is None else os.path.abspath(args.config_path)
    delegated = [flag for flag in DELEGATED if getattr(args, flag)]
    if delegated:
        modes = [flag for flag, on in (("--multirun", args.multirun), ("--run", args.run), ("--cfg", args.cfg))
                 if on] + [f"--{flag.replace('_', '-')}" for flag in delegated[1:]]
        if modes:
            raise InputError(f"--{delegated[0].replace('_', '-')} prints Hydra's own information and runs nothing: "
                             f"it takes no {' or '.join(modes)}\n    fix: give it alone")
        if args.shell_completion:
            shell_completion_check(args.overrides)
        return hy.delegate(args, Task(), config_dir)
    command = Command.of(args, config_dir)
    hy.initialize(config_dir, args.config_dir)
    try:
        cfg = command.compose()
        if args.cfg:
            print(command.show(cfg), end="")
            return EXIT_OK
        return command.run(cfg)
    finally:
        hy.clear()


SHELLS = ("bash", "zsh", "fish")  # the shells Hydra completes


def shell_completion_check(overrides: List[str]) -> None:
    """``--shell-completion`` takes one of ``install=SHELL``, ``uninstall=SHELL`` (what a user types) or ``query=SHELL``
    (what the installed completion calls, with ``COMP_LINE`` set), and nothing else: anything else is said here, not
    as Hydra's traceback. Completion works for the ``autotrain-hydra`` command (Hydra's completion reads the command
    line as ``SCRIPT ARGS...``, which ``python -m autotrain_hydra`` is not)."""
    fix = ('    fix: eval "$(autotrain-hydra --shell-completion install=bash)" (zsh the same; fish: autotrain-hydra '
           "--shell-completion install=fish | source)")
    if len(overrides) != 1 or overrides[0].split("=", 1)[0] not in ("install", "uninstall", "query"):
        raise InputError(f"--shell-completion takes one of install=SHELL, uninstall=SHELL or query=SHELL, and nothing "
                         f"else; got {' '.join(overrides) or 'none'}\n{fix}")
    command, _, shell = overrides[0].partition("=")
    if shell not in SHELLS:
        raise InputError(f"--shell-completion {overrides[0]}: Hydra completes {', '.join(SHELLS)}\n{fix}")
    if command == "query" and "COMP_LINE" not in os.environ:
        raise InputError("--shell-completion query=SHELL is what the installed completion runs on <TAB> (the shell "
                         f"sets COMP_LINE); to install it:\n{fix}")


def refuse_launched_rank() -> None:
    """``torchrun --nproc_per_node N -m autotrain_hydra`` (or ``accelerate launch -m``) would start N copies of the
    whole run, each with its own run dir: refused at once, with the launcher that runs one job in N processes."""
    world = os.environ.get("WORLD_SIZE")  # torchrun and accelerate launch set it (and LOCAL_RANK) in every rank
    if world and world.isdigit() and int(world) > 1 or os.environ.get("LOCAL_RANK") and world != "1":
        raise InputError(
            f"this command was started as one of {world or 'several'} processes (torchrun / accelerate launch): each "
            "would be a run of its own, in a run dir of its own.\n"
            f"    fix: start it once, as a plain command, with launcher=multiprocess launcher.num_processes="
            f"{world or 'N'} (one job in N processes, one run dir; launcher=multinode for several machines)")


@dataclass
class Command:
    """The parsed command line: Hydra's flags, the overrides as typed, and what they ask for."""

    args: Any
    config_dir: str
    overrides: List[str]
    parsed: List[Any] = field(default_factory=list)

    @classmethod
    def of(cls, args: Any, config_dir: str) -> "Command":
        from hydra.core.override_parser.overrides_parser import OverridesParser
        from hydra.errors import OverrideParseException

        overrides = list(args.overrides)
        try:
            parsed = OverridesParser.create().parse_overrides(overrides)
        except OverrideParseException:
            parsed = []  # each bad override is reported by check_overrides
        return cls(args, config_dir, overrides, parsed)

    @property
    def config_name(self) -> str:
        return self.args.config_name or "config"

    def chose(self, group: str) -> bool:
        return any(o.key_or_group == group and not o.is_delete() for o in self.parsed)

    @property
    def sweeps_on_command_line(self) -> bool:
        return bool(self.args.multirun) or any(o.is_sweep_override() for o in self.parsed)

    # -- steps 2 and 3
    def compose(self) -> DictConfig:
        """Check the overrides (every problem at once), then compose once, with the ``hydra`` node."""
        from autotrain_hydra.compat import hydra as hy
        from autotrain_hydra.schema.overrides import check_overrides, extra_config_dirs

        extra, complete = extra_config_dirs(self.args.config_dir, self.overrides)
        report, good = check_overrides(self.overrides, [self.config_dir, *extra], strict_groups=complete)
        if report.errors:  # compose what passed, to report the rules' errors of the rest of the config too
            try:
                cfg = hy.compose(self.config_name, [o for o in good if not o.startswith("hydra")],
                                 multirun=self.sweeps_on_command_line)
                report.extend(self.validate(cfg, good)[1])
            except Exception:  # the override errors alone are reported
                pass
            from autotrain_hydra.schema.errors import ConfigError

            raise ConfigError(report)
        return hy.compose(self.config_name, self.overrides, multirun=self.sweeps_on_command_line,
                          with_hydra_logging=True)

    def show(self, cfg: DictConfig) -> str:
        """``--cfg job|hydra|all`` (with ``--package`` and ``--resolve``), as Hydra prints it."""
        import copy

        from hydra.core.hydra_config import HydraConfig

        full = cfg
        if self.args.resolve:  # on a copy, the run dir named and not made (nothing is written)
            HydraConfig.instance().set_config(cfg)
            with paths.dry_claims():
                full = OmegaConf.create(_resolved(copy.deepcopy(cfg)))
        kind = self.args.cfg
        keys = ["hydra"] if kind == "hydra" else [k for k in full if k != "hydra"] if kind == "job" else list(full)
        out = OmegaConf.masked_copy(full, keys)
        if self.args.package:
            out = OmegaConf.select(out, self.args.package)
            if out is None:
                raise InputError(f"--package {self.args.package}: no such node in the config")
        return OmegaConf.to_yaml(out)

    # -- step 4
    @staticmethod
    def app_config(cfg: DictConfig) -> DictConfig:
        out = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
        OmegaConf.set_struct(out, True)
        return out

    def validate(self, cfg: DictConfig, overrides: Sequence[str]):
        from autotrain_hydra.schema.resolve import resolve
        from autotrain_hydra.schema.rules import validate

        resolved = resolve(self.app_config(cfg), overrides, config_dirs=self.config_dirs)
        return resolved, validate(resolved.cfg, overrides)

    @property
    def config_dirs(self) -> List[str]:
        """Where configs are looked up, first first: ``--config-dir``, then the primary config dir."""
        return [*([self.args.config_dir] if self.args.config_dir else []), self.config_dir]

    # -- step 5
    def is_multirun(self, cfg: DictConfig) -> bool:
        from hydra.types import RunMode

        asked = (self.args.multirun or self.chose("hydra/launcher") or self.chose("hydra/sweeper")
                 or bool(OmegaConf.select(cfg, "sweep.enabled")) or cfg.hydra.mode == RunMode.MULTIRUN)
        if not asked and self.sweeps_on_command_line:
            sweep = next(o.input_line for o in self.parsed if o.is_sweep_override())
            raise InputError(f"{sweep} is a sweep (several values), and this command is a single run\n"
                             "    fix: add --multirun (or features=[sweep] for an Optuna search) to sweep over it; "
                             "for a list value write key=[a,b]; for a string with a comma quote it: key='a,b'")
        return bool(asked)

    def run(self, cfg: DictConfig) -> int:
        from autotrain_hydra.compat import hydra as hy
        from autotrain_hydra.run import valid_message
        from autotrain_hydra.schema.errors import ConfigError

        resolved, report = self.validate(cfg, self.overrides)
        if report.errors:
            raise ConfigError(report)
        multirun = self.is_multirun(cfg)  # a sweep value in a single run is refused, with validate_only=true too
        if resolved.cfg.validate_only:
            print(secrets.redact(valid_message(resolved.cfg, report, resolved.notes)))
            return EXIT_OK
        with read_write(cfg.hydra), open_dict(cfg.hydra):  # Hydra's node, not the app's: as Hydra's main sets it
            cfg.hydra.mode = _mode(multirun)
        if resolved.cfg.sweep.enabled and resolved.cfg.sweep.backend == "wandb":
            from autotrain_hydra.features.sweep import run_wandb_sweep

            run_wandb_sweep(resolved.cfg, self.overrides)
            return EXIT_OK
        if multirun:
            for issue in report.warnings:  # once, before the first trial
                print(secrets.redact(issue.render()), file=sys.stderr)
            try:
                hy.multirun(cfg, Task(config_dirs=self.config_dirs))
            except KeyboardInterrupt as e:
                raise Stopped(str(e) or "Ctrl-C", "during the sweep: the trial that was running is marked FAIL, "
                              "the finished ones are kept.\n    to go on: the same command again (the study "
                              "continues up to its n_trials)") from e
            return EXIT_OK
        run_dir = self.claim_run_dir(cfg, resolved.cfg)
        out = resolved.cfg.output_dir or run_dir
        # one machine: the dir is this process's before Hydra writes its .hydra/ there (several machines: machine 0's,
        # which run.execute locks once it knows its rank)
        one_machine = resolved.cfg.launcher.name != "multinode"
        try:
            with rundir.owned(os.path.abspath(os.path.expanduser(out))) if one_machine else contextlib.nullcontext(), \
                    sigterm_as_interrupt():  # SIGTERM (kill, a scheduler) stops the run as Ctrl-C does: exit 130
                hy.run(cfg, Task(resolved=resolved.cfg, notes=resolved.notes, report=report))
        except KeyboardInterrupt as e:
            from autotrain_hydra.paths import last_complete_checkpoint

            if last_complete_checkpoint(os.path.join(os.path.expanduser(out), "checkpoints")):
                raise Stopped(str(e) or "Ctrl-C", f"before the run finished; its complete checkpoints are kept in "
                              f"{out}/checkpoints.\n    to go on: the same command with output_dir={out} "
                              "training.resume_from_checkpoint=true") from e
            raise Stopped(str(e) or "Ctrl-C", "before the run finished, and before its first checkpoint "
                          "(training.save_steps): nothing to resume from.\n    to go on: run the command again") from e
        return EXIT_OK

    @staticmethod
    def claim_run_dir(cfg: DictConfig, app: DictConfig) -> str:
        """The run dir, before Hydra writes its ``.hydra/`` into it: a dir named on the command line or through an
        interpolation that holds an earlier run's results is refused (the default one, ``unique_dir``, is new)."""
        from autotrain_hydra.schema.errors import Report
        from autotrain_hydra.schema.rules.paths import check_output_dir, resuming

        try:
            run_dir = str(OmegaConf.select(cfg, "hydra.run.dir"))  # resolved once: unique_dir caches its new dir
        except Exception as e:  # unique_dir could not make it (a read-only launch dir, a file in the way)
            cause, seen = e, set()
            while cause is not None and not isinstance(cause, OSError) and id(cause) not in seen:
                seen.add(id(cause))
                cause = cause.__cause__ or cause.__context__
            from omegaconf.errors import InterpolationResolutionError

            from autotrain_hydra.errors import InputError

            if cause is None and isinstance(e, InterpolationResolutionError):  # ${oc.env:UNSET}, ${nope}
                raise InputError(f"hydra.run.dir={OmegaConf.to_container(cfg.hydra.run, resolve=False)['dir']} "
                                 f"cannot be resolved: {str(e).splitlines()[0]}.\n    fix: set the variable, or "
                                 "give hydra.run.dir as a path") from None
            if cause is None:
                raise
            raise InputError(f"hydra.run.dir: the run dir cannot be made ({cause.strerror or cause}: "
                             f"{cause.filename or ''}).\n    fix: start from a folder you can write to, or set "
                             "hydra.run.dir (or output_dir) to one") from None
        report = Report()
        check_output_dir(report, os.path.abspath(run_dir), bool(app.overwrite_output_dir) or resuming(app),
                         "hydra.run.dir")
        report.raise_if_errors()
        return os.path.abspath(run_dir)


def _resolved(node: Any) -> Any:
    """A config as plain values, each interpolation resolved where it can be (``hydra.job.num`` of a run that has not
    started cannot: that one is shown as written)."""
    from omegaconf.errors import OmegaConfBaseException

    raw = OmegaConf.to_container(node, resolve=False)
    keys = range(len(node)) if OmegaConf.is_list(node) else list(node.keys())
    out = [] if OmegaConf.is_list(node) else {}
    for k in keys:
        try:
            value = node[k]
        except OmegaConfBaseException:
            value = raw[k]
        value = _resolved(value) if OmegaConf.is_config(value) else value
        if isinstance(out, list):
            out.append(value)
        else:
            out[k] = value
    return out


def _mode(multirun: bool) -> Any:
    from hydra.types import RunMode

    return RunMode.MULTIRUN if multirun else RunMode.RUN


@dataclass
class Task:
    """The job Hydra runs (picklable, for launchers that run jobs elsewhere). A single run's config was resolved and
    validated before its run dir existed; a trial of a multirun resolves and validates its own (the warnings were
    printed once, before the first trial)."""

    resolved: Optional[DictConfig] = None
    notes: List[str] = field(default_factory=list)
    report: Any = None
    config_dirs: List[str] = field(default_factory=list)

    def __call__(self, cfg: DictConfig) -> Optional[float]:
        from autotrain_hydra.compat import hydra as hy
        from autotrain_hydra.run import end_run, execute
        from autotrain_hydra.schema.resolve import JobPlace, place, resolve
        from autotrain_hydra.schema.rules import validate

        secrets.guard_logging()  # the job's handlers (train.log, the console), as Hydra set them up
        hy.scrub_job_files()
        job = JobPlace(hy.job_dir() or os.getcwd(), hy.job_number())
        if self.resolved is not None:
            app, notes, report, say = place(self.resolved, job), self.notes, self.report, True
        else:
            typed = hy.task_overrides()
            resolved = resolve(cfg, typed, job, self.config_dirs)
            report = validate(resolved.cfg, typed)
            report.raise_if_errors()
            app, notes, say = resolved.cfg, resolved.notes, False
        succeeded = False
        try:
            objective = execute(app, report, notes, say_warnings=say)
            succeeded = True
            return objective
        except UserError:
            raise
        except Exception:
            if job.number is not None:  # a bug in a trial: its traceback in the trial's log; the sweep goes on
                log.exception("trial %s failed", job.number)
            raise
        finally:  # a W&B run left open would swallow the next run of this process
            end_run(app, succeeded)
