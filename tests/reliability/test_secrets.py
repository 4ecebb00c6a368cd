"""Sentinel secrets never appear in logs, error bodies, health, explain or `llm-router status` output."""

from __future__ import annotations

import subprocess
import sys

import openai

from tests.fakes.cloud import FakeCloud
from tests.support.configs import core_config
from tests.support.gateway import Gateway

SENTINELS = {
    "LLM_ROUTER_MASTER_KEY": "sk-master-SENTINEL-7f3a9c-secret",
    "OPENAI_API_KEY": "sk-proj-SENTINEL-openai-5b2e81",
    "ANTHROPIC_API_KEY": "sk-ant-SENTINEL-anthropic-c4d9e0",
}


def test_no_sentinel_secret_leaks_anywhere(tmp_path):
    outputs: list[str] = []
    with FakeCloud() as cloud:
        config = core_config(tmp_path, cloud.url, keys_file=True)
        team_key = subprocess.run([sys.executable, "-m", "llm_router.cli", "keys", "add", "eve", "--team", "t", "--models", "gpt-4o",
                                   "--config", str(config)], capture_output=True, text=True, check=True).stdout.strip()
        secrets = [*SENTINELS.values(), team_key]
        with Gateway(config, dict(SENTINELS)) as gw:
            master = SENTINELS["LLM_ROUTER_MASTER_KEY"]
            admin = gw.client(api_key=master)
            outputs.append(admin.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}]).model_dump_json())
            outputs.append(admin.chat.completions.create(model="claude-sonnet", messages=[{"role": "user", "content": "hi"}]).model_dump_json())
            for model in ("anthropic-500", "dead-end", "no-key", "local-text"):
                try:
                    outputs.append(str(admin.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])))
                except openai.APIStatusError as exc:
                    outputs.append(exc.response.text)
            for key in ("wrong-" + master, team_key + "x", team_key):
                for model in ("gpt-4o", "claude-sonnet", "auto"):
                    try:
                        gw.client(api_key=key).chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
                    except openai.APIStatusError as exc:
                        outputs.append(exc.response.text)
            outputs.append(gw.get("/v1/health").text)
            outputs.append(gw.get("/v1/router/servers", key=master).text)
            outputs.append(gw.post("/v1/router/explain", {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}, key=master).text)
            outputs.append(gw.post("/v1/chat/completions", content=b"{bad json", key=master).text)
            status = subprocess.run([sys.executable, "-m", "llm_router.cli", "status", "--json", "--config", str(config)],
                                    capture_output=True, text=True, env={**SENTINELS, "PATH": "/usr/bin:/bin"})
            assert status.returncode == 0, status.stderr
            outputs += [status.stdout, status.stderr]
        outputs.append(gw.log_text())
        for log in (tmp_path / "logs").glob("*.log"):
            outputs.append(log.read_text(errors="replace"))
        outputs.append((tmp_path / "keys.yaml").read_text())
    leaks = [(secret[:12] + "...", i) for i, text in enumerate(outputs) for secret in secrets if secret in text]
    print(f"\nsecrets: checked {len(outputs)} outputs for {len(secrets)} sentinels: {len(leaks)} leaks")
    assert not leaks
    assert len(outputs) > 20
