"""Generate docs/compatibility.md from the rules table: ``python -m autotrain_hydra.schema.matrix > docs/compatibility.md``.

A test checks that the committed file is what this prints, so the docs cannot drift from the rules.
"""

from __future__ import annotations

from autotrain_hydra.schema.rules import (FEATURES, PARAMS, REMOVED_TRAINERS, TRAINER_LABEL, TRAINERS,
                                          ignored_message)

LEGEND = ("**req** required · **✓** applies · **warn** ignored with a warning · **error** refused · "
          "keys of a feature also need that feature on (else: warning)")


def render() -> str:
    head = "| key | guide flag | " + " | ".join(TRAINER_LABEL[t] for t in TRAINERS) + " |"
    sep = "|---|---|" + "---|" * len(TRAINERS)
    lines = [
        "# Compatibility matrix",
        "",
        "Generated from `autotrain_hydra/schema/rules.py` by `python -m autotrain_hydra.schema.matrix`; "
        "do not edit by hand.",
        "",
        LEGEND,
        "",
        "## Parameters",
        "",
        head,
        sep,
    ]
    for p in PARAMS:
        cells = []
        for t in TRAINERS:
            if t in p.required:
                cells.append("req")
            elif t in p.trainers:
                cells.append("✓")
            else:
                cells.append("warn")
        flag = f"`{p.flag}`" if p.flag else ""
        key = p.key + (f" ({p.feature})" if p.feature else "")
        lines.append(f"| `{key}` | {flag} | " + " | ".join(cells) + " |")
    lines += ["", "## Features", "", head.replace("key | guide flag", "feature | guide flag"), sep]
    for f in FEATURES:
        cells = ["✓" if t in f.supported else "warn" if t in f.ignored else "error" for t in TRAINERS]
        lines.append(f"| `features=[{f.name}]` | `{f.flag}` | " + " | ".join(cells) + " |")
    lines += ["", "## Messages", "", "Warnings for a key set where it does not apply (the guide's wording):", ""]
    for p in PARAMS:
        if p.trainers != frozenset(TRAINERS) and p.flag:
            lines.append(f"- `{p.key}`: Warning: {ignored_message(p)}")
    lines += ["", "Feature rules:", ""]
    for f in FEATURES:
        if f.refused_message:
            lines.append(f"- Error: {f.refused_message}")
        if f.ignored_message:
            lines.append(f"- Warning: {f.ignored_message}")
    lines += ["", "Removed usage:", ""]
    for name, (msg, fix) in REMOVED_TRAINERS.items():
        lines.append(f"- `trainer={name}`: Error: {msg}. Fix: {fix}")
    lines += ["", "Required keys: `<trainer> requires <key>` (e.g. `dpo requires data.prompt_text_column`).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
