"""One config per state folder: a gateway or command with another config is refused, with one line.

Two configs beside each other (litellm_config.yaml and staging.yaml, both with `state_dir: run`)
share a state folder, so the second one's workers would ask the first one's owner, which has never
heard of its local models: every request for one would be a 503. Instead the second one is refused
before it starts anything, naming the folder, the config using it, and the setting that fixes it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from textwrap import dedent

import httpx
import pytest

from launchers.state_folder import StateFolderClaim, StateFolderInUse
from launchers.paths import RuntimePaths
from tests.support.configs import core_config
from tests.support.gateway import Gateway, fake_server_spec, free_port
from tests.support.waiting import wait_until

EXIT_CONFIG_ERROR = 2


def _staging_config(folder: Path) -> Path:
    """staging.yaml beside the folder's litellm_config.yaml: a local model of its own, the same state folder."""
    port = free_port()
    (folder / "models" / "plain-local.yaml").write_text(fake_server_spec(port, "fake-plain", startup_timeout_s=30, idle_ttl_s=0))
    path = folder / "staging.yaml"
    path.write_text(dedent(f"""
        model_list:
          - model_name: plain-local
            litellm_params: {{model: hosted_vllm/fake-plain, api_base: "http://127.0.0.1:{port}/v1", api_key: none}}
            model_info: {{launcher: models/plain-local.yaml}}
        llm_router: {{state_dir: run, log_dir: logs}}
    """))
    return path


def _serve_until_it_exits_or_answers(config: Path) -> subprocess.CompletedProcess[str]:
    """`llm-router serve --config config`, until it exits, or until it answers (then it is stopped)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "llm_router.cli", "serve", "--config", str(config), "--port", str(port), "--workers", "1"],
                            cwd=config.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_until(lambda: proc.poll() is not None or _answers(port), 90, "the gateway to exit or answer")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health/liveliness", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llm_router.cli", *args, "--config", str(config)],
                          capture_output=True, text=True, timeout=120)


def _assert_refused(done: subprocess.CompletedProcess[str], state_dir: Path, theirs: Path) -> None:
    """Exit status 2 and one line naming the state folder, the config using it, and the fix."""
    assert done.returncode == EXIT_CONFIG_ERROR, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"state folder {state_dir} " in lines[0]
    assert str(theirs) in lines[0]
    assert "llm_router.state_dir" in lines[0] and "`state_dir: run-staging` under llm_router:" in lines[0]


@pytest.mark.slow
def test_a_gateway_with_another_config_on_a_state_folder_in_use_is_refused_at_start_up(tmp_path, cloud):
    config = core_config(tmp_path, cloud.url)
    staging = _staging_config(tmp_path)
    with Gateway(config):
        refused = _serve_until_it_exits_or_answers(staging)
    _assert_refused(refused, tmp_path / "run", config)


@pytest.mark.slow
@pytest.mark.parametrize("command", [("status",), ("start", "plain-local"), ("stop", "--all"), ("reload",), ("usage",)], ids=" ".join)
def test_a_command_with_another_config_on_a_state_folder_in_use_is_refused(tmp_path, cloud, command):
    config = core_config(tmp_path, cloud.url)
    staging = _staging_config(tmp_path)
    with Gateway(config):
        refused = _cli(staging, *command)
    _assert_refused(refused, tmp_path / "run", config)


# ---- the claim itself, in one process (flock treats each open of the file as its own holder) ----


def test_claims_for_the_same_config_share_the_state_folder(tmp_path):
    paths = RuntimePaths(tmp_path / "run", tmp_path / "logs")
    with StateFolderClaim(paths, tmp_path / "a.yaml"), StateFolderClaim(paths, tmp_path / "a.yaml"):
        pass


def test_a_claim_for_another_config_is_refused_while_the_folder_is_held(tmp_path):
    paths = RuntimePaths(tmp_path / "run", tmp_path / "logs")
    first = StateFolderClaim(paths, tmp_path / "a.yaml")
    second = StateFolderClaim(paths, tmp_path / "a.yaml")
    first.close()  # the folder stays in use while any holder of its config remains
    with second, pytest.raises(StateFolderInUse, match=f"in use by llm-router with another config, {tmp_path / 'a.yaml'}"):
        StateFolderClaim(paths, tmp_path / "b.yaml")


def test_once_its_last_holder_is_gone_a_state_folder_takes_another_config(tmp_path):
    paths = RuntimePaths(tmp_path / "run", tmp_path / "logs")
    StateFolderClaim(paths, tmp_path / "a.yaml").close()
    with StateFolderClaim(paths, tmp_path / "b.yaml"), pytest.raises(StateFolderInUse, match="another config, .*b.yaml"):
        StateFolderClaim(paths, tmp_path / "a.yaml")
