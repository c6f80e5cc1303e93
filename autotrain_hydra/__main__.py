"""``python -m autotrain_hydra [overrides]``: a thin Hydra entry point.

Before Hydra composes, the overrides are checked against the schema (all problems reported together, exit 2);
the composed config then goes to ``run.run_task``, which validates the rules, trains and returns the objective.
"""

from __future__ import annotations

import sys
from typing import List, Optional

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
    hydra_main()


if __name__ == "__main__":
    main()
