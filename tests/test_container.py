"""The gateway's container image and the compose stack (README, Run it in a container), built and run
with podman and podman-compose against the fake cloud on the host.

The fast tests at the top read the files: the Containerfile's base, the configs baked into the
image and mounted by compose, and the GPU host on paper. The slow ones build the image once for the
session, from the files a clean clone holds, on a Debian stand-in for debian:bookworm-slim (no image
registry is reachable here; tests/support/podman.py), then run it: one gateway with `podman run`,
then Redis and two replicas with podman-compose. Everything they create is removed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml

from router_config.gateway_config import load_config
from tests.fakes.cloud import FakeCloud
from tests.support.gateway import REPO, free_port
from tests.support.podman import DEBIAN, REDIS, Podman
from tests.support.waiting import wait_until

MASTER = "sk-master-SENTINEL-container-0001"
OPENAI_KEY = "sk-openai-SENTINEL-container-0001"
ANTHROPIC_KEY = "sk-ant-SENTINEL-container-0001"
REDIS_PASSWORD = "redis-pw-SENTINEL-container-0001"
SECRETS = (MASTER, OPENAI_KEY, ANTHROPIC_KEY, REDIS_PASSWORD)
RUN = uuid.uuid4().hex[:8]
"""Names this session's images, containers, volumes and compose project."""
STOP_TIMEOUT_S = 10
"""podman's and Docker's default for `stop`: SIGTERM, then SIGKILL after this long."""
SHUTDOWN_S = 3
"""What a gateway needs after its grace: LiteLLM's own shutdown, then the owner's (about 2 s measured under load)."""
START_TIMEOUT_S = 300
HI = [{"role": "user", "content": "hi"}]


def _compose_file(name: str) -> dict:
    return yaml.safe_load((REPO / name).read_text())


def _containerfile_bases(path: Path) -> list[str]:
    return [line.split()[1] for line in path.read_text().splitlines() if line.startswith("FROM ")]


def _stages(path: Path) -> list[str]:
    return [line.split()[3] for line in path.read_text().splitlines() if line.startswith("FROM ") and " AS " in line]


def _as_mounted(service: dict, into: Path) -> Path:
    """The service's bind mounts from the repository, placed under `into` where the container sees them (files
    copied, folders linked); the path of the config it reads there."""
    for volume in service["volumes"]:
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            dest = into / target.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            if (REPO / source).is_dir():
                dest.symlink_to(REPO / source)
            else:
                shutil.copy(REPO / source, dest)  # a copy: the loader resolves a linked config to where it lives
    return into / "etc/llm-router/litellm_config.yaml"


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    unit = next(u for u in ("ms", "s", "m", "h") if duration.endswith(u))
    return float(duration.removesuffix(unit)) * units[unit]


# ---- the files, read ---------------------------------------------------------------------------


def test_the_containerfile_builds_on_debian_bookworm_slim_alone():
    """Plain FROM lines naming one image (tests build its stand-in), or a stage of its own."""
    containerfile = REPO / "Containerfile"
    stages = _stages(containerfile)
    assert set(_containerfile_bases(containerfile)) - set(stages) == {"debian:bookworm-slim"}


def test_the_image_config_has_cloud_groups_and_gpu_hosts_and_no_local_models():
    config = load_config(REPO / "deploy/image/litellm_config.yaml")
    assert config.local_specs() == {}, "a local model would make `auto` install vLLM inside the gateway's container"
    assert {d.provider for d in config.deployments if d.remote is None} == {"openai", "anthropic"}
    assert {d.remote.host for d in config.deployments if d.remote is not None} == {"gpu-1:8000"}
    assert config.routing is not None
    assert config.settings.shutdown_grace_s + SHUTDOWN_S <= STOP_TIMEOUT_S, "the gateway must be gone before podman's SIGKILL"
    for path in (config.settings.state_dir, config.settings.log_dir, config.settings.keys_file):
        assert path is not None and path.startswith(("/var/lib/llm-router/", "/etc/llm-router/keys/"))


