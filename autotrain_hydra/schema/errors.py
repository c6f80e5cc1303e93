"""The rule report: every problem of a config, collected and reported together."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional

from autotrain_hydra.errors import EXIT_CONFIG_ERROR, InputError

_MISSING = object()


@dataclass(frozen=True)
class Issue:
    """One finding of the validator.

    ``message`` is the guide's wording (``dpo_beta only applies to DPO trainer, will be ignored``);
    ``key``/``value`` name what was set and ``fix`` says what to do about it.
    """

    level: str  # "error" | "warning"
    message: str
    key: Optional[str] = None
    value: Any = _MISSING
    fix: Optional[str] = None

    def to_dict(self) -> dict:
        """A plain dict (JSON): what a launched rank hands back; ``from_dict`` rebuilds the issue."""
        out = {"level": self.level, "message": self.message, "key": self.key, "fix": self.fix}
        if self.value is not _MISSING:
            out["value"] = self.value
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "Issue":
        return cls(**data)

    def render(self) -> str:
        head = ("Error: " if self.level == "error" else "Warning: ") + self.message
        details = []
        if self.key is not None:
            details.append(self.key if self.value is _MISSING else f"{self.key}={show_value(self.value)}")
        line = head + (f"  [{', '.join(details)}]" if details else "")
        if self.fix:
            line += f"\n    fix: {self.fix}"
        return line


def show_value(value: Any) -> str:
    """A config value as the user writes it: null, true/false, the value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


@dataclass
class Report:
    issues: List[Issue] = field(default_factory=list)

    def error(self, message: str, key: Optional[str] = None, value: Any = _MISSING, fix: Optional[str] = None) -> None:
        self.issues.append(Issue("error", message, key, value, fix))

    def warn(self, message: str, key: Optional[str] = None, value: Any = _MISSING, fix: Optional[str] = None) -> None:
        self.issues.append(Issue("warning", message, key, value, fix))

    def extend(self, other: "Report") -> None:
        self.issues.extend(other.issues)

    @property
    def errors(self) -> List[Issue]:
        return [i for i in self.issues if i.level == "error"]

    @property
    def warnings(self) -> List[Issue]:
        return [i for i in self.issues if i.level == "warning"]

    def render(self, before_anything: bool = True) -> str:
        """Every issue, warnings first; with errors, a last line that says so (and, for a config checked before the
        run began, that nothing was loaded or written)."""
        lines = [i.render() for i in self.warnings + self.errors]
        n = len(self.errors)
        if n:
            tail = "nothing was loaded or written" if before_anything else "the run stopped before training"
            lines.append(f"autotrain_hydra: the configuration has {n} error{'s' if n != 1 else ''}; {tail}.")
        return "\n".join(lines)

    def raise_if_errors(self, before_anything: bool = True) -> None:
        if self.errors:
            raise ConfigError(self, before_anything)


class ConfigError(InputError):
    """Raised with every error of a config; the entry point prints ``report.render()`` and exits with code 2."""

    exit_code = EXIT_CONFIG_ERROR

    def __init__(self, report: Report, before_anything: bool = True):
        self.report, self.before_anything = report, before_anything
        super().__init__(report.render(before_anything))

    def render(self) -> str:
        return self.report.render(self.before_anything)
