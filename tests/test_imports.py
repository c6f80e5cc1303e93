"""The package's structure, checked: no import circle (module-level and deferred imports alike), the schema at the
bottom (it imports nothing above it), and the light paths (composition, validation, --help) free of torch."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "autotrain_hydra"
PLUGIN = ROOT / "hydra_plugins" / "autotrain_hydra_sweeper"  # the sweeper Hydra finds: an entry point
# What schema/ may import from the package: the facts layer (registry, errors, paths, run dirs, secrets) and itself.
SCHEMA_MAY_IMPORT = ("autotrain_hydra.registry", "autotrain_hydra.errors", "autotrain_hydra.paths",
                     "autotrain_hydra.rundir", "autotrain_hydra.secrets", "autotrain_hydra.rewards",
                     "autotrain_hydra.reward_funcs", "autotrain_hydra.schema")
# The layers of docs/architecture.md, lowest first: a module imports from its own layer and those below it.
LAYERS = [
    ("autotrain_hydra.registry", "autotrain_hydra.errors", "autotrain_hydra.paths", "autotrain_hydra.processes",
     "autotrain_hydra.secrets", "autotrain_hydra.rundir", "autotrain_hydra.rewards", "autotrain_hydra.reward_funcs"),
    ("autotrain_hydra.schema",),
    ("autotrain_hydra.compat",),
    ("autotrain_hydra.data", "autotrain_hydra.models", "autotrain_hydra.attention", "autotrain_hydra.padding_free",
     "autotrain_hydra.console",
     "autotrain_hydra.tracking"),
    ("autotrain_hydra.features",),
    ("autotrain_hydra.trainers",),
    ("autotrain_hydra.run", "autotrain_hydra.launch", "autotrain_hydra.worker"),
    ("autotrain_hydra.app", "autotrain_hydra.__main__", "autotrain_hydra.cli", "autotrain_hydra.help",
     "autotrain_hydra.generate", "autotrain_hydra.dashboard",
     "autotrain_hydra", "hydra_plugins.autotrain_hydra_sweeper"),
]


def layer(module: str) -> int:
    for i, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes if p != "autotrain_hydra") \
                or module == "autotrain_hydra" and "autotrain_hydra" in prefixes:
            return i
    raise AssertionError(f"{module} is in no layer of docs/architecture.md")


def modules():
    out = {}
    for path in [*PACKAGE.rglob("*.py"), *PLUGIN.rglob("*.py")]:
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports_of(path: Path, name: str, known: dict) -> set:
    """The package's modules that ``path`` imports, at module level or inside functions."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        found |= {t for t in targets if t in known and t != name}
    return found


def graph():
    known = modules()
    return {name: imports_of(path, name, known) for name, path in known.items()}


def cycles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_the_package_has_no_import_circle():
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_schema_imports_nothing_above_it():
    above = {m: sorted(t for t in targets if not t.startswith(SCHEMA_MAY_IMPORT))
             for m, targets in graph().items() if m.startswith("autotrain_hydra.schema")}
    assert {m: t for m, t in above.items() if t} == {}


def test_every_module_imports_only_from_its_layer_and_below():
    upward = sorted(f"{m} -> {t}" for m, targets in graph().items() for t in targets if layer(t) > layer(m))
    assert upward == []


def test_the_registry_and_the_errors_import_nothing_of_the_package():
    edges = graph()
    assert edges["autotrain_hydra.registry"] == set() and edges["autotrain_hydra.errors"] == set()


@pytest.mark.slow
def test_light_imports_compose_validate_help():
    """Composing, validating, a config error and --help import neither torch nor transformers (a fresh
    interpreter)."""
    code = (
        "import sys\n"
        "from autotrain_hydra.compat.hydra import compose_config\n"
        "from autotrain_hydra.schema.resolve import resolve\n"
        "from autotrain_hydra.schema.rules import validate\n"
        "from autotrain_hydra.app import main\n"
        "from autotrain_hydra.help import render\n"
        "import autotrain_hydra.run, autotrain_hydra.registry, autotrain_hydra.cli\n"
        "cfg = resolve(compose_config(['trainer=dpo', 'trainer.rl.gamma=0.5'])).cfg\n"
        "assert validate(cfg, ['trainer.rl.gamma=0.5']).warnings\n"
        "assert main(['trainer=foo']) == 2; assert main(['validate_only=true', 'features=[sweep]']) == 0\n"
        "render(['trainer=dpo'])\n"
        "heavy = [m for m in ('torch', 'transformers', 'trl', 'datasets', 'peft', 'optuna') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
