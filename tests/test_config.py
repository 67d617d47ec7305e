"""Run settings: defaults < --config file < the options given < --set, validated as a whole;
a bad setting is one line and exit code 2, before anything is created."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.config import ConfigError, RunConfig, apply_sets, load, parse_value
from fixtures.helpers import only_session, run_cli, toy_task

DEFAULTS = RunConfig(task_dir=".")


def load_error(**kw) -> str:
    with pytest.raises(ConfigError) as info:
        load({"task_dir": "t"}, **kw)
    return str(info.value)


# -- merging -----------------------------------------------------------------------------------
def test_later_sources_win_defaults_file_flags_set(tmp_path):
    run = tmp_path / "run.toml"
    run.write_text("budget = 7\nseed = 3\nworkers = 2\n[search]\nislands = 9\nelite_size = 4\n")
    cfg = load({"task_dir": "t", "budget": 5, "seed": 4}, run, ["seed=11", "search.islands=2"])
    assert cfg.budget == 5  # the option given beats the file
    assert cfg.seed == 11  # --set beats both
    assert cfg.workers == 2 and cfg.search.elite_size == 4  # the file beats the defaults
    assert cfg.search.islands == 2
    assert cfg.search.migration_every == DEFAULTS.search.migration_every  # the rest: defaults
    assert cfg.wall_s == DEFAULTS.wall_s


def test_a_later_set_of_the_same_key_wins():
    assert load({"task_dir": "t"}, sets=["budget=3", "budget=4"]).budget == 4


def test_dotted_keys_reach_nested_settings():
    cfg = load({"task_dir": "t"}, sets=["search.islands=5", "provider.max_tokens=8000",
                                        "budget=10", "episode.wall_s=60.5", "tuner.trials=2"])
    assert (cfg.search.islands, cfg.provider.max_tokens, cfg.budget) == (5, 8000, 10)
    assert cfg.episode.wall_s == 60.5 and cfg.tuner.trials == 2


@pytest.mark.parametrize("text,value", [
    ("5", 5), ("1.5", 1.5), ("true", True), ('["tuner", "scripted:a.jsonl"]', ["tuner", "scripted:a.jsonl"]),
    ('"quoted"', "quoted"), ("docker", "docker"), ("a=b", "a=b"), ("", ""),
    ("1\nbudget = 2", "1\nbudget = 2"),  # a second TOML line is not smuggled in
])
def test_values_are_toml_where_they_parse_else_text(text, value):
    assert parse_value(text) == value


def test_set_values_are_typed_and_free_form_tables_take_any_key():
    data = apply_sets({}, ["sandbox=docker", "bandit=true", "models=['tuner']",
                           "pricing.my-model.input=1.5", "data_dir=/x=y"])
    assert data == {"sandbox": "docker", "bandit": True, "models": ["tuner"],
                    "pricing": {"my-model": {"input": 1.5}}, "data_dir": "/x=y"}


# -- unknown keys and bad values ---------------------------------------------------------------
def test_unknown_nested_key_lists_the_valid_ones_at_its_level():
    msg = load_error(sets=["search.islnds=5"])
    assert msg.startswith("--set search.islnds=5: unknown setting; valid: search.islands, "
                          "search.migration_every, ")
    assert "\n" not in msg and "budget" not in msg


def test_unknown_top_level_key_lists_settings_and_tables():
    msg = load_error(sets=["budgt=10"])
    assert msg.startswith("--set budgt=10: unknown setting; valid: ")
    assert "budget" in msg and "search.*" in msg and "provider.*" in msg


def test_a_value_is_not_a_table():
    assert load_error(sets=["budget.max=3"]) == ("--set budget.max=3: budget is a value, not a "
                                                 "table of settings")


def test_set_without_equals_says_the_form():
    assert "expected KEY=VALUE" in load_error(sets=["search.islands"])


def test_bad_values_name_their_source_key_and_problem():
    msg = load_error(sets=["search.islands=many", "budget=-1"])
    assert "\n" not in msg
    assert "--set search.islands=many: input should be a valid integer" in msg
    assert "--set budget=-1: input should be greater than or equal to 0" in msg


def test_bad_option_value_is_named_by_its_flag():
    with pytest.raises(ConfigError, match=r"^--workers 0: input should be greater than or equal to 1$"):
        load({"task_dir": "t", "workers": 0}, flag_names={"workers": "--workers"})


# -- the --config file -------------------------------------------------------------------------
def test_config_file_missing(tmp_path):
    assert load_error(file=tmp_path / "run.toml") == f"--config {tmp_path / 'run.toml'}: no such file"


def test_config_file_not_toml(tmp_path):
    run = tmp_path / "run.toml"
    run.write_text("budget = \n")
    msg = load_error(file=run)
    assert msg.startswith(f"--config {run}: not valid TOML: ") and "line 1" in msg


def test_config_file_unknown_key_in_a_table(tmp_path):
    run = tmp_path / "run.toml"
    run.write_text("[provider]\nmax_token = 100\n")
    assert load_error(file=run).startswith(
        f"--config {run}: provider.max_token: unknown setting; valid: provider.max_tokens, ")


def test_config_file_bad_value_names_the_key(tmp_path):
    run = tmp_path / "run.toml"
    run.write_text('[search]\nexploit_ratio = "most"\n')
    msg = load_error(file=run)
    assert msg.startswith(f"--config {run}: search.exploit_ratio = 'most': input should be a valid number")


def test_config_file_free_form_table(tmp_path):
    run = tmp_path / "run.toml"
    run.write_text('models = ["tuner"]\n[pricing.my-model]\ninput = 1.0\noutput = 2.0\n')
    cfg = load({"task_dir": "t"}, run)
    assert cfg.pricing == {"my-model": {"input": 1.0, "output": 2.0}} and cfg.models == ["tuner"]


def test_folders_in_a_config_file_are_relative_to_it(tmp_path, monkeypatch):
    """`data_dir = "data"` in configs/run.toml means configs/data, wherever solve runs from;
    on the command line a relative folder stays relative to the working folder."""
    (tmp_path / "configs").mkdir()
    run = tmp_path / "configs" / "run.toml"
    run.write_text('data_dir = "data"\ntask_dir = "../tasks/t"\n')
    monkeypatch.chdir(tmp_path)
    cfg = load({}, run)
    assert Path(cfg.data_dir) == tmp_path / "configs" / "data"
    assert Path(cfg.task_dir).resolve() == tmp_path / "tasks" / "t"
    assert load({"data_dir": "mine"}, run).data_dir == "mine"  # the option given wins, as given
    run.write_text(f'data_dir = "{tmp_path}/abs"\n')
    assert load({"task_dir": "t"}, run).data_dir == f"{tmp_path}/abs"


# -- the command line --------------------------------------------------------------------------
@pytest.mark.parametrize("args,words", [
    (["--set", "search.islnds=5"], ["--set search.islnds=5: unknown setting", "search.islands"]),
    (["--set", "budget=-1"], ["--set budget=-1", "greater than or equal to 0"]),
    (["--budget", "-1"], ["--budget -1", "greater than or equal to 0"]),
    (["--config", "missing.toml"], ["--config missing.toml: no such file"]),
    (["--set", "provider.max_tokens=lots"], ["--set provider.max_tokens=lots", "valid integer"]),
], ids=["unknown-key", "bad-set", "bad-flag", "no-config-file", "bad-nested"])
def test_bad_settings_exit_2_with_one_line_and_create_nothing(tmp_path, monkeypatch, args, words):
    monkeypatch.chdir(tmp_path)
    task = toy_task(tmp_path)
    result = CliRunner().invoke(app, ["solve", str(task), "--model", "tuner",
                                      "--sessions-dir", "sessions", *args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert all(w in lines[0] for w in words), lines[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "sessions").exists()


def test_settings_reach_session_toml_and_resume_reads_them(tmp_path):
    task = toy_task(tmp_path)
    run = tmp_path / "run.toml"
    run.write_text("seed = 5\n[search]\nislands = 7\nelite_size = 2\n[provider]\nmax_tokens = 1234\n")
    sessions = tmp_path / "sessions"
    run_cli("solve", str(task), "--model", "tuner", "--budget", "1", "--no-test",
            "--sessions-dir", str(sessions), "--config", str(run),
            "--set", "search.islands=2", "--set", "tuner.trials=1")
    saved = tomllib.loads((only_session(sessions) / "session.toml").read_text())["config"]
    assert saved["search"]["islands"] == 2  # --set beat the file
    assert saved["search"]["elite_size"] == 2 and saved["seed"] == 5  # the file
    assert saved["tuner"]["trials"] == 1 and saved["provider"]["max_tokens"] == 1234
    assert saved["budget"] == 1 and saved["test_at_end"] is False  # the options given
    assert saved["task_dir"] == str(task.resolve()) and saved["models"] == ["tuner"]
    assert RunConfig.model_validate(saved).search.islands == 2  # what resume reads back
