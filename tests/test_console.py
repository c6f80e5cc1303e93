"""What the terminal shows: the log lines' numbers, the end summary, bars only at rank 0 of a terminal; and the
command line's fast exit, which still runs the exit hooks."""

import subprocess
import sys

from autotrain_hydra import console


def test_lines_are_numbers_not_dicts_of_strings():
    line = console.train_line({"loss": 5.7843, "learning_rate": 0.000843751, "grad_norm": 1.7, "reward": 0.5,
                               "epoch": 0.8333, "train_runtime": 3.0}, 10, 36, 61)
    assert line == "step 10/36  loss 5.784  lr 8.438e-04  reward 0.5  epoch 0.83  ETA 1:01"
    first = {"eval_loss": 5.133, "eval_accuracy": 0.2, "eval_runtime": 0.01, "eval_samples_per_second": 900.0}
    assert console.eval_line(first, 12, 36, None) == "eval at step 12/36:  loss 5.133  accuracy 0.2"
    later = {"eval_loss": 4.444, "eval_accuracy": 0.5}
    assert console.eval_line(later, 24, 36, first) == "eval at step 24/36:  loss 4.444 (-0.689)  accuracy 0.5 (+0.3)"


def test_the_summary_says_what_improved_where_the_model_is_and_how_to_try_it():
    metrics = {"objective_name": "eval_loss", "objective": 4.2, "global_step": 36, "wall_time_s": 75,
               "train_loss": 4.3, "first_train_loss": 6.2, "history": {"eval": [(12, 5.1), (24, 4.4), (36, 4.2)]}}
    assert console.summary("sft", "tiny", "/o", metrics, "python -m autotrain_hydra.generate /o") == [
        "done: trainer=sft on tiny, 36 optimizer steps in 1:15",
        "  eval_loss   4.2   (better than 5.1 at the first evaluation (step 12))",
        "  train_loss  4.3   (better than 6.2 at the first step)",
        "  model: /o", "  try it: python -m autotrain_hydra.generate /o"]
    policy = {"objective_name": "eval_mean_reward_after", "objective": 0.2, "eval_mean_reward_before": 0.3,
              "global_step": 1, "train_loss": -0.1, "first_train_loss": 0.1}
    lines = console.summary("ppo", "tiny", "/o", policy, None)
    assert lines[:2] == ["done: trainer=ppo on tiny, 1 optimizer step in 0:00",
                         "  eval_mean_reward_after  0.2   (not better than 0.3 before training)"]
    assert not any("train_loss" in line for line in lines)  # a policy's loss says nothing of how it does
    preference = {"objective_name": "eval_loss", "objective": 0.32, "global_step": 36, "wall_time_s": 8,
                  "eval_logp_margin_before": -4.44, "eval_logp_margin_after": 10.48}
    assert console.summary("kto", "tiny", "/o", preference, None)[1:3] == [
        "  eval_loss               0.32",
        "  eval_logp_margin_after  10.48   (better than -4.44 before training)"]


def test_bars_only_on_a_terminal_and_in_the_first_process(monkeypatch):
    monkeypatch.setenv("AUTOTRAIN_HYDRA_PROGRESS", "1")
    assert console.is_terminal()
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert not console.is_terminal()
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.setenv("AUTOTRAIN_HYDRA_PROGRESS", "0")
    bar = console.progress(10, "training")
    bar.update_to(4)
    assert not console.is_terminal() and bar.n == 4  # a bar that draws nothing, and counts


def test_the_fast_exit_runs_the_exit_hooks_and_only_after_a_success(tmp_path):
    script = ("import atexit, sys, torch\n"
              "from autotrain_hydra.app import finish\n"
              f"atexit.register(lambda: open({str(tmp_path / 'hook')!r} + sys.argv[1], 'w').close())\n"
              "print('last line', flush=True)\n"
              "finish(int(sys.argv[1]))\n")
    for code in (0, 1):
        proc = subprocess.run([sys.executable, "-c", script, str(code)], capture_output=True, text=True, timeout=120)
        assert proc.returncode == code and proc.stdout == "last line\n", proc.stderr
        assert (tmp_path / f"hook{code}").exists()