def test_compose_runs_two_replicas_with_their_own_state_sharing_redis_and_keys(tmp_path, monkeypatch):
    services = _compose_file("compose.yaml")["services"]
    gateways = {name: s for name, s in services.items() if name.startswith("gateway-")}
    assert len(gateways) == 2 and "redis" in services
    states = {v.split(":")[0] for s in gateways.values() for v in s["volumes"] if v.endswith(":/var/lib/llm-router")}
    keys = {v.split(":")[0] for s in gateways.values() for v in s["volumes"] if v.endswith(":/etc/llm-router/keys")}
    assert len(states) == 2 and len(keys) == 1
    assert len({p for s in gateways.values() for p in s["ports"]}) == 2
    monkeypatch.delenv("LLM_ROUTER_REDIS_PASSWORD", raising=False)
    monkeypatch.setenv("LLM_ROUTER_REDIS_PASSWORD_FILE", str(tmp_path / "redis_password"))
    (tmp_path / "redis_password").write_text(REDIS_PASSWORD)
    for name, gateway in gateways.items():
        config = load_config(_as_mounted(gateway, tmp_path / name))
        assert config.settings.redis is not None and config.settings.redis.host in services
        assert _seconds(gateway["stop_grace_period"]) >= config.settings.shutdown_grace_s + SHUTDOWN_S, f"{name}: SIGKILL before it is done"


def test_the_gpu_host_on_paper_is_the_host_the_image_config_names(tmp_path):
    """compose.gpu.yaml runs `gpu-1` from vLLM's image with the repository's launch specs, and its config loads."""
    gpu = _compose_file("compose.gpu.yaml")["services"]
    named = {d.remote.host.split(":")[0] for d in load_config(REPO / "deploy/image/litellm_config.yaml").deployments if d.remote}
    assert named <= set(gpu)
    for name in named:
        assert _containerfile_bases(REPO / gpu[name]["build"]["dockerfile"])[0].startswith("docker.io/vllm/vllm-openai:")
        config = load_config(_as_mounted(gpu[name], tmp_path / name))
        assert set(config.local_specs()) == set(config.groups)
        assert _seconds(gpu[name]["stop_grace_period"]) >= config.settings.shutdown_grace_s + SHUTDOWN_S


# ---- the image, built from a clean clone -------------------------------------------------------


@pytest.fixture(scope="session")
def podman(tmp_path_factory) -> Podman:
    return Podman(tmp_path_factory.mktemp("podman"))


@pytest.fixture(scope="session")
def debian(podman) -> Iterator[str]:
    with podman.stand_in(DEBIAN, podman.import_debian) as name:
        yield name


@pytest.fixture(scope="session")
def image(podman, debian, tmp_path_factory) -> Iterator[str]:
    """llm-router's image, built from what a clean clone holds: the files git tracks, and the new ones it
    doesn't ignore (nothing from .venv, models/ or a run)."""
    clone = tmp_path_factory.mktemp("clone")
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO, check=True,
                            capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, clone / name)
    tag = f"localhost/llm-router-test:{RUN}"
    podman.build(clone, tag)
    try:
        yield tag
    finally:
        podman("rmi", "-f", tag, check=False)


@pytest.fixture(scope="session")
def redis_image(podman, debian) -> Iterator[str]:
    with podman.stand_in(REDIS, podman.build_redis) as name:
        yield name


@pytest.fixture(scope="session")
def cloud() -> Iterator[FakeCloud]:
    """The fake cloud on every interface: containers reach it as host.containers.internal."""
    with FakeCloud(host="0.0.0.0") as fake:
        yield fake


@pytest.mark.slow
def test_the_image_runs_as_its_own_user_with_no_build_tools_or_dev_dependencies(podman, image):
    (config,) = json.loads(podman("image", "inspect", image).stdout)
    assert config["Config"]["User"] == "llm-router"
    assert config["Config"]["Cmd"] == ["llm-router", "serve", "--host", "0.0.0.0", "--port", "8000"]
    assert not config["Config"].get("Entrypoint")
    found = podman("run", "--rm", "--network", "none", image, "sh", "-c",
                   "id -u; for tool in uv pip pip3 gcc cc make; do command -v $tool; done; "
                   "python3 -c 'import pytest' 2>/dev/null && echo pytest", check=False)
    assert found.stdout.split() == ["10001"], found.stdout


@pytest.mark.slow
def test_any_llm_router_command_runs_and_the_baked_in_config_passes_check(podman, image):
    checked = podman("run", "--rm", "--network", "none", image, "llm-router", "check")
    assert checked.stdout.startswith("/etc/llm-router/litellm_config.yaml: OK (6 model groups, 0 local launch specs)"), checked.stdout


@pytest.mark.slow
def test_the_default_command_refuses_to_bind_every_interface_without_a_master_key(podman, image):
    refused = podman("run", "--rm", "--network", "none", image, check=False)
    assert refused.returncode == 2
    assert "refusing to bind 0.0.0.0 without a master key" in refused.stderr


