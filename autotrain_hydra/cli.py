"""``autotrain llm --trainer X --kebab-flags``: the guide's command line, translated to Hydra overrides.

Every flag of the guide maps to one config key (DESIGN.md's table, read from the rules table ``PARAMS``); keys
beyond the guide get a flag by the same rule (``training.max_steps`` → ``--max-steps``, ``trainer.rl.temperature``
→ ``--rl-temperature``, ``eval.max_new_tokens`` → ``--eval-max-new-tokens``). The equivalent
``python -m autotrain_hydra ...`` line is printed, then run in this process through the same entry point, so the
rules, warnings and errors are the Hydra path's own. Bare ``key=value`` words are passed on as Hydra overrides.

Light module: no torch/transformers until the run itself starts.
"""

from __future__ import annotations

import difflib
import json
import re
import shlex
import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from omegaconf import OmegaConf

from autotrain_hydra import paths
from autotrain_hydra import registry
from autotrain_hydra.errors import EXIT_CONFIG_ERROR
from autotrain_hydra.schema.errors import show_value
from autotrain_hydra.schema.keys import alias_for, default
from autotrain_hydra.schema.params import FEATURES, OWN_KEYS, PARAMS, PEFT_METHODS, TRAINERS, Param

SWITCHES = {f.flag: f"features:{f.name}" for f in FEATURES}  # flag → the feature it adds (one list, at the end)
TRUE, FALSE = {"true", "yes", "1", "on"}, {"false", "no", "0", "off"}
GUIDE_GROUPS = [  # --help headings, in the guide's order
    ("core", "Core parameters (every trainer)"), ("training", "Training configuration (every trainer)"),
    ("peft", "LoRA / PEFT"), ("data", "Data columns"), ("trainer", "Trainer-specific"), ("ppo", "PPO (--trainer ppo)"),
    ("grpo", "GRPO (--trainer grpo; beyond the guide)"), ("kto", "KTO (--trainer kto; beyond the guide)"),
    ("distillation", "Knowledge distillation (--use-distillation; "
                     f"{', '.join(sorted(registry.with_feature('distillation', 'supported'), key=TRAINERS.index))})"),
    ("sweep", "Hyperparameter sweep (--use-sweep; every trainer)"),
    ("eval", "Enhanced evaluation (--use-enhanced-eval; every trainer)"),
    ("launcher", "Launcher: where training runs (beyond the guide; e.g. --launcher multiprocess "
                 "--launcher-num-processes 8)"),
]
SAFE = re.compile(r"^[\w./:+\-@~%]+$")


class FlagError(ValueError):
    pass


@dataclass(frozen=True)
class Flag:
    flag: str
    param: Optional[Param]  # None for --trainer and the feature switches
    guide: bool  # a flag of the guide (else derived from the key)

    @property
    def switch(self) -> bool:
        return self.param is None and self.flag in SWITCHES or (
            self.param is not None and (isinstance(default(self.param.key), bool)
                                        or self.param.key == "peft.method"))


def derived_flag(key: str) -> str:
    """A flag for a key the guide has none for, by DESIGN.md's naming rule run backwards."""
    head, _, leaf = key.rpartition(".")
    leaf = leaf.replace("_", "-")
    if head == "trainer.rl":
        return f"--rl-{leaf}"
    if head.startswith("trainer.") and head[len("trainer."):] in OWN_KEYS:  # --grpo-num-generations
        return f"--{head[len('trainer.'):]}-{leaf}"
    if head in ("eval", "sweep", "launcher"):
        return "--launcher" if key == "launcher.name" else f"--{head}-{leaf}"
    if head == "distillation":
        return f"--{leaf}" if leaf.startswith(("teacher", "student")) else f"--distill-{leaf}"
    return f"--{leaf}"


def flag_table() -> Dict[str, Flag]:
    table: Dict[str, Flag] = {"--trainer": Flag("--trainer", None, True)}
    table.update({f: Flag(f, None, True) for f in SWITCHES})
    for p in PARAMS:
        if p.flag:
            table[p.flag] = Flag(p.flag, p, True)
    for p in PARAMS:
        if not p.flag:
            flag = derived_flag(p.key)
            if flag in table:  # the guide's flag wins; the key's full path names the other
                flag = "--" + p.key.replace(".", "-").replace("_", "-")
            table[flag] = Flag(flag, p, False)
    return table


