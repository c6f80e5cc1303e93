"""Checks of the command-line overrides made before Hydra composes anything.

Hydra stops at the first bad override with its own message (and a misleading ``use +key=`` hint for typos).
Here every override is checked against the schema and the config groups first, so that all problems are
reported together, each with a did-you-mean, and the removed ``trainer=distillation`` gets its replacement.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Iterable, List, Sequence, Tuple

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from autotrain_hydra.schema.config import GROUPS, Config
from autotrain_hydra.schema.errors import Report
from autotrain_hydra.schema.keys import schema_keys, unknown_key
from autotrain_hydra.schema.params import REMOVED_TRAINERS


def group_options(group: str, config_dirs: Sequence[Path]) -> List[str]:
    """The options of a config group: the yaml files in ``<dir>/<group>/`` of each config dir."""
    options = set()
    for d in config_dirs:
        folder = Path(d) / group
        if folder.is_dir():
            options.update(p.stem for p in folder.glob("*.yaml"))
    return sorted(options)


def _option_values(value) -> List[str]:
    """Option names of a group override value: ``dpo``, ``[sweep,eval]``, or a sweep ``dpo,orpo``."""
    from hydra.core.override_parser.types import ChoiceSweep, Sweep

    if isinstance(value, ChoiceSweep):
        return [str(v) for v in value.list]
    if isinstance(value, Sweep):
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [] if value is None else [str(value)]


def check_overrides(overrides: Iterable[str], config_dirs: Sequence[Path],
                    strict_groups: bool = True) -> Tuple[Report, List[str]]:
    """Check overrides; returns the report and the overrides that passed (to compose with for further checks)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    overrides = list(overrides)
    report = Report()
    good: List[str] = []
    parser = OverridesParser.create()
    known = set(schema_keys())
    reference = OmegaConf.structured(Config)
    for text in overrides:
        try:
            (o,) = parser.parse_overrides([text])
        except OverrideParseException as e:
            report.error(f"cannot parse the override {text!r}: {str(e).splitlines()[0]}", fix=(
                "write overrides as key=value, group=option or +key=value; quote values with spaces"))
            continue
        key = o.key_or_group
        if key == "hydra" or key.startswith(("hydra.", "hydra/")):
            good.append(text)
            continue
        if key in GROUPS or key.split("/")[0] in GROUPS:
            if o.is_delete():
                good.append(text)
                continue
            options = group_options(key, config_dirs)
            real = [x for x in options if not x.startswith("base_")]
            if o.value() is None:  # trainer=null: a group needs an option (features: [] for none)
                report.error(f"config group {key} needs an option, not null", key, None,
                             "features=[] for none" if key == "features" else f"choose one of {', '.join(real)}")
                continue
            ok = True
            for opt in _option_values(o.value()):
                if key == "trainer" and opt in REMOVED_TRAINERS:
                    msg, fix = REMOVED_TRAINERS[opt]
                    report.error(msg, "trainer", opt, fix)
                    ok = False
                elif strict_groups and opt not in options:
                    close = difflib.get_close_matches(opt, real, n=1)
                    report.error(f"unknown option {opt} for config group {key}", key, opt,
                                 (f"did you mean {key}={close[0]}? " if close else "")
                                 + f"options: {', '.join(real)}")
                    ok = False
            if ok:
                good.append(text)
            continue
        if key not in known:
            unknown_key(report, key, o.value() if not o.is_sweep_override() else None)
            continue
        if o.is_add() and not o.is_force_add():
            report.error(f"{key} exists already: it cannot be added with '+'", key, o.value(),
                         f"drop the '+': {text.lstrip('+')}")
            continue
        if o.is_delete() or o.is_sweep_override():
            good.append(text)
            continue
        try:
            OmegaConf.update(reference, key, o.value(), merge=True)
        except (OmegaConfBaseException, ValueError) as e:
            msg = str(e).splitlines()[0]
            report.error(f"{key} has the wrong type: {msg}", key, o.value(),
                         f"give {key} a value of its type (see: python -m autotrain_hydra --cfg job)")
            continue
        good.append(text)
    return report, good


def extra_config_dirs(config_dir_arg: str | None, overrides: Iterable[str]) -> Tuple[List[Path], bool]:
    """Config dirs beyond ours (``--config-dir`` and file:// entries of ``hydra.searchpath``); the flag says whether
    every search path could be listed (pkg:// ones cannot), which decides if unknown group options are errors."""
    dirs: List[Path] = []
    complete = True
    if config_dir_arg:
        dirs.append(Path(os.path.expanduser(config_dir_arg)))
    for text in overrides:
        if text.startswith("hydra.searchpath="):
            for entry in text.split("=", 1)[1].strip("[]").split(","):
                entry = entry.strip().strip("'\"")
                if entry.startswith("file://"):
                    dirs.append(Path(entry[len("file://"):]))
                elif entry:
                    complete = False
    return dirs, complete
