"""The errors a user can cause, and the exit code each carries.

Every mistake a user can make (a config, a data file, a setting this machine cannot run) is a ``UserError``: the
entry point prints its message (with the fix) and exits with its code, never with a traceback. Anything else is a
bug and keeps its traceback. ``HYDRA_FULL_ERROR=1`` shows the traceback of a ``UserError`` too.

- 2: the input is wrong (config, data, hardware settings, checkpoint path): fix it and run again;
- 1: the run failed (a NaN loss, a model that cannot be loaded, a benchmark, a sweep whose trials failed);
- 130: the run was stopped (Ctrl-C, SIGTERM) before it finished.

Light module: standard library only.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_RUN_ERROR = 1
EXIT_CONFIG_ERROR = 2
EXIT_STOPPED = 130  # as a shell reports a process stopped by Ctrl-C


class UserError(Exception):
    """A problem the user can fix; ``str(e)`` says what and how. Printed as ``Error: <message>``."""

    exit_code = EXIT_RUN_ERROR

    def render(self) -> str:
        return f"Error: {self}"


class InputError(UserError):
    """Something given to the run is wrong: exit code 2."""

    exit_code = EXIT_CONFIG_ERROR


class RunError(UserError):
    """The run failed after it started: exit code 1."""

    exit_code = EXIT_RUN_ERROR


class DataError(InputError, ValueError):
    """Bad data: names the file, the column or row, and the fix."""


class HardwareError(InputError):
    """A setting this machine cannot run (fp16 without a GPU, ...)."""


class CheckpointError(InputError):
    """training.resume_from_checkpoint names no complete checkpoint."""


class NumericalError(RunError):
    """The training loss, or a weight, became NaN or infinite."""


class ModelLoadError(RunError):
    """A model or tokenizer that cannot be loaded (not there, no network)."""


class TrainerUnavailable(RunError):
    """The installed libraries lack what a trainer needs (e.g. TRL without ORPOTrainer)."""


class BenchmarkError(RunError):
    """An eval.benchmark task could not run."""


class NothingTrained(RunError):
    """The run ended without changing any weight of the model."""


class SweepFailed(RunError):
    """A sweep stopped because too many of its trials failed."""


class TrialPruned(RunError):
    """A sweep's trial that the pruner stopped (``sweep.pruner``) at ``step`` with its metric at ``value``: its
    results to that step are written; the sweeper records the trial as PRUNED. Raised only in a trial, after its
    results are committed."""

    def __init__(self, message: str, step: int, value: float) -> None:
        super().__init__(message)
        self.step, self.value = step, value

    def __reduce__(self) -> tuple:  # picklable with its step and value (a job run in another process)
        return (type(self), (str(self), self.step, self.value))


class Stopped(UserError):
    """Ctrl-C or SIGTERM (``signal`` says which) before the command finished; ``what`` says what was kept and how to
    go on (it depends on when it stopped: before anything was written, during a run, during a sweep)."""

    exit_code = EXIT_STOPPED

    def __init__(self, signal: str = "Ctrl-C", what: str = "before anything was written") -> None:
        super().__init__(f"Stopped ({signal}) {what}")

    def render(self) -> str:
        return str(self)