FLAGS = flag_table()


# ----------------------------------------------------------------------------------------------- values
def hydra_value(value: Any, typed: bool = False) -> str:
    """A value written for Hydra's override grammar: as is when plain, else quoted. ``typed``: a string of a JSON
    value stays a string (``"true"``, ``"null"``, ``"3"`` are quoted; a flag's own word is Hydra's to read)."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(hydra_value(v, typed) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{hydra_value(v, typed)}" for k, v in value.items()) + "}"
    text = str(value)
    if SAFE.match(text) and not (typed and not _read_as_text(text)):
        return text
    # Hydra's quoted strings: a quote is escaped with a backslash, and only backslashes right before a quote (or
    # the closing quote) are escapes themselves
    text = re.sub(r"(\\+)(?='|$)", lambda m: m.group(1) * 2, text)
    return "'" + text.replace("'", "\\'") + "'"


def _read_as_text(text: str) -> bool:
    """Whether Hydra's grammar reads the bare word ``text`` as that text (not a bool, null or a number)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        value = OverridesParser.create().parse_override(f"k={text}").value()
    except Exception:  # not a bare word Hydra reads at all: quoted
        return False
    return isinstance(value, str) and value == text


def model_presets() -> Dict[str, str]:
    """Model name → preset (``meta-llama/Llama-2-7b-hf`` → ``llama2_7b``), from configs/model/."""
    presets = {}
    for f in sorted((paths.config_dir() / "model").glob("*.yaml")):
        node = OmegaConf.load(f)
        name = OmegaConf.select(node, "name") or OmegaConf.select(node, "model.name")
        if name:
            presets[str(name)] = f.stem
    return presets


def _is_list_key(key: str) -> bool:
    """A key whose schema type is a list (``trainer.grpo.reward_funcs``, ``trainer.grpo.reward_weights``)."""
    import typing

    from autotrain_hydra.schema.keys import key_type

    return typing.get_origin(key_type(key)) in (list, typing.List)


def _value_for(param: Param, raw: str) -> str:
    key = param.key
    if key in ("eval.metrics", "eval.benchmark", "report_to", "peft.target_modules") and raw.lstrip().startswith("["):
        try:
            items = json.loads(raw)
        except json.JSONDecodeError as e:
            raise FlagError(f"{param.flag or derived_flag(key)} {raw!r} is not a JSON list ({e.msg}); write it like "
                            f"'[\"bleu\", \"rouge\"]'") from e
        return hydra_value([str(i) for i in items])
    if key == "report_to":
        return hydra_value([v for v in raw.split(",") if v])
    if _is_list_key(key):  # a JSON list (its items as they are: numbers, text, {_target_: ...} mappings), or one item
        if raw.strip() == "null":
            return "null"
        if raw.lstrip().startswith("{"):  # one JSON mapping: a list of it
            raw = f"[{raw}]"
        if not raw.lstrip().startswith("["):
            return hydra_value([raw])
        try:
            return hydra_value(json.loads(raw), typed=True)
        except json.JSONDecodeError as e:
            raise FlagError(f"{param.flag or derived_flag(key)} {raw!r} is not a JSON list ({e.msg}); write it like "
                            "'[\"a\", \"b\"]' or '[1.0, 0.5]'") from e
    if key == "sweep.params":
        try:
            json.loads(raw)
        except json.JSONDecodeError as e:
            raise FlagError(f"--sweep-params is not valid JSON ({e.msg} at character {e.pos}): {raw}") from e
    return hydra_value(raw)


# ----------------------------------------------------------------------------------------------- translation
@dataclass
class Translation:
    overrides: List[str]
    notices: List[str]

    def command(self) -> str:
        return "python -m autotrain_hydra " + " ".join(shlex.quote(o) for o in self.overrides)


def flag_of(key: str) -> Optional[str]:
    return next((f for f, spec in FLAGS.items() if spec.param is not None and spec.param.key == key), None)


