"""Secrets from files: NAME_FILE names a file holding NAME's value, the `_FILE` convention of official
images (README, Run it in a container). The config's loader reads them once, for every variable that
holds a secret, and never echoes one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from textwrap import dedent

import pytest

from router_config.gateway_config import ConfigError, load_config

SECRET = "sk-SENTINEL-secret-file-0001"
SECRET_VARIABLES = ("LLM_ROUTER_MASTER_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GPU1_SERVICE_KEY", "LLM_ROUTER_TEST_REDIS_PASSWORD")


@pytest.fixture
def config(tmp_path, monkeypatch) -> Path:
    """Cloud groups, a GPU host's service key (os.environ/GPU1_SERVICE_KEY) and Redis's password_env; none of
    their variables set, so whatever the loader sets is undone after the test."""
    for name in SECRET_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)
    path = tmp_path / "litellm_config.yaml"
    path.write_text(dedent("""
        model_list:
          - model_name: gpt-4o
            litellm_params: {model: openai/gpt-4o}
          - model_name: claude-sonnet
            litellm_params: {model: anthropic/claude-sonnet-4-5}
          - model_name: qwen3-14b
            litellm_params: {model: openai/qwen3-14b, api_base: "http://gpu-1:8000/v1", api_key: os.environ/GPU1_SERVICE_KEY}
            model_info: {llm_router_remote: true}
        llm_router:
          redis: {host: redis, password_env: LLM_ROUTER_TEST_REDIS_PASSWORD}
    """))
    return path


def _secret_file(folder: Path, monkeypatch: pytest.MonkeyPatch, name: str, content: str) -> Path:
    path = folder / name.lower()
    path.write_text(content)
    monkeypatch.setenv(f"{name}_FILE", str(path))
    return path


@pytest.mark.parametrize("name", SECRET_VARIABLES)
def test_a_secret_variable_is_read_from_the_file_its_FILE_variable_names(config, tmp_path, monkeypatch, name):
    for other in SECRET_VARIABLES:  # Redis's password must be set for the config to load at all
        if other != name:
            monkeypatch.setenv(other, f"sk-set-directly-{other.lower()}")
    _secret_file(tmp_path, monkeypatch, name, SECRET + "\n")
    loaded = load_config(config)
    assert os.environ[name] == SECRET  # the file's trailing newline is not part of the key
    assert f"{name}_FILE" not in os.environ  # workers and a reload see the variable alone
    assert SECRET in loaded.secrets()  # so it is masked in every log line


def test_a_redis_password_from_a_file_satisfies_the_check_that_it_is_set(config, tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="LLM_ROUTER_TEST_REDIS_PASSWORD, which is not set"):
        load_config(config)
    _secret_file(tmp_path, monkeypatch, "LLM_ROUTER_TEST_REDIS_PASSWORD", SECRET)
    assert load_config(config).settings.redis is not None


@pytest.mark.parametrize("content, problem", [(None, "which can't be read (No such file or directory)"), ("\n", "which is empty")])
def test_a_secret_file_that_cant_be_used_is_a_problem_naming_the_variable_and_the_path(config, tmp_path, monkeypatch, content, problem):
    monkeypatch.setenv("LLM_ROUTER_TEST_REDIS_PASSWORD", "set")
    path = tmp_path / "openai_api_key"
    if content is not None:
        path.write_text(content)
    monkeypatch.setenv("OPENAI_API_KEY_FILE", str(path))
    with pytest.raises(ConfigError) as refused:
        load_config(config)
    (found,) = refused.value.problems
    assert found.key == "OPENAI_API_KEY_FILE (environment)"
    assert found.problem == f"names {path}, {problem}"


def test_a_variable_set_both_directly_and_from_a_file_is_refused_without_echoing_either(config, tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_ROUTER_TEST_REDIS_PASSWORD", "set")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-SENTINEL-direct-0001")
    _secret_file(tmp_path, monkeypatch, "ANTHROPIC_API_KEY", SECRET)
    with pytest.raises(ConfigError) as refused:
        load_config(config)
    assert [p.key for p in refused.value.problems] == ["ANTHROPIC_API_KEY_FILE (environment)"]
    assert "set only one of them" in str(refused.value)
    assert "SENTINEL" not in str(refused.value)


def test_a_FILE_variable_for_a_variable_that_holds_no_secret_is_left_alone(config, tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_ROUTER_TEST_REDIS_PASSWORD", "set")
    monkeypatch.delenv("LLM_ROUTER_TEST_UNRELATED", raising=False)
    _secret_file(tmp_path, monkeypatch, "LLM_ROUTER_TEST_UNRELATED", SECRET)
    load_config(config)
    assert "LLM_ROUTER_TEST_UNRELATED" not in os.environ and "LLM_ROUTER_TEST_UNRELATED_FILE" in os.environ


def test_check_names_a_missing_secret_file_and_exits_2(config, tmp_path):
    env = {**os.environ, "LLM_ROUTER_TEST_REDIS_PASSWORD": "set", "LLM_ROUTER_MASTER_KEY_FILE": str(tmp_path / "absent")}
    done = subprocess.run([sys.executable, "-m", "llm_router.cli", "check", "--config", str(config)], capture_output=True,
                          text=True, timeout=60, env=env)
    assert done.returncode == 2
    assert f"LLM_ROUTER_MASTER_KEY_FILE (environment): names {tmp_path / 'absent'}, which can't be read" in done.stderr
