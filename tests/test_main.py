"""A few subprocess runs of the real command line (each costs an interpreter start; keep them few)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, cwd, env=None):
    return subprocess.run([sys.executable, "-X", "importtime", "-m", "autotrain_hydra", *args], cwd=cwd,
                          capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=600)


def heavy_imports(stderr):
    return [line for line in stderr.splitlines() if line.startswith("import time:")
            and line.split("|")[-1].strip() in ("torch", "transformers", "trl", "datasets")]


def in_a_terminal(args, cwd, timeout=600):
    """Run a command with a pseudo-terminal (120 columns) as its stdout and stderr, as a person at a terminal runs
    it: (exit code, everything it wrote)."""
    import fcntl
    import pty
    import select
    import struct
    import termios
    import time

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {k: v for k, v in os.environ.items() if k != "AUTOTRAIN_HYDRA_PROGRESS"}
    proc = subprocess.Popen(args, cwd=cwd, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    out, deadline = b"", time.time() + timeout
    while time.time() < deadline:
        if select.select([master], [], [], 1)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer closed its end
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=60), out.decode("utf-8", errors="replace")


@pytest.mark.slow
def test_default_command_trains_the_tiny_model_and_its_console_reads_well(tmp_path):
    """`python -m autotrain_hydra` with no argument, at a terminal: SFT on the tiny model and the sample chat data;
    a progress bar with its ETA, a line of numbers at each logging step and evaluation, the end summary; no metric
    dict of quoted strings, no line twice, no known library warning."""
    import re

    code, text = in_a_terminal([sys.executable, "-m", "autotrain_hydra"], cwd=tmp_path)
    assert code == 0, text[-3000:]
    (run_dir,) = list((tmp_path / "outputs" / "sft").glob("*/*"))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["objective_name"] == "eval_loss" and metrics["train_loss"] < metrics["first_train_loss"]
    for name in ("config.json", "model.safetensors", "tokenizer.json", ".hydra/config.yaml", "train.log"):
        assert (run_dir / name).exists(), name
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
    assert re.search(r"training: +\d+%\|.*\| *\d+/36 \[\d+:\d+<\d+:\d+", plain), plain[-3000:]  # a bar, its ETA
    lines = [line.rstrip("\r").split("\r")[-1].strip() for line in plain.split("\n")]  # a terminal ends lines \r\n
    said = [re.sub(r"^\[[^]]+\]\[[^]]+\]\[\w+\] - ", "", line) for line in lines if line and "%|" not in line]
    assert any(re.fullmatch(r"step 36/36  loss \d\.\d+  lr .*", line) for line in said), said
    assert [line for line in said if line.startswith("eval at step")] == sorted(
        {line for line in said if line.startswith("eval at step")}, key=said.index)  # each evaluation once
    assert "done: trainer=sft on tiny, 36 optimizer steps in" in "\n".join(said)
    assert f"try it: python -m autotrain_hydra.generate {run_dir} --prompt" in "\n".join(said)
    duplicates = sorted({line for line in said if said.count(line) > 1})
    assert duplicates == [], duplicates
    for noise in ("{'loss': '", "'eval_loss': '", "Warning", "LOAD REPORT", "gemm_4bit", "Loading weights",
                  "Writing model shards", "Traceback"):
        assert noise not in plain, (noise, plain[-3000:])
    assert "step 1/36" in (run_dir / "train.log").read_text()  # the lines are in the run's log too


@pytest.mark.slow
def test_bad_config_exits_2_with_every_error_and_no_heavy_import(tmp_path):
    proc = cli("trainer=ppo", "features=[distillation]", "trainer.dpo_bta=0.2", "training.optimizer=adam",
               cwd=tmp_path)
    assert proc.returncode == 2
    err = proc.stderr
    assert "Traceback" not in err
    for text in ("Error: unknown key trainer.dpo_bta", "did you mean trainer.dpo_beta?",
                 "Error: training.optimizer must be one of adamw_torch, adamw_hf, sgd, adafactor",
                 "Error: ppo requires trainer.rl.reward_model_path",
                 "Error: Distillation is not supported with PPO trainer", "the configuration has 4 errors"):
        assert text in err, err[-2000:]
    assert heavy_imports(err) == []
    assert not (tmp_path / "outputs").exists() or not any((tmp_path / "outputs").rglob("*.safetensors"))


@pytest.mark.slow
def test_rule_error_after_composition_exits_2_and_warning_wording(tmp_path):
    proc = cli("trainer=sft", "trainer.dpo_beta=0.1", "validate_only=true", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Warning: dpo_beta only applies to DPO trainer, will be ignored" in proc.stdout + proc.stderr
    assert heavy_imports(proc.stderr) == []
    proc = cli("features=[distillation]", cwd=tmp_path)  # composes fine; the rule fails in the task
    assert proc.returncode == 2 and "Error: distillation requires distillation.teacher_model" in proc.stderr
    assert "Traceback" not in proc.stderr and heavy_imports(proc.stderr) == []


@pytest.mark.slow
def test_help_is_light():
    proc = cli("--help", cwd=ROOT)
    assert proc.returncode == 0 and "trainer: dpo, generic, grpo, kto, orpo, ppo, reward, sft" in proc.stdout
    assert heavy_imports(proc.stderr) == []


@pytest.mark.slow
def test_autotrain_llm_console_script_is_light_and_uses_the_same_rules(tmp_path):
    """The installed `autotrain` script: the guide's error, exit 2, no heavy import."""
    import shutil

    exe = shutil.which("autotrain")
    assert exe, "the autotrain console script is not installed (pip install -e .)"
    proc = subprocess.run([exe, "llm", "--trainer", "ppo", "--use-distillation", "--advanced"], cwd=tmp_path,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"},
                          timeout=600)
    assert proc.returncode == 2
    assert "equivalent: python -m autotrain_hydra trainer=ppo 'features=[distillation]'" in proc.stdout
    assert "Notice: --advanced is no longer needed" in proc.stderr
    assert "Error: Distillation is not supported with PPO trainer" in proc.stderr
    assert "Traceback" not in proc.stderr and heavy_imports(proc.stderr) == []


