"""Config and launch specs are validated once, at load, with errors naming file, key and fix."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from router_config.spec import load_spec
from router_config.gateway_config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[1]


def _check(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llm_router.cli", "check", "--config", str(config)],
                          capture_output=True, text=True, timeout=60)


def test_the_shipped_config_passes_check():
    done = _check(REPO / "litellm_config.yaml")
    assert done.returncode == 0, done.stderr
    assert "OK" in done.stdout


def test_shipped_text_spec_becomes_the_original_vllm_command_line():
    spec = load_spec(REPO / "models" / "qwen3-14b.yaml")
    assert spec.argv() == [
        "vllm", "serve", "unsloth/Qwen3-14B-unsloth-bnb-4bit",
        "--host", "127.0.0.1", "--port", "8001", "--served-model-name", "Qwen3-14B-unsloth-bnb-4bit",
        "--max-model-len", "27648", "--gpu-memory-utilization", "0.75",
        "--quantization", "bitsandbytes", "--load-format", "bitsandbytes", "--max-num-seqs", "1",
        "--enforce-eager", "--enable-auto-tool-choice", "--tool-call-parser", "hermes",
        "--override-generation-config", '{"temperature":0.6,"top_p":0.95,"top_k":20,"repetition_penalty":1.1,"max_new_tokens":4096}',
        "--reasoning-parser", "qwen3",
    ]
    assert spec.system_prompt
    env = spec.environment()
    assert env["HF_HUB_OFFLINE"] == "1" and env["VLLM_HOST_IP"] == "127.0.0.1"
    assert env["PYTORCH_CUDA_ALLOC_CONF"] == "expandable_segments:True"


def test_shipped_vision_spec_becomes_its_vllm_command_line():
    spec = load_spec(REPO / "models" / "qwen2.5-vl-7b.yaml")
    assert spec.argv() == [
        "vllm", "serve", "unsloth/Qwen2.5-VL-7B-Instruct-unsloth-bnb-4bit",
        "--host", "127.0.0.1", "--port", "8002", "--served-model-name", "Qwen2.5-VL-7B-Instruct-unsloth-bnb-4bit",
        "--max-model-len", "16384", "--gpu-memory-utilization", "0.75",
        "--quantization", "bitsandbytes", "--load-format", "bitsandbytes", "--max-num-seqs", "1",
        "--enforce-eager", "--limit-mm-per-prompt", '{"image":4}',
    ]


def test_command_spec_fills_placeholders_and_never_uses_a_shell(tmp_path):
    path = tmp_path / "odd.yaml"
    path.write_text("engine: command\nserved_model_name: m\nport: 9123\n"
                    "command: [/bin/echo, '--port={port}', '$(touch /tmp/pwned); rm -rf ~', '{host}']\n")
    argv = load_spec(path).argv()
    assert argv == ["/bin/echo", "--port=9123", "$(touch /tmp/pwned); rm -rf ~", "127.0.0.1"]


def _spec_problems(tmp_path: Path, text: str) -> list:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_spec(path)
    return info.value.problems


def test_a_spec_missing_a_required_key_names_the_file_key_and_fix(tmp_path):
    problems = _spec_problems(tmp_path, "engine: vllm\nmodel: ./weights\nport: 8001\n")
    assert [(p.key, p.fix) for p in problems] == [("served_model_name", "add it; it has no default")]
    assert problems[0].file.endswith("bad.yaml")


def test_a_spec_reports_every_problem_at_once(tmp_path):
    problems = _spec_problems(tmp_path, "engine: vllm\nmodel: x\nserved_model_name: m\nport: 99999\nidle_ttl: 5\ncold_start: later\n")
    keys = {p.key for p in problems}
    assert keys == {"port", "idle_ttl", "cold_start"}
    assert next(p for p in problems if p.key == "idle_ttl").fix == "remove it (unknown key)"


def test_a_vllm_spec_without_a_model_is_rejected(tmp_path):
    problems = _spec_problems(tmp_path, "engine: vllm\nserved_model_name: m\nport: 8001\n")
    assert "needs `model`" in problems[0].problem


def _broken_config(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "models", tmp_path / "models", ignore=shutil.ignore_patterns("*/"))
    text = (REPO / "litellm_config.yaml").read_text()
    text = text.replace("- qwen2.5-vl-7b: [gpt-4o]", "- qwen2.5-vl-7b: [gpt-5-turbo]")
    text = text.replace("api_base: http://127.0.0.1:8002/v1", "api_base: http://127.0.0.1:8009/v1")
    text = text.replace("default: [qwen3-14b, smollm2-135m-cpu]", "default: [qwen-huge, smollm2-135m-cpu]")
    (tmp_path / "models" / "qwen3-14b.yaml").write_text((REPO / "models" / "qwen3-14b.yaml").read_text().replace("port: 8001", "port: 8002"))
    path = tmp_path / "litellm_config.yaml"
    path.write_text(text)
    return path


def test_check_fails_with_exit_2_and_lists_every_problem(tmp_path):
    done = _check(_broken_config(tmp_path))
    assert done.returncode == 2
    err = done.stderr
    assert "router_settings.fallbacks.qwen2.5-vl-7b" in err and "'gpt-5-turbo'" in err
    assert "routing.default" in err and "'qwen-huge'" in err
    assert "does not use port 8002" in err and "Fix: set api_base to http://127.0.0.1:8002/v1" in err
    assert "port 8002 is also used by" in err


def test_serve_refuses_to_start_on_a_broken_config(tmp_path):
    done = subprocess.run([sys.executable, "-m", "llm_router.cli", "serve", "--config", str(_broken_config(tmp_path)), "--port", "1"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "problem(s)" in done.stderr


def test_a_missing_launch_spec_file_is_named(tmp_path):
    shutil.copy(REPO / "litellm_config.yaml", tmp_path / "litellm_config.yaml")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "litellm_config.yaml")
    missing = [p for p in info.value.problems if p.problem == "file not found"]
    assert {Path(p.file).name for p in missing} == {"qwen3-14b.yaml", "qwen2.5-vl-7b.yaml", "smollm2-135m-cpu.yaml"}


def test_unknown_keys_in_our_sections_are_rejected(tmp_path):
    shutil.copytree(REPO / "models", tmp_path / "models", ignore=shutil.ignore_patterns("*/"))
    text = (REPO / "litellm_config.yaml").read_text().replace("routing:\n", "routing:\n  visoin: [gpt-4o]\n")
    (tmp_path / "litellm_config.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "litellm_config.yaml")
    assert any(p.key == "routing.visoin" and p.fix == "remove it (unknown key)" for p in info.value.problems)


def test_the_shipped_fallback_chains_reach_claude_then_openai():
    config = load_config(REPO / "litellm_config.yaml")
    assert config.fallback_chain("qwen3-14b") == ("claude-sonnet", "gpt-4o", "smollm2-135m-cpu")
    assert config.fallback_chain("qwen2.5-vl-7b") == ("gpt-4o", "claude-sonnet")
    assert config.resolve("claude-3-5-sonnet-20241022") == "claude-sonnet"
    assert {config.resolve(n) for n in ("gpt-4", "gpt-4-turbo", "gpt-3.5-turbo")} <= {"gpt-4o", "gpt-4o-mini"}


def test_check_accepts_a_plain_litellm_config_and_says_what_its_missing_sections_mean(tmp_path):
    (tmp_path / "litellm_config.yaml").write_text("model_list:\n  - {model_name: gpt-4o, litellm_params: {model: openai/gpt-4o}}\n")
    done = _check(tmp_path / "litellm_config.yaml")
    assert done.returncode == 0, done.stderr
    assert "no `routing:` section: requests must name a model" in done.stdout
    assert "no `llm_router:` section: defaults apply" in done.stdout


def test_a_custom_auth_of_the_admins_own_is_refused_at_check(tmp_path):
    (tmp_path / "litellm_config.yaml").write_text("model_list:\n  - {model_name: m, litellm_params: {model: openai/gpt-4o}}\n"
                                                   "general_settings: {custom_auth: mine.auth}\n")
    with pytest.raises(ConfigError) as failed:
        load_config(tmp_path / "litellm_config.yaml")
    assert failed.value.problems[0].key == "general_settings.custom_auth"


def test_litellms_prometheus_callback_writes_only_the_chosen_metrics_unless_the_admin_chooses():
    from router_config.litellm_settings import LITELLM_METRICS, litellm_config

    config = load_config(REPO / "litellm_config.yaml")
    chosen = litellm_config(config)["litellm_settings"]["prometheus_metrics_config"]
    assert chosen == [{"group": "llm-router", "metrics": list(LITELLM_METRICS)}]
    raw = {**config.raw, "litellm_settings": {"prometheus_metrics_config": []}}
    assert litellm_config(dataclasses.replace(config, raw=raw))["litellm_settings"]["prometheus_metrics_config"] == []


def test_litellm_gets_our_plugins_once_and_every_alias_we_resolve(tmp_path):
    from router_config.litellm_settings import HOOKS, litellm_config

    config = load_config(REPO / "litellm_config.yaml")
    raw = {**config.raw, "litellm_settings": {"callbacks": ["router_plugins.hooks.router_hooks", "prometheus"]}}
    derived = litellm_config(dataclasses.replace(config, raw=raw))
    assert derived["litellm_settings"]["callbacks"] == [HOOKS, "prometheus"]
    assert derived["general_settings"]["custom_auth"] == "llm_router.app.custom_auth"
    aliases = derived["router_settings"]["model_group_alias"]
    assert aliases["Qwen3-14B-unsloth-bnb-4bit"] == "qwen3-14b" and aliases["gpt-4"] == "gpt-4o"
    assert "routing" not in derived and all(entry["model_info"]["id"] for entry in derived["model_list"])


def test_the_gateway_runs_litellm_with_rare_garbage_collections():
    """Python 3.11's collector can free a context's variables under a ContextVar.set (CPython gh-148891); a bench
    gateway died of it twice. The gateway's environment asks LiteLLM, which sets the thresholds at import, for rarer ones."""
    probe = ("import gc, os; from router_config import environment; environment.apply_defaults(); "
             "import litellm.proxy.common_utils.debug_utils; print(gc.get_threshold())")
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_GC_THRESHOLD"}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env, cwd=REPO)
    assert done.stdout.strip().splitlines()[-1] == "(20000, 20, 20)", done.stderr[-2000:]
