"""``trainer.grpo.reward_funcs``: each item resolved to the callable it names, and its signature checked against
what GRPO passes it — the same code before any model loads (``schema.rules.trainers``) and in the run
(``trainers.grpo``), so what was checked is what runs.

An item is one of:

- a dotted path, ``package.module.function`` (the package's own: ``autotrain_hydra.rewards.has_number``);
- a Python file and a function in it, ``./my_rewards.py:function`` (relative to the dir the command starts in);
- a mapping with Hydra's ``_target_`` (``hydra.utils.instantiate``): with ``_partial_: true`` and keyword arguments
  for a function with settings, or without ``_partial_`` for a factory or a class whose instance is the reward.

A reward function is called as TRL calls it: ``f(prompts=..., completions=..., completion_ids=..., <each other
column of the data>=..., trainer_state=..., log_extra=..., log_metric=...)`` and returns one float (or None) per
completion. A function that cannot take those arguments (``def f(x)``, or a required argument nothing fills) is
refused before any model loads.

Light module: imports the user's reward modules (which may import what they like: validation runs that import,
nothing else of the user's code), nothing heavy itself.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterable, List, Optional, Sequence

KEY = "trainer.grpo.reward_funcs"
# what TRL passes every reward function beside the data's columns
TRL_ARGUMENTS = ("prompts", "completions", "completion_ids", "trainer_state", "log_extra", "log_metric")
SIGNATURE = "def f(prompts, completions, **kwargs) -> list[float]"
RESERVED = ("reward_model",)  # the reward model's name among the sources


class RewardFuncError(ValueError):
    """An item of trainer.grpo.reward_funcs that cannot be used: what is wrong, and the fix."""

    def __init__(self, index: int, item: Any, message: str, fix: str):
        super().__init__(message)
        self.index, self.item, self.message, self.fix = index, item, message, fix

    @property
    def key(self) -> str:
        return f"{KEY}[{self.index}]" if self.index >= 0 else KEY


@dataclass
class RewardFunc:
    item: Any  # as written in the config
    func: Callable[..., Any]
    name: str  # its metrics are rewards/<name>


def shown(item: Any) -> str:
    if isinstance(item, dict):
        return "{" + ", ".join(f"{k}: {v}" for k, v in item.items()) + "}"
    return str(item)


def is_file_item(item: Any) -> bool:
    """``path/to/file.py:function``."""
    return isinstance(item, str) and ":" in item and item.rsplit(":", 1)[0].endswith(".py")


def _from_file(index: int, item: str) -> Callable:
    path, name = item.rsplit(":", 1)
    full = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(full):
        raise RewardFuncError(index, item, f"reward function file not found: {path} ({full} does not exist)",
                              "give the path of a .py file (relative to the dir you start the run in) and the "
                              "function in it, e.g. ./my_rewards.py:brevity")
    module_name = "autotrain_hydra_reward_" + hashlib.sha256(full.encode()).hexdigest()[:12]
    module = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, full)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except (Exception, SystemExit) as e:  # the user's file: any error it raises while importing (sys.exit too)
            raise RewardFuncError(index, item, f"{path} does not import: {type(e).__name__}: {e}",
                                  f"fix the error in {path}") from None
        sys.modules[module_name] = module
    if not hasattr(module, name):
        found = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                 and getattr(v, "__module__", None) == module_name]
        raise RewardFuncError(index, item, f"{path} has no function {name!r}",
                              f"name one of its functions: {', '.join(found) or '(it defines none)'}")
    return getattr(module, name)


def _from_dotted(index: int, item: str) -> Callable:
    module_name, _, name = item.rpartition(".")
    if not module_name:
        raise RewardFuncError(index, item, f"{item!r} is neither a dotted path (package.module.function) nor a file "
                              "and a function (./file.py:function)",
                              "write e.g. autotrain_hydra.rewards.has_number, or ./my_rewards.py:my_reward")
    if os.getcwd() not in sys.path and importlib.util.find_spec(module_name.split(".")[0]) is None:
        sys.path.append(os.getcwd())  # a module beside the command, under `autotrain llm` as under `python -m`
    try:
        module = importlib.import_module(module_name)
    except (Exception, SystemExit) as e:  # ModuleNotFoundError, or anything the module raises while importing
        raise RewardFuncError(index, item, f"{item} does not import: {type(e).__name__}: {e}",
                              "check the module path (is its package installed, or on PYTHONPATH?), or give a file: "
                              "./my_rewards.py:function") from None
    if not hasattr(module, name):
        raise RewardFuncError(index, item, f"module {module_name} has no {name!r}",
                              f"name a function of {module_name}")
    return getattr(module, name)


TARGET_FIX = ("check _target_ (a dotted path to a function or class) and its arguments; a function with settings "
              "needs _partial_: true")


def _from_target(index: int, item: dict, make: bool) -> Callable:
    """A ``_partial_`` item: the partial function (nothing is called). Another: what its ``_target_`` makes (a
    factory's product, a class's instance) when ``make``; else (validation: nothing of the user's is run but the
    import) a stand-in whose signature is that of what will be made, when it can be known (a class's ``__call__``)."""
    from hydra.utils import get_object, instantiate

    if item.get("_partial_") or make:
        try:
            return instantiate(item)
        except (Exception, SystemExit) as e:  # hydra's InstantiationException wraps the import or call error
            text = str(e).strip().splitlines()
            raise RewardFuncError(index, item, f"{shown(item)} cannot be instantiated: {text[0] if text else e}",
                                  TARGET_FIX) from None
    try:
        target = get_object(str(item["_target_"]))
    except (Exception, SystemExit) as e:  # an ImportError, or what the module raises while importing
        raise RewardFuncError(index, item, f"{shown(item)} cannot be instantiated: {type(e).__name__}: {e}",
                              TARGET_FIX) from None
    arguments = {k: v for k, v in item.items() if not k.startswith("_")}
    try:
        inspect.signature(target).bind(**arguments)
    except TypeError as e:
        raise RewardFuncError(index, item, f"{shown(item)}: its arguments do not fit {item['_target_']} ({e})",
                              TARGET_FIX) from None
    except ValueError:
        pass  # no signature to read (a builtin)
    if inspect.isclass(target) and callable(getattr(target, "__call__", None)) and "__call__" in dir(target):
        return _Unmade(target)
    return _Unmade(None, getattr(target, "__name__", str(item["_target_"])))


class _Unmade:
    """What a ``_target_`` item will make, not made (validation): its class's ``__call__`` signature when known."""

    def __init__(self, cls: Optional[type], name: str = ""):
        self.cls, self.__name__ = cls, (cls.__name__ if cls is not None else name)

    @property
    def __signature__(self) -> Optional[inspect.Signature]:
        if self.cls is None or not inspect.isfunction(self.cls.__call__):
            return None
        sig = inspect.signature(self.cls.__call__)
        return sig.replace(parameters=list(sig.parameters.values())[1:])  # without self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a reward function resolved for validation only")


def resolve_item(index: int, item: Any, make: bool = False) -> RewardFunc:
    """The callable an item names (not yet signature-checked); ``make``: a ``_target_`` item's product is made."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(item, (DictConfig, ListConfig)):
        item = OmegaConf.to_container(item, resolve=True)
    if isinstance(item, dict):
        if "_target_" not in item:
            raise RewardFuncError(index, item, f"{shown(item)} has no _target_",
                                  "a mapping names its function with _target_: {_target_: package.module.function, "
                                  "_partial_: true, <argument>: <value>}")
        func = _from_target(index, item, make)
    elif is_file_item(item):
        func = _from_file(index, item)
    elif isinstance(item, str) and item.strip().endswith(".py"):
        raise RewardFuncError(index, item, f"{item} names a file and no function in it",
                              f"add the function after a colon: {item.strip()}:<function>")
    elif isinstance(item, str) and item.strip():
        func = _from_dotted(index, item.strip())
    else:
        raise RewardFuncError(index, item, f"{shown(item)!r} is not a reward function",
                              "give a dotted path, a ./file.py:function, or a {_target_: ...} mapping")
    if not callable(func):
        raise RewardFuncError(index, item, f"{shown(item)} is a {type(func).__name__}, not a function",
                              "name a function (or a class whose instances are called with the completions)")
    return RewardFunc(item, func, name_of(func))


def name_of(func: Callable) -> str:
    base = func.func if isinstance(func, functools.partial) else func
    return getattr(base, "__name__", None) or type(base).__name__


def signature_problem(func: Callable, columns: Optional[Sequence[str]]) -> Optional[str]:
    """Why ``func`` cannot be called as GRPO calls it (with the data's ``columns``, when known), or None."""
    if inspect.isclass(func):
        return (f"{func.__name__} is a class: GRPO would call it to score and get an instance, not rewards "
                "(give a {_target_: ...} mapping without _partial_ to make the instance)")
    if isinstance(func, _Unmade) and func.__signature__ is None:
        return None  # a factory's product: checked when the run makes it
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return None  # a builtin or C callable: nothing to read, left to the run
    if columns is None:  # the data's columns are unknown (a dataset name): a required argument may name one
        columns = [n for n, p in sig.parameters.items() if p.default is p.empty
                   and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n not in TRL_ARGUMENTS]
    passed = {name: None for name in (*TRL_ARGUMENTS, *columns)}
    try:
        sig.bind(**passed)
    except TypeError as e:
        wanted = [n for n, p in sig.parameters.items() if p.default is p.empty and n not in passed
                  and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        if wanted and _binds(sig, {**passed, **dict.fromkeys(wanted)}):  # all but columns the data lack
            return (f"it takes the column {wanted[0]!r}, which the data it scores lack (their columns beside the "
                    f"prompt: {', '.join(columns) or 'none'}; the training, validation and eval data each need it)")
        return f"its signature {name_of(func)}{sig} cannot take what GRPO passes ({e})"
    return None


def _binds(sig: inspect.Signature, arguments: dict) -> bool:
    try:
        sig.bind(**arguments)
    except TypeError:
        return False
    return True


def shipped_problem(func: Callable, columns: Optional[Sequence[str]]) -> Optional[str]:
    """A setting of a shipped reward function (autotrain_hydra.rewards) that cannot work: a value outside its
    choices, a data column that is not there."""
    from omegaconf import OmegaConf

    from autotrain_hydra import rewards

    base = func.func if isinstance(func, functools.partial) else func
    kwargs = {k: OmegaConf.to_container(v) if OmegaConf.is_config(v) else v  # Hydra hands lists over as ListConfig
              for k, v in (func.keywords if isinstance(func, functools.partial) else {}).items()}
    if base not in rewards.SHIPPED:
        return None
    params = inspect.signature(base).parameters
    for arg, value in kwargs.items():  # its **kwargs takes TRL's arguments: a misspelt setting would vanish there
        if arg not in params or arg in ("prompts", "completions"):
            settings = [n for n, p in params.items() if p.default is not p.empty]
            return f"{base.__name__} has no argument {arg!r} (its arguments: {', '.join(settings)})"
        default = params[arg].default
        if not _fits(value, default):
            return f"{arg}={value!r} is {type(value).__name__}; {base.__name__} takes {_kind(default)} there"
    if base is rewards.regex_match and "pattern" in kwargs:
        import re

        try:
            re.compile(str(kwargs["pattern"]))
        except re.error as e:
            return f"pattern={kwargs['pattern']!r} is not a regular expression ({e})"
    for arg, choices in rewards.CHOICES.get(base, {}).items():
        if arg in kwargs and kwargs[arg] not in choices:
            return f"{arg}={kwargs[arg]!r} is not one of {', '.join(choices)}"
    if base is rewards.keywords and not kwargs.get("words"):
        return "it needs the words to look for (words: [...])"
    reads = rewards.COLUMNS_READ.get(base)
    if reads and columns is not None:
        missing = [c for c in reads(kwargs) if c not in columns]
        if missing:
            return (f"it reads the column {missing[0]!r}, which the data lack (their columns beside the prompt: "
                    f"{', '.join(columns) or 'none'}); set column: to the one holding the reference answers")
    return None


def _kind(default: Any) -> str:
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, (int, float)):
        return "a finite number"
    if isinstance(default, str):
        return "text"
    return "a word or a list of words"


def _fits(value: Any, default: Any) -> bool:
    """A setting of a shipped reward function has the type of its default (a number for a number, ...)."""
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, (int, float)):
        import math

        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if isinstance(default, str):
        return isinstance(value, str)
    return isinstance(value, (str, list, tuple))


def items_of(value: Any) -> List[Any]:
    """``trainer.grpo.reward_funcs`` as a plain list (None: empty); a value that is not a list (an interpolation of
    the whole key that resolved to text) raises a RewardFuncError."""
    from omegaconf import OmegaConf

    if value is None:
        return []
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=True)
    if not isinstance(value, (list, tuple)):
        raise RewardFuncError(-1, value, f"{KEY} must be a list, and it is {type(value).__name__} {value!r}",
                              f"write a list: {KEY}=[<item>] (an interpolation goes inside it: [${{oc.env:VAR}}])")
    return list(value)


