"""The guide's example commands, run as written (``autotrain llm ...``, in this process) with only the model names
pointed at the local tiny model, and every shipped experiment run for a few steps on the tiny model."""

import json
import shlex
import shutil
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from autotrain_hydra import cli, models, paths
from autotrain_hydra.__main__ import main

GUIDE_FILES = {"train.jsonl": "text.jsonl", "instructions.jsonl": "chat.jsonl", "test.jsonl": "chat_valid.jsonl",
               "preferences.jsonl": "preference.jsonl", "prompts.jsonl": "prompts.jsonl"}
# the reward model first: the PPO examples read ./reward_model
EXPERIMENTS = sorted((p for p in (paths.config_dir() / "experiment").glob("*.yaml")),
                     key=lambda p: (p.stem.startswith("ppo"), p.stem))
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
    of 24 rows so that the 13 commands train in a minute or two."""
    monkeypatch.chdir(guide_folder(tmp_path, rows=24))
    tiny = str(models.tiny_model_dir())
    for path in EXPERIMENTS:
        argv = header_command(path)
        argv = [tiny if i and argv[i - 1] in MODEL_FLAGS else a for i, a in enumerate(argv)]
        if "--use-sweep" in argv:  # 2 trials of the 10 keep the suite short
            argv[argv.index("--sweep-n-trials") + 1] = "2"
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


@pytest.mark.slow
def test_experiments_run_a_few_steps_on_the_tiny_model(tmp_path, monkeypatch):
    monkeypatch.chdir(guide_folder(tmp_path))
    tiny = str(models.tiny_model_dir())
    for path in EXPERIMENTS:
        name = path.stem
        cfg = OmegaConf.load(path)
        overrides = [f"+experiment={name}", "model=tiny", "training.max_steps=2", "training.logging_steps=1"]
        if name != "reward_bert_for_ppo":  # that one writes ./reward_model, which the PPO experiments read
            overrides.append(f"output_dir={tmp_path / 'out' / name}")
        if OmegaConf.select(cfg, "distillation.teacher_model"):
            overrides.append(f"distillation.teacher_model={tiny}")
        if OmegaConf.select(cfg, "trainer.model_ref"):
            overrides.append(f"trainer.model_ref={tiny}")
        if name.startswith("ppo"):
            overrides += ["training.max_steps=1", "trainer.rl.chunk_size=16", "trainer.rl.num_ppo_epochs=1",
                          "trainer.rl.max_new_tokens=4"]
        if OmegaConf.select(cfg, "sweep.n_trials"):
            overrides.append("sweep.n_trials=2")
        main(overrides)
        out = Path("reward_model") if name == "reward_bert_for_ppo" else tmp_path / "out" / name
        metrics_files = list(out.glob("**/metrics.json"))
        assert metrics_files, name
        m = json.loads(metrics_files[0].read_text())
        assert m.get("global_step", m.get("iterations", 1)) >= 1, name
