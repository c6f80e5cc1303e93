"""Test settings: no network, wandb offline, the tiny model cached once per session in a temporary folder."""

import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("AUTOTRAIN_HYDRA_CACHE", os.path.join(tempfile.gettempdir(), "autotrain_hydra_test_cache"))
