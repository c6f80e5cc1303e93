"""report_to: TensorBoard event files in the run dir, read back; ppo reports to the same trackers as the Trainer-based
trainers, under the same names (train/loss, train/learning_rate, eval/...)."""

import pytest

from autotrain_hydra import tracking
from tests.helpers import train_in


def scalars(out):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(out / "tensorboard")).Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


@pytest.mark.slow
def test_sft_writes_its_training_and_eval_scalars_into_the_run_dir(tmp_path):
    out, m, _ = train_in(tmp_path, [], "report_to=[tensorboard]", "training.max_steps=4", "training.logging_steps=1",
                         "training.eval_strategy=steps", "training.eval_steps=2")
    found = scalars(out)
    assert [s for s, _ in found["train/loss"]] == [1, 2, 3, 4]
    assert found["train/loss"][-1][1] == pytest.approx(m["history"]["train"][-1][1], rel=1e-4)
    assert [s for s, _ in found["eval/loss"]][:2] == [2, 4] and "train/learning_rate" in found
    assert not (out / "checkpoints" / "runs").exists()  # not transformers' default place


@pytest.mark.slow
def test_ppo_reports_to_the_same_trackers_under_the_trainers_names(tmp_path, tiny_scorer):
    out, m, _ = train_in(tmp_path, [], "trainer=ppo", f"trainer.rl.reward_model_path={tiny_scorer}",
                         "report_to=[tensorboard]", "training.max_steps=2", "training.logging_steps=1",
                         "trainer.rl.chunk_size=4", "trainer.rl.mini_batch_size=2", "training.batch_size=2",
                         "trainer.rl.max_new_tokens=8")
    found = scalars(out)
    assert {"train/loss", "train/learning_rate", "train/reward", "train/kl", "train/completions/mean_length",
            "train/policy_loss", "eval/mean_reward"} <= set(found), sorted(found)
    assert [s for s, _ in found["train/loss"]] == [1, 2]
    assert found["eval/mean_reward"] == [(0, pytest.approx(m["eval_mean_reward_before"])),
                                         (2, pytest.approx(m["eval_mean_reward_after"]))]


def test_rows_get_the_trainers_names():
    assert tracking.trainer_names({"loss": 1, "eval_loss": 2, "rewards/x/mean": 3, "lr": 4, "note": "s", "ok": True},
                                  tracking.PPO_NAMES) == {"train/loss": 1.0, "eval/loss": 2.0, "train/rewards/x/mean": 3.0,
                                                          "train/learning_rate": 4.0}


def test_the_tensorboard_dir_is_set_only_while_a_job_trains(tmp_path, monkeypatch):
    from tests.helpers import compose

    monkeypatch.delenv(tracking.TENSORBOARD_VAR, raising=False)
    with tracking.writing_into(compose("report_to=[tensorboard]"), str(tmp_path)):
        assert tracking.os.environ[tracking.TENSORBOARD_VAR] == str(tmp_path / "tensorboard")
    assert tracking.TENSORBOARD_VAR not in tracking.os.environ
    with tracking.writing_into(compose(), str(tmp_path)):
        assert tracking.TENSORBOARD_VAR not in tracking.os.environ