@pytest.mark.slow
def test_non_editable_install_finds_shipped_configs(tmp_path):
    """A wheel install (here: pip install --target) carries configs/ and the sample data inside the package."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--quiet",
                    "--target", str(target), str(ROOT)], check=True, capture_output=True, timeout=600)
    assert (target / "autotrain_hydra" / "configs" / "config.yaml").is_file()
    assert (target / "autotrain_hydra" / "configs" / "trainer" / "dpo.yaml").is_file()
    assert (target / "autotrain_hydra" / "assets" / "data" / "chat.jsonl").is_file()
    assert (target / "autotrain_hydra" / "configs" / "experiment" / "dpo_llama2.yaml").is_file()
    assert (target / "autotrain_hydra" / "configs" / "accelerate" / "fsdp.yaml").is_file()
    assert (target / "autotrain_hydra" / "configs" / "hydra" / "launcher" / "slurm.yaml").is_file()
    assert (target / "hydra_plugins" / "autotrain_hydra_sweeper" / "__init__.py").is_file()
    found = subprocess.run([sys.executable, "-c", "from hydra.core.plugins import Plugins; "
                            "from hydra.plugins.sweeper import Sweeper; "
                            "print([p.__module__ for p in Plugins.instance().discover(Sweeper)])"],
                           cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(target)},
                           timeout=600)
    assert "hydra_plugins.autotrain_hydra_sweeper" in found.stdout, found.stderr[-2000:]
    assert {"autotrain", "autotrain-hydra"} <= {p.name for p in (target / "bin").iterdir()}
    proc = subprocess.run([sys.executable, "-m", "autotrain_hydra", "trainer=dpo", "--cfg", "job", "--resolve"],
                          cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(target)},
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "name: dpo" in proc.stdout
    assert "dpo_beta: 0.1" in proc.stdout