# ---- one gateway: podman run --------------------------------------------------------------------


@dataclass
class RunningGateway:
    podman: Podman
    image: str
    name: str
    port: int
    run_args: list[str]
    team_key: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RunningGateway:
        self.podman("run", "-d", "--name", self.name, "-p", f"127.0.0.1:{self.port}:8000", *self.run_args, self.image,
                    "llm-router", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "1")
        _wait_answering(self.podman, self.name, self.url)
        return self

    def exec(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return self.podman("exec", self.name, *argv)


def _wait_answering(podman: Podman, container: str, url: str) -> None:
    """Until the gateway in `container` answers; a container that exits meanwhile fails at once, with its log."""
    looked = [0.0]
    http = httpx.Client(timeout=2)  # one client: each new one loads the CA bundle, a CPU the gateway needs

    def answering() -> bool:
        try:
            if http.get(f"{url}/health/liveliness").status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        # Asking podman costs a process and a fraction of a CPU second, which the starting gateway needs too.
        if time.monotonic() - looked[0] >= 2:
            looked[0] = time.monotonic()
            state = podman("inspect", "--format", "{{.State.Status}}", container).stdout.strip()
            if state != "running":
                logs = podman("logs", container, check=False)
                raise AssertionError(f"{container} is {state}:\n{logs.stdout[-3000:]}\n{logs.stderr[-1000:]}")
        return False

    with http:
        wait_until(answering, START_TIMEOUT_S, f"{container} to answer")


def _chat(url: str, key: str, model: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", json={"model": model, "messages": HI},
                      headers={"authorization": f"Bearer {key}"}, timeout=60)


@pytest.fixture(scope="module")
def gateway(podman, image, cloud, tmp_path_factory) -> Iterator[RunningGateway]:
    """The image's own config, keys from files (the `_FILE` convention), a state volume and a keys volume,
    and a team key added with `podman exec ... llm-router keys add`."""
    secrets = tmp_path_factory.mktemp("secrets")
    secrets.chmod(0o755)
    for name, value in (("master_key", MASTER), ("openai_api_key", OPENAI_KEY), ("anthropic_api_key", ANTHROPIC_KEY)):
        (secrets / name).write_text(value + "\n")
        (secrets / name).chmod(0o644)
    volumes = [f"llm-router-test-{RUN}-state", f"llm-router-test-{RUN}-keys"]
    run_args = ["-v", f"{secrets}:/run/secrets:ro",
                "-e", "LLM_ROUTER_MASTER_KEY_FILE=/run/secrets/master_key",
                "-e", "OPENAI_API_KEY_FILE=/run/secrets/openai_api_key",
                "-e", "ANTHROPIC_API_KEY_FILE=/run/secrets/anthropic_api_key",
                "-e", f"OPENAI_BASE_URL=http://host.containers.internal:{cloud.port}/v1",
                "-e", f"ANTHROPIC_BASE_URL=http://host.containers.internal:{cloud.port}",
                "-v", f"{volumes[0]}:/var/lib/llm-router", "-v", f"{volumes[1]}:/etc/llm-router/keys"]
    gw = RunningGateway(podman, image, f"llm-router-test-{RUN}", free_port(), run_args)
    try:
        gw.start()
        gw.team_key = gw.exec("llm-router", "keys", "add", "alice", "--team", "research").stdout.strip()
        yield gw
    finally:
        podman("rm", "-f", "-t", "0", gw.name, check=False)
        podman("volume", "rm", "-f", *volumes, check=False)


@pytest.mark.slow
def test_a_team_key_added_with_exec_gets_auto_and_an_explicit_name_answered(gateway, cloud):
    auto = _chat(gateway.url, gateway.team_key, "auto")
    assert auto.status_code == 200, auto.text
    assert (auto.headers["x-llm-router-model"], auto.headers["x-llm-router-reason"]) == ("gpt-4o-mini", "default")
    explicit = _chat(gateway.url, gateway.team_key, "claude-sonnet")
    assert explicit.status_code == 200, explicit.text
    assert explicit.headers["x-llm-router-model"] == "claude-sonnet"
    # The provider keys the fake cloud saw are the files' contents.
    assert {r.api_key for r in cloud.requests[-2:]} == {OPENAI_KEY, ANTHROPIC_KEY}
    assert _chat(gateway.url, "sk-llmr-not-a-key", "auto").status_code == 401


@pytest.mark.slow
def test_the_master_key_comes_from_its_file(gateway):
    def servers(key: str) -> int:
        return httpx.get(f"{gateway.url}/v1/router/servers", headers={"authorization": f"Bearer {key}"}, timeout=30).status_code

    assert (servers(MASTER), servers(gateway.team_key)) == (200, 403)


@pytest.mark.slow
def test_the_gateway_runs_as_the_non_root_user_that_owns_its_state(gateway):
    status = gateway.exec("cat", "/proc/1/status").stdout
    assert "\nUid:\t10001\t10001\t10001\t10001\n" in status
    owners = gateway.exec("stat", "-c", "%U %n", "/var/lib/llm-router/state", "/var/lib/llm-router/logs/router.log",
                          "/etc/llm-router/keys/keys.yaml").stdout.split()
    assert owners[::2] == ["llm-router"] * 3


@pytest.mark.slow
def test_logs_reach_stdout_and_router_log_without_a_secret(podman, gateway):
    logs = podman("logs", gateway.name)
    started = "llm-router: master key set, team keys from /etc/llm-router/keys/keys.yaml"
    assert started in logs.stdout
    assert started in gateway.exec("cat", "/var/lib/llm-router/logs/router.log").stdout
    assert not [s for s in SECRETS if s in logs.stdout + logs.stderr]


@pytest.mark.slow
def test_the_healthcheck_passes(podman, gateway):
    # podman runs HEALTHCHECK from systemd timers; with cgroupfs nothing does, so it is run here.
    podman("healthcheck", "run", gateway.name)
    assert podman("inspect", "--format", "{{.State.Health.Status}}", gateway.name).stdout.strip() == "healthy"


@pytest.mark.slow
def test_podman_stop_lets_a_request_in_flight_finish_and_exits_0_before_the_stop_timeout(podman, gateway, cloud):
    cloud.set_mode("gpt-4o", "slow-3")
    answers: list[httpx.Response] = []
    sent = len(cloud.requests_for("gpt-4o"))
    asking = threading.Thread(target=lambda: answers.append(_chat(gateway.url, gateway.team_key, "gpt-4o")))
    asking.start()
    try:
        wait_until(lambda: len(cloud.requests_for("gpt-4o")) > sent, 30, "the request to reach the fake cloud")
        started = time.monotonic()
        podman("stop", "-t", str(STOP_TIMEOUT_S), gateway.name, timeout=60)
        took = time.monotonic() - started
        asking.join(30)
    finally:
        cloud.clear_modes()
    assert [a.status_code for a in answers] == [200]
    assert podman("inspect", "--format", "{{.State.ExitCode}}", gateway.name).stdout.strip() == "0"
    assert took < STOP_TIMEOUT_S, f"stopped after {took:.1f}s: podman's SIGKILL, not the gateway's own shutdown"


@pytest.mark.slow
def test_a_new_container_on_the_same_volumes_keeps_the_keys_and_the_state(podman, gateway):
    podman("rm", "-f", "-t", str(STOP_TIMEOUT_S), gateway.name)
    gateway.start()
    assert _chat(gateway.url, gateway.team_key, "auto").status_code == 200
    log = gateway.exec("cat", "/var/lib/llm-router/logs/router.log").stdout
    assert log.count("llm-router: master key set") == 2, "the first container's log lines are gone"


# ---- Redis and two replicas: compose.yaml --------------------------------------------------------


@dataclass
class Stack:
    podman: Podman
    folder: Path
    project: str
    env: dict[str, str]
    ports: tuple[int, int]
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))
    """For what is asked again and again: a new client each time costs a CPU the gateways need."""

    def url(self, replica: int) -> str:
        return f"http://127.0.0.1:{self.ports[replica - 1]}"

    def container(self, service: str) -> str:
        return f"{self.project}_{service}_1"  # podman-compose 1.0.3's names

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.podman.compose(self.folder, self.project, *args, env=self.env, check=check)

    def add_key(self, name: str, *args: str) -> str:
        return self.podman("exec", self.container("gateway-1"), "llm-router", "keys", "add", name, "--team", "t", *args).stdout.strip()

    def health(self, replica: int) -> dict:
        return self.http.get(f"{self.url(replica)}/v1/health", headers={"authorization": f"Bearer {MASTER}"}).json()

    def knows(self, replica: int, key: str) -> bool:
        return self.http.get(f"{self.url(replica)}/v1/models", headers={"authorization": f"Bearer {key}"}).status_code == 200

    def labelled(self, kind: str) -> set[str]:
        """The project's containers, networks or volumes that exist now."""
        listing = {"container": ["ps", "-a", "--format", "{{.Names}}"], "network": ["network", "ls", "--format", "{{.Name}}"],
                   "volume": ["volume", "ls", "--format", "{{.Name}}"]}[kind]
        return set(self.podman(*listing, "--filter", f"label=io.podman.compose.project={self.project}").stdout.split())


