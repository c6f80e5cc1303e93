"""`autotrain llm --flags`: flag → override translation (table-driven over every flag), switches, JSON values,
migration notes, did-you-mean, --help, and the printed equivalent command composing the same config."""

import re
import shlex
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from autotrain_hydra import cli, paths
from autotrain_hydra.compat.hydra import compose_config
from autotrain_hydra.schema.params import PARAMS
from autotrain_hydra.schema.sweep_space import parse_sweep_params

GUIDE = Path(__file__).resolve().parents[2] / "shared" / "trainer-parameter-guide.md"


def sample_value(param):
    from autotrain_hydra.schema.keys import DEFAULTS as _DEFAULTS
    from autotrain_hydra.schema.keys import get

    default = get(_DEFAULTS, param.key)
    if param.key in ("eval.metrics", "eval.benchmark", "report_to", "peft.target_modules"):
        return '["a", "b"]', "[a,b]"
    if param.key == "trainer.grpo.reward_funcs":  # a list: JSON, its mappings as Hydra's
        return '["a.b", {"_target_": "a.c", "_partial_": true, "n": 2}]', "[a.b,{_target_:a.c,_partial_:true,n:2}]"
    if param.key == "trainer.grpo.reward_weights":
        return "[1.0, 0.5]", "[1.0,0.5]"
    if param.key == "sweep.params":
        return '{"lr": [1e-5, 1e-4]}', "'{\"lr\": [1e-5, 1e-4]}'"
    if isinstance(default, float):
        return "0.25", "0.25"
    if isinstance(default, int):
        return "7", "7"
    return "abc", "abc"


VALUED = [(name, spec) for name, spec in cli.FLAGS.items() if spec.param is not None and not spec.switch]


@pytest.mark.parametrize("flag,spec", VALUED, ids=[n for n, _ in VALUED])
def test_every_valued_flag_translates_to_its_key(flag, spec):
    raw, expected = sample_value(spec.param)
    if spec.param.key == "model.name":
        assert cli.translate([flag, raw]).overrides == ["model=custom", "model.name=abc"]
        return
    if spec.param.key == "launcher.name":  # a config group, whose presets set the rest
        assert cli.translate([flag, "multiprocess"]).overrides == ["launcher=multiprocess"]
        return
    assert cli.translate([flag, raw]).overrides == [f"{spec.param.key}={expected}"]
    assert cli.translate([f"{flag}={raw}"]).overrides == [f"{spec.param.key}={expected}"]  # --flag=value too


def test_every_guide_flag_has_a_translation():
    guide_flags = {p.flag for p in PARAMS if p.flag}
    assert guide_flags <= set(cli.FLAGS)
    assert {"--trainer", "--use-distillation", "--use-sweep", "--use-enhanced-eval"} <= set(cli.FLAGS)
    for name, spec in cli.FLAGS.items():  # derived flags never shadow a guide flag
        assert spec.guide or name not in guide_flags


@pytest.mark.parametrize("argv,expected", [
    (["--peft"], ["peft=lora"]),
    (["--peft", "--lora-r", "8"], ["peft=lora", "peft.lora_r=8"]),
    (["--add-eos-token"], ["trainer.add_eos_token=true"]),
    (["--add-eos-token", "false"], ["trainer.add_eos_token=false"]),
    (["--eval-save-predictions"], ["eval.save_predictions=true"]),
    (["--use-sweep"], ["features=[sweep]"]),
    (["--use-distillation", "--teacher-model", "t", "--use-enhanced-eval"],
     ["distillation.teacher_model=t", "features=[distillation,eval]"]),
    (["--packing", "--max-steps", "5"], ["training.packing=true", "training.max_steps=5"]),
    (["--weight-decay", "-0.5"], ["training.weight_decay=-0.5"]),
    (["--trainer", "dpo", "training.max_steps=3"], ["trainer=dpo", "training.max_steps=3"]),  # Hydra words pass
    (["--launcher", "fsdp", "--launcher-num-processes", "8"], ["launcher=fsdp", "launcher.num_processes=8"]),
])
def test_switches_and_passthrough(argv, expected):
    assert cli.translate(argv).overrides == expected


