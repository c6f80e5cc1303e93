"""python -m autotrain_hydra.generate: the model of a run answers (full, LoRA adapter, merged), a reward run scores,
prompts from a file go to a .jsonl, a chat on a terminal; a dir with no run or no model yet is a clear error."""

import json
import subprocess
import sys

import pytest

from autotrain_hydra import generate
from autotrain_hydra.compat.hydra import compose_config
from autotrain_hydra.errors import InputError
from autotrain_hydra.run import run

SHORT = ["training.max_steps=2", "training.logging_steps=1", "training.eval_strategy=no", "data.valid_path=null"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two finished runs: sft with LoRA (the adapter, and the full merged model in merged/), and a reward model."""
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for name, overrides in {"sft": ["trainer=sft", "peft=lora", "peft.merge_adapter=true"],
                            "reward": ["trainer=reward", "peft=lora"]}.items():
        out[name] = root / name
        run(compose_config([*SHORT, *overrides, f"output_dir={out[name]}"]), overrides)
    return out


def main(*argv, capsys):
    code = generate.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.slow
def test_each_kind_of_run_answers_or_scores(runs, tmp_path, capsys):
    code, out, _ = main(runs["sft"], "--prompt", "What is 2 plus 2?", "--max-new-tokens", "4", capsys=capsys)
    assert code == 0 and isinstance(out, str)
    found = generate.locate(str(runs["sft"]))
    assert found.kind == "merged" and found.trainer == "sft" and not found.scorer
    assert generate.Model(found).chat  # an sft run: its prompts go through the chat template
    # the adapter on its base and the merged weights answer alike (greedy)
    adapter = generate.Model(generate.Found(str(runs["sft"]), "adapter", "sft", False))
    merged = generate.Model(found)
    # the adapter's answers end where the run's do: its generation_config.json (EOS and <|im_end|>), not its base's
    assert adapter.model.generation_config.eos_token_id == merged.model.generation_config.eos_token_id == [2, 5]
    messages = [{"role": "user", "content": "What is 3 plus 4?"}]
    assert adapter.answer(messages, 6, 0.0) == merged.answer(messages, 6, 0.0)
    code, out, _ = main(runs["reward"], "--prompt", "5 plus 4 is 9.", capsys=capsys)
    assert code == 0 and float(out)  # a score, not an answer
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"prompt": "Hi"}) + "\n\n" + json.dumps({"text": "Bye"}) + "\n")
    code, _, err = main(runs["sft"], "--prompts", prompts, "--output", tmp_path / "a.jsonl", "--max-new-tokens", "3",
                        capsys=capsys)
    rows = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert code == 0 and [r["prompt"] for r in rows] == ["Hi", "Bye"] and "2 answers written" in err


@pytest.mark.slow
def test_a_chat_on_a_terminal_keeps_the_conversation(runs, monkeypatch, capsys):
    turns = iter(["Hello", "/reset", "Again", "/quit"])
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt="": next(turns))
    seen = []
    answer = generate.Model.answer
    monkeypatch.setattr(generate.Model, "answer", lambda self, messages, *a: seen.append(list(messages)) or
                        answer(self, messages, *a))
    code, out, err = main(runs["sft"], "--max-new-tokens", "2", capsys=capsys)
    assert code == 0 and "/reset, /quit" in err
    assert [len(m) for m in seen] == [1, 1]  # /reset forgot the first turn


def test_a_dir_that_is_no_run_or_has_no_model_is_a_clear_error(tmp_path, capsys):
    from autotrain_hydra import rundir

    code, _, err = main(tmp_path / "none", "--prompt", "x", capsys=capsys)
    assert code == 2 and "is not a directory" in err and "Traceback" not in err
    code, _, err = main(tmp_path, "--prompt", "x", capsys=capsys)
    assert code == 2 and "holds no run and no model" in err
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoints").mkdir()
    with rundir.owned(str(out)):
        rundir.start(str(out), "sft", "tiny", "data.jsonl", {}, resuming=False)
    code, _, err = main(out, "--prompt", "x", capsys=capsys)
    assert code == 2 and "has no model yet: it is still training, or was stopped" in err
    assert "training.resume_from_checkpoint=true" in err


def test_prompts_files_and_arguments_are_checked(tmp_path):
    bad = tmp_path / "p.jsonl"
    bad.write_text('{"prompt": "a"}\n{"q": 1}\n')
    with pytest.raises(InputError, match=r"p.jsonl:2 has no text in \"prompt\""):
        list(generate.read_prompts(str(bad)))
    (tmp_path / "t.txt").write_text("one\n\ntwo\n")
    assert list(generate.read_prompts(str(tmp_path / "t.txt"))) == ["one", "two"]
    with pytest.raises(InputError, match="--output needs --prompts"):
        generate.run(generate.parser().parse_args([str(tmp_path), "--prompt", "x", "--output", "o.jsonl"]))
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"latin1.txt: not UTF-8 text \(byte 3\)"):
        list(generate.read_prompts(str(tmp_path / "latin1.txt")))
    run = tmp_path / "run"  # a dir that holds a model: --output that cannot be written is said before it loads
    run.mkdir()
    (run / "config.json").write_text("{}")
    for output in (tmp_path, tmp_path / "no" / "such" / "a.jsonl"):
        with pytest.raises(InputError, match="cannot write a file there"):
            generate.run(generate.parser().parse_args([str(run), "--prompts", str(tmp_path / "t.txt"),
                                                       "--output", str(output)]))


def test_help_is_light():
    code = ("import sys; from autotrain_hydra import generate\n"
            "try:\n    generate.main(['--help'])\nexcept SystemExit: pass\n"
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


# ----------------------------------------------------------------------------------------------- serving-ready output
@pytest.mark.slow
def test_the_merged_model_is_what_a_server_loads_and_the_card_says_how(runs):
    import transformers

    merged = runs["sft"] / "merged"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "generation_config.json"):
        assert (merged / name).is_file(), name
    assert not list(merged.glob("*.bin"))  # safetensors only
    tok = transformers.AutoTokenizer.from_pretrained(merged)
    assert tok.chat_template and "<|im_start|>" in tok.chat_template
    generation = json.loads((merged / "generation_config.json").read_text())
    # the EOS and ChatML's end of turn: an answer ends where training ended it
    assert generation["eos_token_id"] == [tok.eos_token_id, tok.convert_tokens_to_ids("<|im_end|>")]
    assert generation["pad_token_id"] == tok.pad_token_id
    pipe = transformers.pipeline("text-generation", model=str(merged))
    text = pipe("What is 2 plus 2?", max_new_tokens=4, do_sample=False)[0]["generated_text"]
    assert text.startswith("What is 2 plus 2?") and len(text) > len("What is 2 plus 2?")
    card = (runs["sft"] / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: peft\n")  # no base_model: the tiny model is no hub name
    assert f"vllm serve {merged}" in card and "| peft | lora: r=16, alpha=32, dropout=0.05 |" in card
    assert "** (the run's objective) |" in card and "## Final metrics" in card
    from autotrain_hydra.app import main as command  # the card's "run it again" command, checked (validate_only)

    assert f"--config-path {runs['sft']} --config-name config hydra.job.chdir=false output_dir=<a new dir>" in card
    assert command(["--config-path", str(runs["sft"]), "--config-name", "config", "hydra.job.chdir=false",
                    f"output_dir={runs['sft'].parent / 'again'}", "validate_only=true"]) == 0
    scorer_card = (runs["reward"] / "README.md").read_text()
    assert "pipeline_tag: text-classification" in scorer_card and "pipeline(\"text-classification\"" in scorer_card
    score = transformers.pipeline("text-classification", model=str(runs["reward"]), function_to_apply="none")
    assert isinstance(score("5 plus 4 is 9.")[0]["score"], float)


def test_a_large_model_is_saved_in_safetensors_shards_that_load(tmp_path, monkeypatch):
    import torch
    import transformers

    from autotrain_hydra import models

    model = transformers.AutoModelForCausalLM.from_pretrained(models.tiny_model_dir())
    tok = transformers.AutoTokenizer.from_pretrained(models.tiny_model_dir())
    monkeypatch.setattr(models, "SHARD_SIZE", "100KB")  # the tiny model is ~0.3 MB: shards as a 10 GB model would
    models.save_for_serving(model, tok, str(tmp_path))
    shards = sorted(p.name for p in tmp_path.glob("model-*.safetensors"))
    assert len(shards) > 1 and (tmp_path / "model.safetensors.index.json").is_file()
    again = transformers.AutoModelForCausalLM.from_pretrained(tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
