"""``python -m autotrain_hydra [overrides]``: the entry point is ``autotrain_hydra.app``."""

from __future__ import annotations

import sys
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> None:
    """Run a command line; exits with its code when it is not 0 (tests call it with a list of arguments)."""
    from autotrain_hydra.app import main as run_command

    code = run_command(argv)
    if code:
        sys.exit(code)


if __name__ == "__main__":
    from autotrain_hydra.app import entry

    entry()
