"""The TRL internals the trainers use, all in one place (TRL 1.16).

TRL's trainers tokenize their data themselves; ours come tokenized and truncated by ``autotrain_hydra.data`` (so the
guide's ``max_prompt_length``/``max_completion_length`` hold, which DPOConfig lacks), and the reward trainer records
metrics TRL's loss does not have. That takes these hooks, which TRL documents nowhere:

- ``DPOTrainer._prepare_dataset(dataset, processing_class, args, dataset_name)``: skipped for tokenized pairs;
- ``ORPOTrainer.tokenize_row(feature, model=None)`` (``trl.experimental.orpo``): our token ids in ORPO's row format;
- ``RewardTrainer._metrics[mode][name]``: the list the trainer averages into its logged metrics;
- how the DPO, KTO and ORPO trainers call their models (``padding_free``): after their ``__init__`` patched the
  forward (TRL's fused LM head), with a padded batch as keyword ``input_ids``/``attention_mask`` (ORPO: ``input_ids``
  by position) and ``labels``, reading ``log_probs`` of shape (batch, length - 1) (ORPO: ``logits``) — our packed
  forward (``trainers.preference.padding_free``) is installed over that patch and answers in that layout (a reference
  pass TRL makes inside ``__init__``, ``precompute_ref_log_probs``, stays padded: we do not set it).

``tests/compat/test_trl.py`` checks each against the installed TRL (the last: ``tests/test_padding_free.py``, the same
losses and gradients as TRL's padded batches).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Tuple

from autotrain_hydra.errors import TrainerUnavailable


def pretokenized_dpo(dpo_trainer: type) -> type:
    """``DPOTrainer`` that takes pairs as ``prompt_ids``/``chosen_ids``/``rejected_ids``."""

    class PretokenizedDPOTrainer(dpo_trainer):
        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            if "prompt_ids" in dataset.column_names:
                return dataset
            return super()._prepare_dataset(dataset, processing_class, args, dataset_name)

    return PretokenizedDPOTrainer


def orpo_classes() -> Tuple[type, type]:
    """(ORPOConfig, ORPOTrainer), which TRL keeps in ``trl.experimental``; a clear error where TRL lacks them."""
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    try:
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer
    except ImportError as e:  # TRL moves experimental trainers around between releases
        import trl

        raise TrainerUnavailable(
            f"trainer=orpo needs TRL's ORPOTrainer (trl.experimental.orpo), which TRL {trl.__version__} does not "
            f"have ({e}). Install the pinned TRL: pip install trl==1.16.0") from e
    return ORPOConfig, ORPOTrainer


def pretokenized_orpo(orpo_trainer: type, row: Callable[[list, list, list, int], dict]) -> type:
    """``ORPOTrainer`` whose rows are built by ``row(prompt_ids, chosen_ids, rejected_ids, max_length)``."""

    class PretokenizedORPOTrainer(orpo_trainer):
        def tokenize_row(self, feature, model=None):
            return row(feature["prompt_ids"], feature["chosen_ids"], feature["rejected_ids"], self.max_length)

    return PretokenizedORPOTrainer


def record_metric(trainer: Any, mode: str, name: str, value: float) -> None:
    """Add ``value`` to the metric ``name`` that a TRL trainer logs (averaged) for ``mode`` (train or eval)."""
    trainer._metrics[mode][name].append(value)
