"""Test settings: no network, wandb offline, the tiny model cached once per session in a temporary folder."""

import os
import sys
import tempfile

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("AUTOTRAIN_HYDRA_CACHE", os.path.join(tempfile.gettempdir(), "autotrain_hydra_test_cache"))


@pytest.fixture(autouse=True)
def _fresh_wandb_settings():
    """wandb keeps the settings of its first run (its dir: WANDB_DIR) for the whole process: reset them after each
    test that used it, so a later test's WANDB_DIR is where its runs go whatever the order of the tests."""
    yield
    if "wandb" in sys.modules:
        sys.modules["wandb"].teardown()
