"""trainer.grpo.reward_funcs: each form of item resolves to the callable it names, and what GRPO cannot call is
refused with the item's index, what is wrong and the fix."""

import functools

import pytest

from autotrain_hydra import reward_funcs, rewards
from autotrain_hydra.reward_funcs import RewardFuncError, resolve


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "my_rewards.py"
    path.write_text(
        "def brevity(prompts, completions, **kwargs):\n    return [1.0 / (1 + len(c)) for c in completions]\n"
        "def needs_answer(prompts, completions, answer, **kwargs):\n    return [float(a in c) for a, c in "
        "zip(answer, completions)]\n"
        "def bad(x):\n    return [0.0]\n"
        "class Scaled:\n    def __init__(self, scale=1.0):\n        self.scale = scale\n"
        "    def __call__(self, prompts, completions, **kwargs):\n        return [self.scale] * len(completions)\n")
    return path


def test_the_three_forms_resolve(user_file):
    found = resolve(["autotrain_hydra.rewards.has_number", f"{user_file}:brevity",
                     {"_target_": "autotrain_hydra.rewards.length_target", "_partial_": True, "target": 3}])
    assert [f.name for f in found] == ["has_number", "brevity", "length_target"]
    assert found[0].func is rewards.has_number
    assert found[1].func(prompts=["p"], completions=["abc"]) == [0.25]
    assert isinstance(found[2].func, functools.partial) and found[2].func(None, ["abc"]) == [1.0]


