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

    def render(self) -> str:
        head = ("Error: " if self.level == "error" else "Warning: ") + self.message
        details = []
        if self.key is not None:
            details.append(self.key if self.value is _MISSING else f"{self.key}={_show(self.value)}")
        line = head + (f"  [{', '.join(details)}]" if details else "")
        if self.fix:
            line += f"\n    fix: {self.fix}"
        return line


def _show(value: Any) -> str:
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

    def render(self) -> str:
        lines = [i.render() for i in self.warnings + self.errors]
        n = len(self.errors)
        if n:
            lines.append(f"autotrain_hydra: the configuration has {n} error{'s' if n != 1 else ''}; nothing was loaded or written.")
        return "\n".join(lines)

    def raise_if_errors(self) -> None:
        if self.errors:
            raise ConfigError(self)


class ConfigError(InputError):
    """Raised with every error of a config; the entry point prints ``report.render()`` and exits with code 2."""

    exit_code = EXIT_CONFIG_ERROR

    def __init__(self, report: Report):
        self.report = report
        super().__init__(report.render())

    def render(self) -> str:
        return self.report.render()