def test_model_names_map_to_presets():
    assert cli.translate(["--model", "meta-llama/Llama-2-7b-hf"]).overrides == ["model=llama2_7b"]
    assert cli.translate(["--model", "bert-base-uncased"]).overrides == ["model=bert_base_uncased"]
    assert cli.translate(["--model", "tiny"]).overrides == ["model=tiny"]
    assert cli.translate(["--model", "./my model"]).overrides == ["model=custom", "model.name='./my model'"]
    cfg = compose_config(["model=custom", "model.name=./m", "training.lr=1e-5"])
    assert cfg.model.name == "./m" and not cfg.model.encoder_only and cfg.training.lr == 1e-5


def test_json_values_parse():
    tr = cli.translate(["--eval-metrics", '["bleu", "rouge", "bertscore"]',
                        "--sweep-params", '{"lr": {"type": "loguniform", "low": 1e-5, "high": 1e-3}}'])
    cfg = compose_config(tr.overrides)
    assert list(cfg.eval.metrics) == ["bleu", "rouge", "bertscore"]
    assert parse_sweep_params(cfg.sweep.params) == {"lr": {"type": "loguniform", "low": 1e-5, "high": 1e-3}}
    with pytest.raises(cli.FlagError, match=r"--sweep-params is not valid JSON"):
        cli.translate(["--sweep-params", "{lr: "])
    with pytest.raises(cli.FlagError, match=r"--eval-metrics .* is not a JSON list"):
        cli.translate(["--eval-metrics", '["bleu",'])


def test_quoted_values_survive_hydra():
    template = "### Question: {input}\\n### Answer: it's"
    tr = cli.translate(["--teacher-prompt-template", template, "--data-path", "./my data/x.jsonl"])
    cfg = compose_config(tr.overrides)
    assert cfg.distillation.teacher_prompt_template == template and cfg.data.path == "./my data/x.jsonl"


def test_unknown_flag_names_the_closest():
    with pytest.raises(cli.FlagError) as e:
        cli.translate(["--dpo-bta", "0.1", "--lerning-rate", "1", "--lr", "1e-5", "--zzzz"])
    lines = str(e.value).splitlines()
    assert lines[0] == "unknown flag --dpo-bta: did you mean --dpo-beta?"
    assert lines[1].startswith("unknown flag --lerning-rate: did you mean ")
    assert lines[2] == "unknown flag --zzzz (autotrain llm --help lists the flags)"


def test_missing_value_and_bad_trainer():
    with pytest.raises(cli.FlagError, match="--lr needs a value"):
        cli.translate(["--lr", "--epochs", "1"])
    with pytest.raises(cli.FlagError, match=r"--trainer dop: not a trainer; did you mean dpo\?"):
        cli.translate(["--trainer", "dop"])


def test_migration_advanced_and_distillation_trainer(capsys):
    assert cli.translate(["--advanced", "--lr", "1e-5"]).notices == [
        "--advanced is no longer needed: every parameter is available by default (remove it)"]
    assert cli.llm(["--trainer", "distillation", "--teacher-model", "gpt-4"]) == 2
    err = capsys.readouterr().err
    assert "Error: --trainer distillation was removed" in err
    assert "--trainer sft --use-distillation --teacher-model <teacher>" in err


def test_printed_command_composes_the_same_config():
    argv = ["--trainer", "sft", "--model", "./m dir", "--lr", "2e-5", "--peft", "--lora-r", "64", "--use-enhanced-eval",
            "--eval-metrics", '["bleu", "rouge"]', "--teacher-prompt-template", "Q: {input} A:",
            "--sweep-params", '{"lr": [1e-5, 1e-4]}']
    tr = cli.translate(argv)
    words = shlex.split(tr.command())
    assert words[:3] == ["python", "-m", "autotrain_hydra"] and words[3:] == tr.overrides
    assert OmegaConf.to_container(compose_config(words[3:])) == OmegaConf.to_container(compose_config(tr.overrides))


