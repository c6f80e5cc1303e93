"""``python -m autotrain_hydra.dashboard SWEEP_DIR_OR_STORAGE``: a live view of a sweep's study on localhost
(optuna-dashboard), while the sweep runs or after it.

- ``SWEEP_DIR_OR_STORAGE``: a sweep dir (``multirun/<trainer>/<date>/<time>``: its ``optuna.db``, the default
  storage of ``features=[sweep]``), or the storage URL the sweep used (``sweep.storage``: ``sqlite:///...``,
  ``postgresql://...``).
- ``--host`` (127.0.0.1: this machine only) and ``--port`` (8080).

Errors (exit 2, no traceback): a path that is neither a sweep dir nor a storage URL, a storage with no study. For a
sweep's page without a server, open ``<sweep dir>/sweep.html``. Light until it serves: ``--help`` imports neither
optuna nor the dashboard.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from autotrain_hydra.errors import InputError, UserError

DB = "optuna.db"  # the default storage of features=[sweep], in the sweep dir


def storage_url(target: str) -> str:
    """The storage of ``target``: a sweep dir's sqlite database, or a storage URL as given."""
    if "://" in target:
        return target
    path = os.path.expanduser(target)
    if os.path.isdir(path):
        db = os.path.join(path, DB)
        if not os.path.isfile(db):
            raise InputError(f"{target} holds no {DB}: it is not the dir of a sweep that used the default storage.\n"
                             "    fix: give the sweep dir (multirun/<trainer>/<date>/<time>), or the storage URL the "
                             "sweep used (sweep.storage)")
        return f"sqlite:///{os.path.abspath(db)}"
    if os.path.isfile(path) and path.endswith(".db"):
        return f"sqlite:///{os.path.abspath(path)}"
    raise InputError(f"{target} is neither a sweep dir nor a storage URL.\n    fix: give the sweep dir "
                     "(multirun/<trainer>/<date>/<time>) or a storage URL (sqlite:///path/optuna.db)")


def studies(url: str) -> List[str]:
    """The names of the studies in the storage (an InputError when it cannot be read or holds none)."""
    import optuna

    try:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage=url)]
    except Exception as e:  # a driver missing, a server that does not answer, a file that is no database
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise InputError(f"cannot read the storage {_redacted(url)}: {first}") from None
    if not names:
        raise InputError(f"the storage {_redacted(url)} holds no study yet.\n    fix: start the sweep first "
                         "(features=[sweep]), or give the storage it used")
    return names


def _redacted(url: str) -> str:
    from autotrain_hydra.secrets import redact_url

    return redact_url(url)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m autotrain_hydra.dashboard", description=__doc__.split("\n\n")[0])
    p.add_argument("target", metavar="SWEEP_DIR_OR_STORAGE", help="a sweep dir, or the storage URL of a sweep")
    p.add_argument("--host", default="127.0.0.1", help="127.0.0.1 (the default): this machine only")
    p.add_argument("--port", type=int, default=8080)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = parser().parse_args(argv)
    try:
        url = storage_url(args.target)
        names = studies(url)
        from optuna_dashboard import run_server

        from autotrain_hydra.compat.optuna import dashboard_importances

        dashboard_importances()
        print(f"serving {', '.join(names)} ({_redacted(url)}) at http://{args.host}:{args.port}/dashboard "
              "(Ctrl-C stops)", file=sys.stderr, flush=True)
        run_server(url, host=args.host, port=args.port)
    except UserError as e:
        print(e.render(), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 0
    except OSError as e:  # the port is taken
        print(f"Error: cannot serve on {args.host}:{args.port}: {e.strerror or e}\n    fix: --port <another>",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
