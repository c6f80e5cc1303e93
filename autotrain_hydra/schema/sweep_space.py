"""The search space of a sweep, in hydra-optuna-sweeper's grammar, parsed with the schema.

``sweep.params`` is the guide's JSON string or a mapping; each entry is a grammar string (``interval(a, b)``,
``int(interval(a, b))``, ``tag(log, interval(a, b))``, ``range(a, b[, step])``, ``choice(x, y)``), a list of choices,
or ``{type, low, high, log, step, choices}``. Keys may be config keys or the guide's names (``lr``, ``lora_r``).
Without ``sweep.params`` the trainer's default space (the registry's) is searched.

``distribution`` reads one ``key=grammar`` the way hydra-optuna-sweeper does (same types, same bounds), as a plain
``Dist`` that the sweeper turns into an Optuna distribution: the grammar is parsed here, with Hydra's public override
parser, and checked before the first trial. Light module (no optuna).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from omegaconf import DictConfig, ListConfig, OmegaConf

from autotrain_hydra import registry
from autotrain_hydra.errors import InputError
from autotrain_hydra.schema.keys import get, parsed, schema_keys
from autotrain_hydra.schema.params import uses_lora


class SweepSpecError(InputError, ValueError):
    """A search space the sweeper cannot search (exit 2 when it reaches the entry point)."""


def parse_sweep_params(value: Any) -> Any:
    """``sweep.params``: the guide's JSON string, or a mapping; returned as a dict (or None)."""
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value)
    if isinstance(value, str):
        parsed = json.loads(value)
        if not isinstance(parsed, dict):
            raise ValueError("a JSON object is needed")
        return parsed
    return value


def _number(x: Any) -> str:
    return repr(float(x)) if isinstance(x, float) else str(x)


def grammar(key: str, spec: Any) -> str:
    """One parameter's search space in the sweeper's grammar, from a grammar string, a list of choices, or a dict
    ``{type: float|int|categorical|loguniform|uniform, low, high, log, step, choices}``."""
    if isinstance(spec, str):
        return spec
    if isinstance(spec, (list, tuple)):
        return "choice(" + ", ".join(json.dumps(c) if isinstance(c, str) else _number(c) for c in spec) + ")"
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return _number(spec)
    if isinstance(spec, dict):
        kind = str(spec.get("type", "float")).lower()
        if kind in ("categorical", "choice"):
            if "choices" not in spec:
                raise SweepSpecError(f"{key}: a categorical parameter needs 'choices'")
            return grammar(key, list(spec["choices"]))
        if "low" not in spec or "high" not in spec:
            raise SweepSpecError(f"{key}: a {kind} parameter needs 'low' and 'high'")
        if kind not in ("int", "integer", "float", "uniform", "loguniform", "log_uniform"):
            raise SweepSpecError(f"{key}: unknown parameter type {kind!r} (float, int, categorical, loguniform)")
        log = bool(spec.get("log")) or kind in ("loguniform", "log_uniform")
        low, high = _number(spec["low"]), _number(spec["high"])
        if spec.get("step") is not None:  # low, low + step, ..., high (as hydra-optuna-sweeper's range)
            if log:
                raise SweepSpecError(f"{key}: 'step' and 'log' do not go together")
            step = spec["step"] if kind not in ("int", "integer") else int(spec["step"])
            return f"range({low}, {high}, {_number(step)})"
        body = f"interval({low}, {high})"
        if kind in ("int", "integer"):
            body = f"int({body})"
        return f"tag(log, {body})" if log else body
    raise SweepSpecError(f"{key}: cannot read {spec!r} as a search space")


def resolve_key(key: str) -> str:
    """A config key, or the guide's name of one (``lr`` → ``training.lr``, ``lora_r`` → ``peft.lora_r``)."""
    from autotrain_hydra.schema.params import PARAMS

    if key in schema_keys(leaves_only=True):
        return key
    for p in PARAMS:
        if p.flag and p.name == key:
            return p.key
    for p in PARAMS:
        if p.key.rsplit(".", 1)[-1] == key:
            return p.key
    raise SweepSpecError(f"sweep.params: unknown key {key!r}")