def closest_flag(flag: str) -> Optional[str]:
    """The flag the user meant: one of another tool (``--learning-rate`` → ``--lr``), else the closest spelling."""
    key = alias_for(flag)
    if key is not None and flag_of(key):
        return flag_of(key)
    close = difflib.get_close_matches(flag, list(FLAGS), n=1, cutoff=0.6)
    return close[0] if close else None


def translate(argv: Sequence[str]) -> Translation:
    """The guide's flags → Hydra overrides. Raises FlagError with every problem found."""
    overrides: List[str] = []
    features: List[str] = []
    notices: List[str] = []
    problems: List[str] = []
    presets = model_presets()
    args = list(argv)
    i = 0
    while i < len(args):
        word = args[i]
        i += 1
        if not word.startswith("--"):
            if "=" in word:  # a Hydra override, passed on
                overrides.append(word)
            else:
                problems.append(f"unexpected value {word!r}: flags take the form --flag value")
            continue
        flag, eq, inline = word.partition("=")
        if flag == "--advanced":
            notices.append("--advanced is no longer needed: every parameter is available by default (remove it)")
            continue
        spec = FLAGS.get(flag)
        if spec is None:
            close = closest_flag(flag)
            problems.append(f"unknown flag {flag}" + (f": did you mean {close}?" if close else
                                                      " (autotrain llm --help lists the flags)"))
            if not eq and i < len(args) and not args[i].startswith("--") and "=" not in args[i]:
                i += 1  # skip its value
            continue
        value: Optional[str] = inline if eq else None
        if spec.switch:
            if value is None and i < len(args) and args[i].lower() in TRUE | FALSE | {"lora", "qlora", "none"}:
                value = args[i]
                i += 1
        elif value is None:
            if i >= len(args) or (args[i].startswith("--") and not _is_number(args[i])):
                problems.append(f"{flag} needs a value")
                continue
            value = args[i]
            i += 1
        try:
            overrides.extend(_override(spec, value, presets, features))
        except FlagError as e:
            problems.append(str(e))
    if features:
        overrides.append(f"features=[{','.join(dict.fromkeys(features))}]")
    if problems:
        raise FlagError("\n".join(problems))
    return Translation(overrides, notices)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _override(spec: Flag, value: Optional[str], presets: Dict[str, str], features: List[str]) -> List[str]:
    flag = spec.flag
    if flag == "--trainer":
        if value == "distillation":
            raise FlagError(
                "--trainer distillation was removed: distillation is now a feature of the "
                f"{registry.in_words(registry.with_feature('distillation', 'supported'))} trainers.\n"
                "    New way (compositional): --trainer sft --use-distillation --teacher-model <teacher>")
        if value not in TRAINERS:
            close = difflib.get_close_matches(value, TRAINERS, n=1)
            raise FlagError(f"--trainer {value}: not a trainer" + (f"; did you mean {close[0]}?" if close else "")
                            + f" (one of {', '.join(TRAINERS)})")
        return [f"trainer={value}"]
    if flag in SWITCHES:
        if value is not None and value.lower() in FALSE:
            return []
        features.append(SWITCHES[flag].split(":", 1)[1])
        return []
    param = spec.param
    if param.key == "launcher.name":  # a config group: its presets set the rest
        return [f"launcher={_value_for(param, value)}"]
    if param.key == "peft.method":  # a switch (--peft: lora) that also takes the method's name
        word = "lora" if value is None or value.lower() in TRUE else "none" if value.lower() in FALSE else value.lower()
        if word not in PEFT_METHODS:
            raise FlagError(f"--peft {value}: not a PEFT method (one of {', '.join(PEFT_METHODS)}, or true/false)")
        return [f"peft={word}"]
    if spec.switch:  # a boolean key
        on = value is None or value.lower() in TRUE
        return [f"{param.key}={hydra_value(on)}"]
    if param.key == "model.name":
        preset = presets.get(value) or (value if value == "tiny" else None)
        return [f"model={preset}"] if preset else ["model=custom", f"model.name={hydra_value(value)}"]
    return [f"{param.key}={_value_for(param, value)}"]