@pytest.fixture(scope="module")
def stack(podman, image, redis_image, cloud, tmp_path_factory) -> Iterator[Stack]:
    """compose.yaml as a team runs it: its secrets as files, provider keys in gateway.env (pointed at the fake
    cloud, one worker a replica to keep CI short), the replicas on free ports."""
    folder = tmp_path_factory.mktemp("stack")
    shutil.copy(REPO / "compose.yaml", folder)
    shutil.copytree(REPO / "deploy", folder / "deploy")
    (folder / "secrets").mkdir()
    for name, value in (("master_key", MASTER), ("redis_password", REDIS_PASSWORD)):
        (folder / "secrets" / name).write_text(value)
        (folder / "secrets" / name).chmod(0o644)
    (folder / "gateway.env").write_text(
        f"OPENAI_API_KEY={OPENAI_KEY}\nANTHROPIC_API_KEY={ANTHROPIC_KEY}\nLLM_ROUTER_WORKERS=1\n"
        f"OPENAI_BASE_URL=http://host.containers.internal:{cloud.port}/v1\nANTHROPIC_BASE_URL=http://host.containers.internal:{cloud.port}\n")
    ports = (free_port(), free_port())
    env = {"LLM_ROUTER_IMAGE": image, "LLM_ROUTER_PORT_1": str(ports[0]), "LLM_ROUTER_PORT_2": str(ports[1])}
    s = Stack(podman, folder, f"llmrtest{RUN}", env, ports)
    try:
        s.compose("up", "-d")
        for replica in (1, 2):
            _wait_answering(podman, s.container(f"gateway-{replica}"), s.url(replica))
            wait_until(lambda: s.health(replica)["redis"] == "up", 60, f"replica {replica} to reach Redis")
        yield s
    finally:
        s.compose("down", "-v", "-t", "0", check=False)
        for leftover in s.labelled("network"):
            podman("network", "rm", "-f", leftover, check=False)
        for leftover in s.labelled("volume"):
            podman("volume", "rm", "-f", leftover, check=False)
        s.http.close()