def resolve(items: Iterable[Any], columns: Optional[Sequence[str]] = None, make: bool = False) -> List[RewardFunc]:
    """Every item resolved and checked against the data's ``columns`` (None: unknown); the first problem raised as
    a RewardFuncError. ``make``: the run's (a ``_target_`` item's product is made); validation makes none."""
    out = []
    for i, item in enumerate(items or ()):
        found = resolve_item(i, item, make)
        problem = signature_problem(found.func, columns)
        if problem:
            fix = ("add the column to each data set (data.path, data.valid_path, eval.dataset_path), or give the "
                   "argument a default" if problem.startswith("it takes the column") else
                   f"define it as {SIGNATURE} (the data's other columns arrive as keyword arguments)")
            raise RewardFuncError(i, item, f"{shown(item)}: {problem}", fix)
        problem = shipped_problem(found.func, columns)
        if problem:
            raise RewardFuncError(i, item, f"{shown(item)}: {problem}",
                                  "see its arguments in docs/usage.md (GRPO: the shipped reward functions)")
        out.append(found)
    # TRL logs rewards/<name>, and scores are kept by name: every name is one source's. Two of one name are
    # numbered (has_number_1, has_number_2); a name already taken (the reward model's, a number) gets another suffix
    originals = [f.name for f in out]
    proposed = [f"{n}_{originals[:i + 1].count(n)}" if originals.count(n) > 1 else n for i, n in enumerate(originals)]
    taken = set(RESERVED)
    for i, found in enumerate(out):
        name, n = proposed[i], 1
        while name in taken or name in proposed[i + 1:]:
            n += 1
            name = f"{proposed[i]}_{n}"
        found.name = name
        taken.add(name)
    return out