# ----------------------------------------------------------------------------------------------- help
def _default(param: Param) -> str:
    value = default(param.key)
    if param.key == "model.name":
        return "tiny (the built-in model)"
    if param.key == "data.path":
        return "the built-in sample of the trainer's data shape"
    return "default " + show_value(value)


def help_text() -> str:
    lines = [
        "usage: autotrain llm --trainer {" + ",".join(TRAINERS) + "} [--flag value ...] [key=value ...]",
        "",
        "The guide's command line. It prints the equivalent `python -m autotrain_hydra ...` command and runs it;",
        "bare key=value words are passed to Hydra as they are. Flags marked * are beyond the guide.",
        "",
        "  --trainer {" + ",".join(TRAINERS) + "}  the trainer (default sft)",
    ]
    by_group: Dict[str, List[Tuple[str, Flag]]] = {}
    for name, spec in FLAGS.items():
        if spec.param is not None:
            by_group.setdefault(spec.param.group, []).append((name, spec))
    switch_for = {"distillation": "--use-distillation", "sweep": "--use-sweep", "eval": "--use-enhanced-eval"}
    for group, heading in GUIDE_GROUPS:
        lines += ["", heading + ":"]
        if group in switch_for:
            lines.append(f"  {switch_for[group]:<36} switch the feature on")
        for name, spec in sorted(by_group.get(group, []), key=lambda x: not x[1].guide):
            p = spec.param
            mark = "" if spec.guide else "*"
            shown = name + ("" if spec.switch else " <value>")
            applies = "" if p.trainers == frozenset(TRAINERS) else " [" + ", ".join(
                t for t in TRAINERS if t in p.trainers) + "]"
            lines.append(f"  {shown + mark:<36} {p.key:<34} {_default(p)}{applies}")
    lines += ["", "Migration: --advanced is no longer needed; --trainer distillation became",
              "  --trainer sft --use-distillation --teacher-model <teacher>.", ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------- entry points
def llm(argv: Sequence[str]) -> int:
    """``autotrain llm ...``: translate, print the equivalent command, run it. Returns the exit code."""
    if "--help" in argv or "-h" in argv:
        print(help_text())
        return 0
    try:
        tr = translate(argv)
    except FlagError as e:
        for line in str(e).splitlines():
            print(f"Error: {line}" if not line.startswith(" ") else line, file=sys.stderr)
        return EXIT_CONFIG_ERROR
    for notice in tr.notices:
        print(f"Notice: {notice}", file=sys.stderr)
    print(f"equivalent: {tr.command()}", flush=True)
    from autotrain_hydra.app import main as run_command

    return run_command(tr.overrides)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """``autotrain llm [flags]`` (tests call it with a list of arguments; the console script is ``entry``)."""
    sys.exit(command(argv))


def command(argv: Optional[Sequence[str]] = None) -> int:
    """``autotrain llm [flags]``: its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: autotrain llm [flags]   (autotrain llm --help lists them)")
        return 0 if argv else EXIT_CONFIG_ERROR
    if argv[0] != "llm":
        print(f"Error: unknown command {argv[0]!r}: the command is `autotrain llm [flags]`", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    return llm(argv[1:])


def entry() -> None:
    """The ``autotrain`` console script, ended by ``app.finish``."""
    from autotrain_hydra.app import finish

    finish(command())


def hydra_alias(argv: Optional[Sequence[str]] = None) -> None:
    """The ``autotrain-hydra`` console script: ``autotrain-hydra llm [flags]`` is ``autotrain llm``; anything else
    is ``python -m autotrain_hydra [overrides]``."""
    sys.exit(hydra_alias_command(argv))


def hydra_alias_command(argv: Optional[Sequence[str]] = None) -> int:
    from autotrain_hydra.app import main as run_command

    argv = list(sys.argv[1:] if argv is None else argv)
    return llm(argv[1:]) if argv and argv[0] == "llm" else run_command(argv)


def hydra_alias_entry() -> None:
    """The ``autotrain-hydra`` console script, ended by ``app.finish``."""
    from autotrain_hydra.app import finish

    finish(hydra_alias_command())
