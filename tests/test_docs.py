from pathlib import Path

from autotrain_hydra.schema.matrix import render as matrix
from autotrain_hydra.schema.params import PARAMS

ROOT = Path(__file__).resolve().parents[1]


def test_compatibility_doc_is_generated_from_rules():
    assert (ROOT / "docs" / "compatibility.md").read_text() == matrix(), (
        "regenerate: python -m autotrain_hydra.schema.matrix > docs/compatibility.md")


def test_the_usage_doc_has_every_guide_flag():
    usage = (ROOT / "docs" / "usage.md").read_text()
    for p in PARAMS:
        if p.flag:
            assert f"`{p.flag}`" in usage, p.flag


def test_the_architecture_doc_names_every_module():
    """docs/architecture.md is the code's map: a module it does not name is one added without updating it."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    package = ROOT / "autotrain_hydra"
    for path in package.rglob("*.py"):
        if path.name == "__init__.py" and path.parent != package / "schema" / "rules":
            continue
        name = path.relative_to(package).as_posix()
        short = path.stem if path.parent.name in ("schema", "trainers", "features", "compat", "rules") else name
        assert name in text or f"`{short}`" in text or f"{short}.py" in text or f"`{short}." in text, name


def test_the_readme_keeps_its_two_set_up_commands():
    readme = (ROOT / "README.md").read_text()
    assert 'pip install torch==2.13.0 && pip install -e . && python -m autotrain_hydra' in readme
    assert 'pip install torch==2.13.0 && pip install -e ".[dev]" && python -m pytest -q' in readme
    assert len(readme.splitlines()) < 150, "keep the README short: reference material goes to docs/"
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install torch==2.13.0 && pip install -e ".[dev]" && python -m pytest -q' in ci