def test_a_target_without_partial_is_made_by_the_run_and_only_checked_by_validation(tmp_path, monkeypatch):
    (tmp_path / "judges.py").write_text(
        "import os\n"
        "class Judge:\n"
        "    def __init__(self, scale=1.0):\n"
        "        open(os.environ['MADE'], 'w').close()  # a client, a model: not made at validation\n"
        "        self.scale = scale\n"
        "    def __call__(self, prompts, completions, **kwargs):\n"
        "        return [self.scale] * len(completions)\n"
        "class Picky:\n"
        "    def __call__(self, text):\n"
        "        return [0.0]\n"
        "def factory(n):\n"
        "    return lambda prompts, completions, **kw: [float(n)] * len(completions)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("MADE", str(tmp_path / "made"))
    checked = resolve([{"_target_": "judges.Judge", "scale": 2.0}, {"_target_": "judges.factory", "n": 3}])
    assert [f.name for f in checked] == ["Judge", "factory"] and not (tmp_path / "made").exists()
    with pytest.raises(RewardFuncError, match=r"its arguments do not fit judges.Judge \(got an unexpected keyword "
                                              r"argument 'size'\)"):
        resolve([{"_target_": "judges.Judge", "size": 2.0}])
    with pytest.raises(RewardFuncError, match=r"its signature Picky\(text\) cannot take what GRPO passes"):
        resolve([{"_target_": "judges.Picky"}])
    made = resolve([{"_target_": "judges.Judge", "scale": 2.0}, {"_target_": "judges.factory", "n": 3}], make=True)
    assert (tmp_path / "made").exists()
    assert made[0].func(prompts=["p"], completions=["a", "b"]) == [2.0, 2.0]
    assert made[1].func(prompts=["p"], completions=["a"]) == [3.0]


def test_with_columns_unknown_a_required_argument_may_name_one(user_file):
    """A hub dataset's columns are not known before load: ``def f(prompts, completions, answer, **kwargs)`` passes."""
    assert resolve([f"{user_file}:needs_answer"], columns=None)[0].name == "needs_answer"


def test_a_column_argument_binds_when_the_data_have_it(user_file):
    assert resolve([f"{user_file}:needs_answer"], columns=["answer"])[0].name == "needs_answer"
    with pytest.raises(RewardFuncError, match=r"it takes the column 'answer', which the data it scores lack \(their "
                                              r"columns beside the prompt: solution;"):
        resolve([f"{user_file}:needs_answer"], columns=["solution"])


@pytest.mark.parametrize("item,message,fix", [
    ("nope.mod.f", "nope.mod.f does not import: ModuleNotFoundError: No module named 'nope'", "check the module path"),
    ("autotrain_hydra.rewards.nothing", "module autotrain_hydra.rewards has no 'nothing'", "name a function"),
    ("has_number", "'has_number' is neither a dotted path", "autotrain_hydra.rewards.has_number"),
    ("autotrain_hydra.rewards.CHOICES", "is a dict, not a function", "name a function"),
    ({"_partial_": True}, "has no _target_", "_target_"),
    ({"_target_": "nope.f", "_partial_": True}, "cannot be instantiated", "check _target_"),
    ({"_target_": "autotrain_hydra.rewards.reference_match", "_partial_": True, "mode": "fuzzy"},
     "mode='fuzzy' is not one of contains, exact, number", "docs/usage.md"),
    ({"_target_": "autotrain_hydra.rewards.keywords", "_partial_": True}, "it needs the words", "docs/usage.md"),
    ({"_target_": "autotrain_hydra.rewards.reference_match", "_partial_": True},
     "it reads the column 'answer', which the data lack (their columns beside the prompt: id)", "docs/usage.md"),
    (3, "'3' is not a reward function", "dotted path"),
])
def test_what_grpo_cannot_call_is_refused(item, message, fix):
    with pytest.raises(RewardFuncError) as e:
        resolve(["autotrain_hydra.rewards.has_number", item], columns=["id"])
    assert e.value.key == "trainer.grpo.reward_funcs[1]"
    assert message in e.value.message and fix in e.value.fix


def test_a_file_item_is_checked(user_file, tmp_path):
    with pytest.raises(RewardFuncError, match=r"its signature bad\(x\) cannot take what GRPO passes") as e:
        resolve([f"{user_file}:bad"])
    assert e.value.fix.startswith("define it as def f(prompts, completions, **kwargs)")
    with pytest.raises(RewardFuncError, match="has no function 'missing'") as e:
        resolve([f"{user_file}:missing"])
    assert "brevity, needs_answer, bad" in e.value.fix
    with pytest.raises(RewardFuncError, match="reward function file not found"):
        resolve([f"{tmp_path}/none.py:f"])
    broken = tmp_path / "broken.py"
    broken.write_text("import nothing_here\n")
    with pytest.raises(RewardFuncError, match="does not import: ModuleNotFoundError"):
        resolve([f"{broken}:f"])


def test_a_class_given_by_path_is_refused(user_file):
    with pytest.raises(RewardFuncError, match="Scaled is a class"):
        resolve([f"{user_file}:Scaled"])


def test_two_functions_of_one_name_get_two_metrics():
    found = resolve(["autotrain_hydra.rewards.has_number", "autotrain_hydra.rewards.has_number"])
    assert [f.name for f in found] == ["has_number_1", "has_number_2"]
    assert reward_funcs.name_of(found[0].func) == "has_number"


def test_a_module_that_exits_while_importing_is_an_error_not_an_exit(tmp_path):
    (tmp_path / "quits.py").write_text("import sys\nsys.exit(0)\n")
    with pytest.raises(RewardFuncError, match="does not import: SystemExit: 0"):
        resolve([f"{tmp_path}/quits.py:f"])
    with pytest.raises(RewardFuncError, match=r"names a file and no function in it") as e:
        resolve(["./rw.py"])
    assert e.value.fix == "add the function after a colon: ./rw.py:<function>"


@pytest.mark.parametrize("item,message", [
    ({"_target_": "autotrain_hydra.rewards.length_target", "_partial_": True, "tgt": 4},
     "length_target has no argument 'tgt' (its arguments: target, unit)"),
    ({"_target_": "autotrain_hydra.rewards.length_target", "_partial_": True, "target": "abc"},
     "target='abc' is str; length_target takes a finite number there"),
    ({"_target_": "autotrain_hydra.rewards.regex_match", "_partial_": True, "pattern": "("},
     "pattern='(' is not a regular expression (missing ), unterminated subpattern"),
    ({"_target_": "autotrain_hydra.rewards.keywords", "_partial_": True, "words": 3},
     "words=3 is int; keywords takes a word or a list of words there"),
])
def test_the_settings_of_a_shipped_function_are_checked(item, message):
    """Their **kwargs takes TRL's arguments: a misspelt or mistyped setting would vanish there, or fail mid-run."""
    with pytest.raises(RewardFuncError) as e:
        resolve([item])
    assert message in e.value.message


def test_the_reward_model_s_name_is_kept_for_it():
    found = resolve([{"_target_": "autotrain_hydra.rewards.length_target", "_partial_": True, "target": 3}])
    assert found[0].name == "length_target"
    assert reward_funcs.RESERVED == ("reward_model",)


def test_a_whole_list_interpolation_that_resolved_to_text_is_refused():
    with pytest.raises(RewardFuncError, match="must be a list, and it is str './rw.py:f'") as e:
        reward_funcs.items_of("./rw.py:f")
    assert e.value.key == "trainer.grpo.reward_funcs" and "[${oc.env:VAR}]" in e.value.fix
    assert reward_funcs.items_of(None) == []


def test_every_source_gets_a_name_of_its_own(tmp_path):
    (tmp_path / "names.py").write_text("".join(f"def {n}(prompts, completions, **kw):\n    return [0.0]\n"
                                               for n in ("reward_model", "reward_model_2", "has_number",
                                                         "has_number_2")))
    f = f"{tmp_path}/names.py"
    for items in ([f"{f}:reward_model", f"{f}:reward_model_2"],
                  ["autotrain_hydra.rewards.has_number", f"{f}:has_number", f"{f}:has_number_2"]):
        names = [x.name for x in resolve(items)]
        assert len(set(names)) == len(names) and "reward_model" not in names, names


def test_a_list_of_words_and_finite_numbers_for_the_shipped_functions():
    from omegaconf import OmegaConf

    item = OmegaConf.create({"_target_": "autotrain_hydra.rewards.keywords", "_partial_": True, "words": ["yes", "no"]})
    assert resolve([item])[0].func(None, ["yes it is"]) == [0.5]
    with pytest.raises(RewardFuncError, match="target=inf is float; length_target takes a finite number there"):
        resolve([{"_target_": "autotrain_hydra.rewards.length_target", "_partial_": True, "target": float("inf")}])
