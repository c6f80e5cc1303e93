"""``python -m autotrain_hydra [overrides]``: a thin Hydra entry point.

Before Hydra composes, the overrides are checked against the schema (all problems reported together, exit 2);
the composed config then goes to ``run.run_task``, which validates the rules, trains and returns the objective.
"""

from __future__ import annotations

import sys
from typing import List, Optional, Tuple

import hydra
from omegaconf import DictConfig

from autotrain_hydra import paths
from autotrain_hydra.schema import register
from autotrain_hydra.schema.errors import EXIT_CONFIG_ERROR

register()


@hydra.main(version_base="1.3", config_path=str(paths.config_dir()), config_name="config")
def hydra_main(cfg: DictConfig) -> Optional[float]:
    from autotrain_hydra.run import run_task

    return run_task(cfg)


def precheck(argv: List[str]) -> int:
    """Check the command-line overrides; print every problem and return 2 if there are errors, else 0."""
    from hydra._internal.utils import get_args_parser

    from autotrain_hydra.schema.overrides import check_overrides, extra_config_dirs

    try:
        args, _ = get_args_parser().parse_known_args(argv)
    except SystemExit:  # let Hydra report its own usage errors
        return 0
    if args.hydra_help or args.info or args.shell_completion:
        return 0
    extra, complete = extra_config_dirs(args.config_dir, args.overrides)
    report, good = check_overrides(args.overrides, [paths.config_dir(), *extra], strict_groups=complete)
    if not report.errors:
        return 0
    # Compose with the overrides that passed, to report the rule errors of the rest of the config too.
    if not args.config_dir and args.config_name in (None, "config"):
        try:
            from autotrain_hydra.schema.compose import compose_config
            from autotrain_hydra.schema.rules import resolve_data_sample, validate

            cfg = compose_config(o for o in good if not o.startswith("hydra"))
            resolve_data_sample(cfg)
            report.extend(validate(cfg, good))
        except Exception:  # the override errors alone are reported
            pass
    print(report.render(), file=sys.stderr)
    return EXIT_CONFIG_ERROR


def main(argv: Optional[List[str]] = None) -> None:
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()  # main() may run more than once in a process (tests, notebooks)
    if argv is None:
        argv = sys.argv[1:]
    else:
        sys.argv = [sys.argv[0], *argv]  # hydra.main reads sys.argv
    if "--help" in argv or "-h" in argv:
        from autotrain_hydra.help import render

        print(render())
        return
    code = precheck(argv)
    if code:
        sys.exit(code)
    extra, code = sweep_precheck(argv)
    if code:
        sys.exit(code)
    # a sweep, or a Hydra launcher (hydra/launcher=slurm, submitit_local: they launch multiruns only; without
    # --multirun Hydra would train right here, on the login node), runs as a multirun without typing --multirun
    launcher = any(a.startswith("hydra/launcher=") for a in argv)
    if "hydra/sweeper=optuna" in argv and not any(a.startswith("hydra.sweeper._target_=") for a in [*argv, *extra]):
        from autotrain_hydra.features.sweep import SWEEPER

        extra = [*extra, f"hydra.sweeper._target_={SWEEPER}"]  # Optuna named directly: our sweeper all the same
    multirun = ["--multirun"] if (extra or launcher) and not ({"--multirun", "-m"} & set(argv)) else []
    if not (extra or launcher or {"--multirun", "-m"} & set(argv)) and run_dir_precheck(argv):
        sys.exit(EXIT_CONFIG_ERROR)
    sys.argv = [sys.argv[0], *multirun, *argv, *extra]
    hydra_main()


def run_dir_precheck(argv: List[str]) -> int:
    """A ``hydra.run.dir=<path>`` given on the command line that holds an earlier run's results: refused here, before
    Hydra writes its ``.hydra/`` files over that run's (the check in ``run`` comes after them). The default run dir
    needs no check: ``unique_dir`` gives every run a new one."""
    import os

    from hydra._internal.utils import get_args_parser
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from autotrain_hydra.schema.errors import Report
    from autotrain_hydra.schema.rules import check_output_dir, output_dir_in_use, resuming

    args, _ = get_args_parser().parse_known_args(argv)
    if args.cfg or args.help or args.hydra_help or args.info or args.shell_completion:
        return 0
    parsed = OverridesParser.create().parse_overrides(args.overrides)
    given = [o for o in parsed if o.key_or_group == "hydra.run.dir" and not o.is_delete()]
    if not given:
        return 0
    path = str(given[-1].value())
    if "${" in path or not output_dir_in_use(path):
        return 0
    from autotrain_hydra.schema.compose import compose_config

    cfg = compose_config(a for a, o in zip(args.overrides, parsed) if not a.startswith("hydra"))
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()  # hydra.main initialises its own
    report = Report()
    check_output_dir(report, os.path.abspath(path), bool(cfg.overwrite_output_dir) or resuming(cfg), "hydra.run.dir")
    if report.errors:
        print(report.render(), file=sys.stderr)
    return len(report.errors)


def sweep_precheck(argv: List[str]) -> Tuple[List[str], int]:
    """With the sweep feature on (features=[sweep], sweep.enabled=true, an hparams_search or an experiment that
    sets it): validate the config once, before the first trial (the metric must be one the run reports), and
    return the Hydra arguments that make the run an Optuna sweep."""
    if not any(k in a for a in argv for k in ("sweep", "experiment", "hparams_search")):
        return [], 0  # a plain run: no composition here
    from hydra._internal.utils import get_args_parser
    from hydra.core.override_parser.overrides_parser import OverridesParser

    args, _ = get_args_parser().parse_known_args(argv)
    if args.config_dir or args.cfg or args.help or args.hydra_help:
        return [], 0
    from autotrain_hydra.features.sweep import sweep_arguments
    from autotrain_hydra.schema.compose import compose_config
    from autotrain_hydra.schema.rules import resolve_data_sample, validate

    parsed = OverridesParser.create().parse_overrides(args.overrides)
    plain = [a for a, o in zip(args.overrides, parsed) if not o.is_sweep_override() and not a.startswith("hydra")]
    from hydra.core.global_hydra import GlobalHydra

    cfg = compose_config(plain)
    GlobalHydra.instance().clear()  # hydra.main initialises its own
    if not cfg.sweep.enabled:
        return [], 0
    resolve_data_sample(cfg)
    report = validate(cfg, plain)
    if report.errors:
        print(report.render(), file=sys.stderr)
        return [], EXIT_CONFIG_ERROR
    if cfg.sweep.backend == "wandb":
        from autotrain_hydra.features.sweep import run_wandb_sweep

        sys.exit(run_wandb_sweep(cfg, args.overrides))
    return sweep_arguments(cfg, argv), 0


if __name__ == "__main__":
    main()
