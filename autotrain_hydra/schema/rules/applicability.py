"""Rules on what applies where: a key set for another trainer, or for a feature that is off, is *warned about and
ignored* (the guide's wording); a feature a trainer cannot use is warned about or refused; a model a trainer
cannot train is refused. Which trainer reads which key is the registry's (checked by the contract test)."""

from __future__ import annotations

from autotrain_hydra import registry
from autotrain_hydra.schema.params import (FEATURE_BY_NAME, FEATURE_HOWTO, FEATURE_SWITCH, FEATURES, PARAMS,
                                           ignored_message)
from autotrain_hydra.schema.rules.context import Context


def keys_for_other_trainers(ctx: Context) -> None:
    for p in PARAMS:
        if not ctx.is_set(p.key):
            continue
        if ctx.trainer not in p.trainers and ctx.trainer not in p.required:
            where = " / ".join("trainer=" + t for t in registry.TRAINERS if t in p.trainers)
            ctx.report.warn(ignored_message(p), p.key, ctx.get(p.key), f"remove it, or use {where}")
        elif p.feature and not ctx.enabled(p.feature):
            feat = FEATURE_BY_NAME.get(p.feature)
            if feat and ctx.trainer in feat.ignored | feat.refused:
                continue  # reported once, with the feature's own wording (features_per_trainer)
            howto = FEATURE_HOWTO[p.feature]
            ctx.report.warn(f"{p.name} only applies when {p.feature} is enabled ({howto}), will be ignored", p.key,
                            ctx.get(p.key), f"add {howto} or remove it")


def features_per_trainer(ctx: Context) -> None:
    for feat in FEATURES:
        supported = ", ".join(t for t in registry.TRAINERS if t in feat.supported)
        if ctx.enabled(feat.name) and ctx.trainer in feat.refused:
            ctx.report.error(feat.unsupported_message(ctx.trainer), FEATURE_SWITCH[feat.name], True,
                             f"remove {feat.name} from features (it is available for: {supported})")
        elif ctx.enabled(feat.name) and ctx.trainer in feat.ignored:
            ctx.report.warn(feat.unsupported_message(ctx.trainer), FEATURE_SWITCH[feat.name], True,
                            f"remove {feat.name} from features (it is available for: {supported})")
        if ctx.trainer in feat.ignored | feat.refused:
            phrase = registry.spec(ctx.trainer).unsupported_phrase
            for p in PARAMS:
                if p.feature == feat.name and p.flag and ctx.is_set(p.key):
                    ctx.report.warn(f"{p.name} is not supported {phrase}, will be ignored", p.key, ctx.get(p.key),
                                    "remove it")


def model_fits_trainer(ctx: Context) -> None:
    if ctx.get("model.encoder_only") and not registry.spec(ctx.trainer).encoder_models:
        fits = ", ".join(f"trainer={t}" for t, s in registry.SPECS.items() if s.encoder_models)
        name = ctx.get("model.name")
        ctx.report.error(f"model.name={name} is an encoder-only model: it cannot generate text and can only be "
                         f"trained with {fits}", "model.name", name,
                         f"use {fits}, or a causal LM (model=tiny, model=llama2_7b, model=mistral_7b, ...)")
