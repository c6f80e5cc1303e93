"""trainer=orpo: Odds Ratio Preference Optimization with TRL's ORPOTrainer (``trl.experimental``).

``trainer.orpo_alpha`` weights the odds-ratio term (ORPOConfig.beta, λ in the paper): loss = NLL(chosen) −
λ·log σ(log-odds ratio). ORPO is reference-free: ``trainer.model_ref`` is accepted (the guide lists it) but no
reference model is loaded. Pairs are tokenized and truncated as for DPO. With ``features=[distillation]`` the
teacher's term on the chosen responses is added to the ORPO loss (see autotrain_hydra.features.distillation).
"""

from __future__ import annotations

import os
from typing import Any, Dict

from autotrain_hydra import models
from autotrain_hydra.errors import TrainerUnavailable as ORPOUnavailable
from autotrain_hydra.features import distillation
from autotrain_hydra.trainers.common import Job, attn_implementation, training_kwargs
from autotrain_hydra.trainers.preference import fit, load_pairs, margin_before




def _orpo_classes():
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    try:
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer
    except ImportError as e:  # TRL moves experimental trainers around between releases
        import trl

        raise ORPOUnavailable(
            f"trainer=orpo needs TRL's ORPOTrainer (trl.experimental.orpo), which TRL {trl.__version__} does not "
            f"have ({e}). Install the pinned TRL: pip install trl==1.16.0") from e
    return ORPOConfig, ORPOTrainer


def orpo_features(prompt, chosen, rejected, max_length):
    """ORPOTrainer's row format from our token ids; completions shortened so prompt + completion <= max_length."""
    room = max(0, max_length - len(prompt))
    row = {"prompt_input_ids": prompt, "prompt_attention_mask": [1] * len(prompt)}
    for name, completion in (("chosen", chosen[:room]), ("rejected", rejected[:room])):
        row[f"{name}_input_ids"] = prompt + completion
        row[f"{name}_attention_mask"] = [1] * (len(prompt) + len(completion))
        row[f"{name}_labels"] = [-100] * len(prompt) + completion
    return row


def train(job: Job) -> Dict[str, Any]:
    ORPOConfig, ORPOTrainer = _orpo_classes()

    class PretokenizedORPOTrainer(ORPOTrainer):
        def tokenize_row(self, feature, model=None):
            return orpo_features(feature["prompt_ids"], feature["chosen_ids"], feature["rejected_ids"],
                                 self.max_length)

    cfg = job.cfg
    if cfg.trainer.model_ref:
        job.notes.append("ORPO is reference-free: trainer.model_ref is not loaded")
    tokenizer = models.load_tokenizer(cfg.model)
    pairs = load_pairs(job, tokenizer)
    distiller = distillation.setup(job, tokenizer, pairs.prompts)
    model = models.load_causal_lm(cfg.model, attn_implementation=attn_implementation(cfg))
    margin_before(job, model, pairs, tokenizer)
    args = ORPOConfig(**training_kwargs(job, has_eval=pairs.valid is not None), beta=cfg.trainer.orpo_alpha,
                      max_length=cfg.training.block_size, remove_unused_columns=False)
    trainer_cls = distillation.distillation_trainer(PretokenizedORPOTrainer, distiller, own="orpo")
    trainer = trainer_cls(model=model, args=args, train_dataset=pairs.train, eval_dataset=pairs.valid,
                          processing_class=tokenizer,
                          peft_config=models.lora_config(cfg.peft) if cfg.peft.method == "lora" else None)
    return fit(job, trainer, pairs, tokenizer)
