"""The guide's example commands, run as written (``autotrain llm ...``, in this process) with only the model names
pointed at the local tiny model. Each shipped experiment composes to its command's config (tests/test_cli.py), so
running the commands runs the experiments too."""

import json
import shlex
import shutil
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from autotrain_hydra import cli, models, paths

GUIDE_FILES = {"train.jsonl": "text.jsonl", "instructions.jsonl": "chat.jsonl", "test.jsonl": "chat_valid.jsonl",
               "preferences.jsonl": "preference.jsonl", "prompts.jsonl": "prompts.jsonl",
               "feedback.jsonl": "feedback.jsonl"}
# the reward model first: the PPO and GRPO examples read ./reward_model
EXPERIMENTS = sorted((p for p in (paths.config_dir() / "experiment").glob("*.yaml")),
                     key=lambda p: (p.stem.startswith(("ppo", "grpo")), p.stem))
# GRPO's examples (beyond the guide), short on the tiny model: 2 steps of groups of 2, completions of 8 tokens
GRPO_SHORT = {"--grpo-max-completion-length": "8", "--grpo-num-generations": "2", "--max-steps": "2"}
MODEL_FLAGS = ("--model", "--teacher-model", "--model-ref")


def guide_folder(root: Path, rows: int = 0) -> Path:
    """./data/<the guide's file names>: the shipped samples, or their first ``rows`` rows."""
    (root / "data").mkdir(parents=True)
    for name, sample in GUIDE_FILES.items():
        if rows:
            lines = (paths.ASSETS_DIR / "data" / sample).read_text().splitlines()[:rows]
            (root / "data" / name).write_text("\n".join(lines) + "\n")
        else:
            shutil.copy(paths.ASSETS_DIR / "data" / sample, root / "data" / name)
    return root


def header_command(path):
    lines = [line[4:] for line in path.read_text().splitlines() if line.startswith("#   ")]
    return shlex.split(" ".join(line.rstrip("\\").strip() for line in lines))[2:]


def saved_architecture(run_dir: Path) -> str:
    if (run_dir / "adapter_config.json").is_file():
        return "adapter:" + json.loads((run_dir / "adapter_config.json").read_text())["task_type"]
    return json.loads((run_dir / "config.json").read_text())["architectures"][0]


@pytest.mark.slow
def test_guide_commands_run_as_written(tmp_path, monkeypatch):
    """Every flag as the guide writes it (epochs, batch sizes: real steps, batch_size examples each), on data files
    of 12 rows and with PPO's before/after evaluation on 32 samples (not 256), so that the 13 commands run in about a
    minute; and the experiments beyond the guide (grpo: 2 short steps; kto as written)."""
    from autotrain_hydra.trainers import grpo, ppo

    monkeypatch.setattr(ppo, "EVAL_SAMPLES", 32)
    monkeypatch.setattr(grpo, "EVAL_SAMPLES", 16)
    monkeypatch.chdir(guide_folder(tmp_path, rows=12))
    tiny = str(models.tiny_model_dir())
    for path in EXPERIMENTS:
        argv = header_command(path)
        argv = [tiny if i and argv[i - 1] in MODEL_FLAGS else a for i, a in enumerate(argv)]
        if "--use-sweep" in argv:  # 2 trials of the 10 keep the suite short
            argv[argv.index("--sweep-n-trials") + 1] = "2"
        if argv[argv.index("--trainer") + 1] == "grpo":
            for flag, value in GRPO_SHORT.items():
                argv = argv[:argv.index(flag)] + argv[argv.index(flag) + 2:] if flag in argv else argv
                argv += [flag, value]
        before = set(tmp_path.glob("**/metrics.json"))
        assert cli.llm(argv) == 0, path.stem
        new = set(tmp_path.glob("**/metrics.json")) - before
        assert len(new) == (2 if "--use-sweep" in argv else 1), path.stem
        for metrics_file in new:
            run_dir = metrics_file.parent
            kind = saved_architecture(run_dir)
            trainer = argv[argv.index("--trainer") + 1]
            expected = "SequenceClassification" if trainer == "reward" else ("CAUSAL_LM" if "--peft" in argv
                                                                                else "CausalLM")
            assert expected in kind, (path.stem, kind)
            assert OmegaConf.load(run_dir / "config.yaml").trainer.name == trainer
    assert (tmp_path / "reward_model" / "model.safetensors").is_file()  # the PPO workflow's step 1