@pytest.mark.slow
def test_both_replicas_answer_a_team_key_with_auto_and_an_explicit_name(stack):
    key = stack.add_key("both")
    for replica in (1, 2):
        auto, explicit = _chat(stack.url(replica), key, "auto"), _chat(stack.url(replica), key, "gpt-4o")
        assert (auto.status_code, explicit.status_code) == (200, 200), (auto.text, explicit.text)
        assert (auto.headers["x-llm-router-model"], explicit.headers["x-llm-router-model"]) == ("gpt-4o-mini", "gpt-4o")


@pytest.mark.slow
def test_a_team_keys_rpm_is_counted_once_across_both_replicas(stack):
    key = stack.add_key("counted", "--rpm", "4")
    wait_until(lambda: stack.knows(2, key), 10, "replica 2 to know the new key")
    statuses = [_chat(stack.url(1 + i % 2), key, "gpt-4o").status_code for i in range(8)]
    assert Counter(statuses) == {200: 4, 429: 4}, statuses


@pytest.mark.slow
def test_one_replica_killed_leaves_the_other_serving(podman, stack):
    key = stack.add_key("survivor")
    podman("kill", stack.container("gateway-1"))
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{stack.url(1)}/health/liveliness", timeout=5)
    assert [_chat(stack.url(2), key, "auto").status_code for _ in range(3)] == [200] * 3
    assert stack.health(2)["redis"] == "up"


@pytest.mark.slow
def test_down_leaves_only_the_volumes_compose_declares(stack):
    declared = {f"{stack.project}_{name}" for name in _compose_file("compose.yaml")["volumes"]}
    assert stack.labelled("volume") == declared
    stack.compose("down")
    assert stack.labelled("container") == set()
    assert stack.labelled("volume") == declared
    # podman-compose 1.0.3's `down` never removes the network its `up` made (docker compose's does): nothing
    # but that one may be left.
    assert stack.labelled("network") <= {f"{stack.project}_default"}
