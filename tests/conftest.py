"""Test settings: no network, wandb offline, the tiny model cached once per session in a temporary folder."""

import os
import sys
import tempfile

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("PYTEST_XDIST_WORKER"):  # one of several test processes on these cores: one thread each
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
os.environ.setdefault("AUTOTRAIN_HYDRA_CACHE", os.path.join(tempfile.gettempdir(), "autotrain_hydra_test_cache"))


try:  # absl (rouge_score's) logs to the sys.stderr of its import: under pytest, a capture file. Hydra's logging
    # set-up closes every handler, and absl's closes a stream that is not sys.stderr: pytest's own capture. Give it the
    # process's stderr, which it never closes.
    import absl.logging

    absl.logging.get_absl_handler().python_handler.stream = sys.__stderr__
except ImportError:
    pass


@pytest.fixture(scope="session")
def tiny_scorer(tmp_path_factory):
    """The tiny model saved as a sequence-classification scorer (an untrained head): what trainer=ppo's
    trainer.rl.reward_model_path takes, for tests that need a reward model but not a trained one. Built once."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from autotrain_hydra.models import tiny_model_dir

    path = tmp_path_factory.mktemp("tiny_scorer")
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir(), num_labels=1)
    model.config.pad_token_id = model.config.pad_token_id or 0
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(tiny_model_dir()).save_pretrained(path)
    return str(path)


@pytest.fixture(autouse=True)
def _fresh_wandb_settings():
    """wandb keeps the settings of its first run (its dir: WANDB_DIR) for the whole process: reset them after each
    test that used it, so a later test's WANDB_DIR is where its runs go whatever the order of the tests."""
    yield
    if "wandb" in sys.modules:
        sys.modules["wandb"].teardown()
