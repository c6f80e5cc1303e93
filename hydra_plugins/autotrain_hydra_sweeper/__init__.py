"""Hydra finds sweepers only in the ``hydra_plugins`` namespace: this is where ours is registered.

``SharedStudySweeper`` is hydra-optuna-sweeper's Optuna sweeper (same settings, same grammar) rebuilt on Hydra's
public ``Sweeper`` interface and Optuna's public API, with one study shared safely by several workers (one trial
budget, heartbeats, dead workers' trials marked FAIL and re-run) and a readable report: autotrain_hydra.features.sweep_study.
Its config node is stored as ``hydra/sweeper=optuna`` (``autotrain_hydra.compat.hydra.register_sweeper``), so configs
written for hydra-optuna-sweeper select it as they are.

Light on purpose (Hydra imports every plugin module when it starts): optuna loads when a sweep begins.
"""

from typing import Any, List

from hydra.plugins.sweeper import Sweeper


class SharedStudySweeper(Sweeper):
    def __init__(self, **kwargs: Any) -> None:
        from autotrain_hydra.features.sweep_study import SharedStudy

        self.sweeper = SharedStudy(**kwargs)  # the plugin's settings, as OptunaSweeper takes them

    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> None:
        return self.sweeper.sweep(arguments)
