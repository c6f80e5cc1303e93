"""Hydra finds sweepers only in the ``hydra_plugins`` namespace: this is where ours is registered.

Light on purpose (Hydra imports every plugin module when it starts): optuna loads when a sweep begins.
"""

from typing import Any, List

from hydra.plugins.sweeper import Sweeper


class SharedStudySweeper(Sweeper):
    """hydra-optuna-sweeper's Optuna sweeper with one study shared safely by several workers (one trial budget,
    heartbeats, dead workers' trials marked FAIL): autotrain_hydra.features.sweep_study."""

    def __init__(self, **kwargs: Any) -> None:
        from autotrain_hydra.features.sweep_study import shared_study_sweeper

        self.sweeper = shared_study_sweeper(**kwargs)

    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> None:
        return self.sweeper.sweep(arguments)