def _flatten(d: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    """{training: {lr: ...}} and {"training.lr": ...} alike; a dict with a 'type' or 'low' is one parameter."""
    out: Dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and not ({"type", "low", "high", "choices"} & set(v)):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def search_space(cfg: DictConfig) -> Dict[str, str]:
    """``sweep.params`` as {config key: grammar}; the trainer's default space (with LoRA: its rank too) when it is
    not given."""
    raw = parse_sweep_params(get(cfg, "sweep.params"))
    if not raw:
        space = dict(registry.spec(get(cfg, "trainer.name")).sweep_space)
        if uses_lora(get(cfg, "peft.method")):
            space.update(registry.LORA_SPACE)
        return space
    return {resolve_key(k): grammar(k, v) for k, v in _flatten(raw).items()}


# ----------------------------------------------------------------------------------------------- distributions
@dataclass(frozen=True)
class Dist:
    """One searched parameter, as hydra-optuna-sweeper reads its grammar: ``categorical`` (choices), ``int``
    (low, high, step, log) or ``float`` (low, high, step: discrete when set, log)."""

    kind: str
    low: Any = None
    high: Any = None
    step: Any = None
    log: bool = False
    choices: Tuple[Any, ...] = ()


def _override(text: str) -> Any:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    (override,) = OverridesParser.create().parse_overrides([text])
    return override


def distribution(override: Any) -> Optional[Dist]:
    """The ``Dist`` of a parsed sweep override (None for a plain value): choice → categorical; range → int uniform
    with its step (float bounds: discrete uniform; ``shuffle``: categorical); interval → int/float uniform, ``log``
    tag → log-uniform."""
    from hydra.core.override_parser.types import Transformer

    if not override.is_sweep_override():
        return None
    value = override.value()
    if override.is_choice_sweep() or (override.is_range_sweep() and value.shuffle):
        return Dist("categorical", choices=tuple(override.sweep_iterator(transformer=Transformer.encode)))
    if override.is_range_sweep():
        if any(isinstance(x, float) for x in (value.start, value.stop, value.step)):
            return Dist("float", value.start, value.stop, value.step)
        return Dist("int", int(value.start), int(value.stop), int(value.step))
    if override.is_interval_sweep():
        ints = isinstance(value.start, int) and isinstance(value.end, int)
        if value.start > value.end:
            raise SweepSpecError(f"{override.input_line}: the interval's low end {value.start} is above its high end "
                                 f"{value.end}")
        if "log" in value.tags and value.start <= 0:
            raise SweepSpecError(f"{override.input_line}: a log scale needs a low end above 0")
        return Dist("int" if ints else "float", value.start, value.end, None, "log" in value.tags)
    raise SweepSpecError(f"{override.input_line}: not a sweep the Optuna sweeper can search "
                         "(use interval, range or choice)")


def legacy_dist(spec: Dict[str, Any]) -> Dist:
    """One entry of ``hydra.sweeper.search_space`` (deprecated by hydra-optuna-sweeper, still read): ``{type: int |
    float | categorical, low, high, step, log, choices}``, read as its ``create_optuna_distribution_from_config``
    reads it."""
    kind = str(spec.get("type", "float")).rsplit(".", 1)[-1]
    if kind == "categorical":
        return Dist("categorical", choices=tuple(spec["choices"]))
    if kind == "int":
        step = None if spec.get("log") else int(spec.get("step") or 1)
        return Dist("int", int(spec["low"]), int(spec["high"]), step, bool(spec.get("log")))
    if kind == "float":
        return Dist("float", spec["low"], spec["high"], None if spec.get("log") else spec.get("step"),
                    bool(spec.get("log")))
    raise SweepSpecError(f"hydra.sweeper.search_space: unknown type {kind!r} (int, float, categorical)")


def candidates(dist: Dist) -> List[Any]:
    """The values of a searched parameter worth checking against the key's rules: every choice, or the bounds."""
    if dist.kind == "categorical":
        out = []
        for c in dist.choices:
            try:
                out.append(json.loads(c) if isinstance(c, str) else c)
            except ValueError:
                out.append(c)
        return out
    return [dist.low, dist.high]


def grid_choices(dist: Dist) -> List[Any]:
    """The points a grid sampler visits for one parameter (hydra-optuna-sweeper's rule: a range without its end)."""
    if dist.kind == "categorical":
        return list(dist.choices)
    if dist.step is not None and not dist.log:
        n = math.floor((dist.high - dist.low) / dist.step + 1e-9)  # 0.3 / 0.1 is 2.9999...: 3 points, not 2
        return [dist.low + i * dist.step for i in range(n)]
    raise SweepSpecError("the grid sampler needs discrete parameters: choice(...) or range(...)")


def typed_space(overrides: List[str]) -> Dict[str, Tuple[str, Dist]]:
    """The sweep overrides among typed overrides: {key: (as typed, Dist)}; what does not parse is skipped (the
    override check reports it)."""
    out = {}
    for override in parsed(overrides):
        try:
            dist = distribution(override)
        except SweepSpecError:
            continue
        if dist is not None:
            out[override.get_key_element().lstrip("+")] = (override.input_line, dist)
    return out


def parse_space(lines: List[str]) -> Tuple[Dict[str, Dist], Dict[str, str]]:
    """``key=grammar`` lines → (searched {key: Dist}, fixed {key: value as written})."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    searched: Dict[str, Dist] = {}
    fixed: Dict[str, str] = {}
    for override in OverridesParser.create().parse_overrides(lines):
        key = override.get_key_element()
        dist = distribution(override)
        if dist is None:
            fixed[key] = override.get_value_element_as_str()
        else:
            searched[key] = dist
    return searched, fixed


def check_space(space: Dict[str, str]) -> List[str]:
    """Problems of a search space: each entry must parse as a Hydra sweep override the sweeper can search."""
    from hydra.errors import OverrideParseException

    problems = []
    for key, text in space.items():
        try:
            distribution(_override(f"{key}={text}"))
        except (OverrideParseException, SweepSpecError) as e:
            first = str(e).splitlines()[0]
            problems.append(first if first.startswith(f"{key}=") else f"{key}={text}: {first}")
    return problems
