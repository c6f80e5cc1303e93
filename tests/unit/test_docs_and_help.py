import subprocess
import sys
from pathlib import Path

from autotrain_hydra.help import render as help_text
from autotrain_hydra.schema.matrix import render as matrix
from autotrain_hydra.schema.params import PARAMS

ROOT = Path(__file__).resolve().parents[2]


def test_compatibility_doc_is_generated_from_rules():
    assert (ROOT / "docs" / "compatibility.md").read_text() == matrix(), (
        "regenerate: python -m autotrain_hydra.schema.matrix > docs/compatibility.md")


def test_help_lists_every_key_and_group():
    text = help_text()
    for p in PARAMS:
        assert p.key in text
    assert "trainer: dpo, generic, orpo, ppo, reward, sft" in text and "base_trainer" not in text


def test_readme_has_every_guide_flag():
    readme = (ROOT / "README.md").read_text()
    for p in PARAMS:
        if p.flag:
            assert f"`{p.flag}`" in readme, p.flag


def test_light_imports_compose_validate_help():
    """Composing, validating and --help import neither torch nor transformers (a fresh interpreter)."""
    code = (
        "import sys\n"
        "from autotrain_hydra.schema.compose import compose_config\n"
        "from autotrain_hydra.schema.resolve import resolve\n"
        "from autotrain_hydra.schema.rules import validate\n"
        "from autotrain_hydra.app import main\n"
        "from autotrain_hydra.help import render\n"
        "import autotrain_hydra.run\n"
        "cfg = resolve(compose_config(['trainer=dpo', 'trainer.rl.gamma=0.5'])).cfg\n"
        "assert validate(cfg, ['trainer.rl.gamma=0.5']).warnings\n"
        "assert main(['trainer=foo']) == 2; render()\n"
        "heavy = [m for m in ('torch', 'transformers', 'trl', 'datasets', 'peft') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, capture_output=True)