def test_same_rules_and_wording_as_hydra_path(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.llm(["--trainer", "sft", "--dpo-beta", "0.1", "--validate-only"]) == 0
    out = capsys.readouterr()
    assert "equivalent: python -m autotrain_hydra trainer=sft trainer.dpo_beta=0.1 validate_only=true" in out.out
    assert "configuration is valid: trainer=sft, 1 warning(s)" in out.out
    assert cli.llm(["--trainer", "ppo", "--use-distillation", "--rl-reward-model-path", str(tmp_path)]) == 2
    assert "Error: Distillation is not supported with PPO trainer" in capsys.readouterr().err


def test_dpo_beta_warning_text():
    from autotrain_hydra.schema.resolve import resolve
    from autotrain_hydra.schema.rules import validate

    overrides = cli.translate(["--trainer", "sft", "--dpo-beta", "0.1"]).overrides
    cfg = resolve(compose_config(overrides), overrides).cfg
    assert [i.message for i in validate(cfg, overrides).warnings] == [
        "dpo_beta only applies to DPO trainer, will be ignored"]


def test_help_groups_flags_with_defaults(capsys):
    assert cli.llm(["--help"]) == 0
    text = capsys.readouterr().out
    headings = [h for _, h in cli.GUIDE_GROUPS]
    positions = [text.index(h + ":") for h in headings]
    assert positions == sorted(positions)
    assert re.search(r"--rl-kl-coef <value>\s+trainer\.rl\.kl_coef\s+default 0\.2 \[ppo\]", text)
    assert re.search(r"--lora-r <value>\s+peft\.lora_r\s+default 16", text)
    assert "--use-distillation" in text and "--advanced is no longer needed" in text


def test_autotrain_command_needs_llm(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["train"])
    assert e.value.code == 2 and "the command is `autotrain llm [flags]`" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------- experiments
EXPERIMENTS = sorted(p for p in (paths.config_dir() / "experiment").glob("*.yaml"))


def header_command(path):
    lines = [line[4:] for line in path.read_text().splitlines() if line.startswith("#   ")]
    return shlex.split(" ".join(line.rstrip("\\").strip() for line in lines))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
def test_experiment_is_its_guide_command(path):
    """Each experiment file holds the guide's command in its header; the flags and the file compose alike."""
    argv = header_command(path)
    assert argv[:2] == ["autotrain", "llm"]
    flags = compose_config(cli.translate(argv[2:]).overrides)
    experiment = compose_config([f"+experiment={path.stem}"])
    assert OmegaConf.to_container(flags) == OmegaConf.to_container(experiment)


@pytest.mark.skipif(not GUIDE.is_file(), reason="the guide is not beside this checkout")
def test_every_guide_example_is_an_experiment():
    text = GUIDE.read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip().startswith("autotrain llm") and "--model" in line:
                commands.append(shlex.split(line))
    shipped = [header_command(p) for p in EXPERIMENTS]
    assert len(commands) == 13
    for cmd in commands:
        assert any(s[:len(cmd)] == cmd for s in shipped), " ".join(cmd)


def test_readme_lists_every_experiment():
    readme = (Path(__file__).resolve().parents[1] / "docs" / "usage.md").read_text()
    for p in EXPERIMENTS:
        assert f"+experiment={p.stem}" in readme, p.stem


def test_list_flags_take_json_one_item_null_and_report_to_its_comma_form():
    assert cli.translate(["--report-to", "wandb,tensorboard"]).overrides == ["report_to=[wandb,tensorboard]"]
    assert cli.translate(["--grpo-reward-funcs", "pkg.mod.f"]).overrides == ["trainer.grpo.reward_funcs=[pkg.mod.f]"]
    assert cli.translate(["--grpo-reward-weights", "null"]).overrides == ["trainer.grpo.reward_weights=null"]
    with pytest.raises(cli.FlagError, match=r"--grpo-reward-weights '\[1.0,' is not a JSON list"):
        cli.translate(["--grpo-reward-weights", "[1.0,"])
    # JSON strings stay strings (Hydra would read true, null and 3 as a bool, None and an int); one mapping is a list
    [override] = cli.translate(["--grpo-reward-funcs", '{"_target_": "m.f", "_partial_": true, '
                                '"words": ["true", "null", "3", "x"], "n": 3}']).overrides
    assert override == "trainer.grpo.reward_funcs=[{_target_:m.f,_partial_:true,words:['true','null','3',x],n:3}]"
    cfg = compose_config(["trainer=grpo", override])
    assert OmegaConf.to_container(cfg.trainer.grpo.reward_funcs) == [
        {"_target_": "m.f", "_partial_": True, "words": ["true", "null", "3", "x"], "n": 3}]
