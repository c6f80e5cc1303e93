"""Generate docs/compatibility.md from the rules table and the trainer registry:
``python -m autotrain_hydra.schema.matrix > docs/compatibility.md``.

A test checks that the committed file is what this prints, so the docs cannot drift from the rules.
"""

from __future__ import annotations

from autotrain_hydra import registry
from autotrain_hydra.schema.params import FEATURES, PARAMS, REMOVED_TRAINERS, TRAINERS, ignored_message

LEGEND = ("**req** required · **✓** applies · **warn** ignored with a warning · **error** refused · "
          "keys of a feature also need that feature on (else: warning)")


def render() -> str:
    head = "| key | guide flag | " + " | ".join(registry.spec(t).label for t in TRAINERS) + " |"
    sep = "|---|---|" + "---|" * len(TRAINERS)
    lines = [
        "# Compatibility matrix",
        "",
        "Generated from the rules table (`autotrain_hydra/schema/params.py`) and the trainer registry "
        "(`autotrain_hydra/registry.py`) by `python -m autotrain_hydra.schema.matrix`; do not edit by hand.",
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
    lines += ["", "Keys beyond the guide, where they do not apply:", ""]
    for p in PARAMS:
        if p.trainers != frozenset(TRAINERS) and not p.flag:
            lines.append(f"- `{p.key}`: Warning: {ignored_message(p)}")
    lines += ["", "Feature rules:", ""]
    for f in FEATURES:
        for t in TRAINERS:
            if t in f.refused:
                lines.append(f"- Error: {f.unsupported_message(t)}")
            elif t in f.ignored:
                lines.append(f"- Warning: {f.unsupported_message(t)}")
    lines += ["", "Removed usage:", ""]
    for name, (msg, fix) in REMOVED_TRAINERS.items():
        lines.append(f"- `trainer={name}`: Error: {msg}. Fix: {fix}")
    lines += ["", "Required keys: `<trainer> requires <key>` (e.g. `dpo requires data.prompt_text_column`).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
