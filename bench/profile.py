"""Where a request's milliseconds go inside `llm-router serve`: py-spy over sequential requests.

py-spy samples the gateway process (one worker) from outside, only while a thread holds the GIL,
while the bench sends `requests` sequential chat completions through one path. Each sample's stack
is put in one category: first by the work it is part of, wherever that sits in the stack (a cost
calculation inside LiteLLM's success logging is cost calculation), else by the deepest layer it
reached (a sample in FastAPI's routing under our door is FastAPI's). A category's share of the
samples times the CPU the gateway spent per request gives its milliseconds per request.

    python -m bench.profile [--requests N] [--path c|d]     # also a section of `python -m bench`
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from bench.paths import RequestPath
from bench.processes import REPO, Managed

PY_SPY = ("uvx", "--from", "py-spy==0.4.3", "py-spy")
SAMPLE_RATE_HZ = 250
TOP_FUNCTIONS = 15
WARM_UP = 300
"""Requests before sampling starts: first-use imports and loads (a tokenizer, MCP's registry) stay out."""

_Match = Callable[[str], bool]


def _any(*needles: str) -> _Match:
    return lambda frame: any(n in frame for n in needles)


# The work a sample is part of, wherever it sits in the stack, most specific first.
WORK: tuple[tuple[str, _Match], ...] = (
    ("llm-router: keys, routing, launcher, hooks", _any("/router_plugins/", "/launchers/")),
    ("LiteLLM Prometheus callback (metrics)", _any("/integrations/prometheus", "/prometheus_client/")),
    ("LiteLLM cost calculation", _any("response_cost_calculator", "_record_zero_cost_diagnostic", "/cost_calculator.py")),
    ("LiteLLM deployment usage tracking (rpm/tpm)", _any("_increment_deployment_usage", "deployment_callback_on_success",
                                                         "increment_deployment_successes_for_current_minute")),
    ("LiteLLM success logging (payload, callbacks)", _any("async_success_handler", "Logging.success_handler", "/logging_worker.py",
                                                          "/_service_logger.py", "_client_async_logging_helper")),
    ("upstream HTTP client (aiohttp)", _any("/aiohttp/", "/httpx/", "/http_handler.py", "/aiohttp_transport.py")),
    ("LiteLLM request building (completion() in a thread)", _any("concurrent/futures/thread.py", "litellm/main.py")),
    ("LiteLLM response metadata and headers", _any("/response_metadata.py", "/llm_response_utils/")),
    ("LiteLLM auth around our key check", _any("/user_api_key_auth.py", "/auth_utils.py", "/route_checks.py", "/proxy/auth/")),
)
# Else the deepest layer the sample reached, checked in this order for each frame.
LAYERS: tuple[tuple[str, _Match], ...] = (
    ("llm-router: the door (keys, body checks)", _any("/llm_router/")),
    ("LiteLLM router (deployment choice, fallbacks)", _any("/litellm/router.py", "/router_utils/", "/router_strategy/")),
    ("FastAPI, Starlette and LiteLLM's middleware", _any("/fastapi/", "/starlette/", "/proxy/middleware/", "/proxy/telemetry/",
                                                         "/proxy/lens/", "_lazy_features.py", "native_compaction.py")),
    ("LiteLLM proxy request processing", _any("/litellm/proxy/")),
    ("uvicorn (HTTP parsing, ASGI)", _any("/uvicorn/")),
    ("LiteLLM, elsewhere", _any("/litellm/")),
)
OTHER = "event loop and the rest"


@dataclass(frozen=True)
class Share:
    name: str
    share: float
    ms_per_request: float


@dataclass(frozen=True)
class ProfileResult:
    path: str
    requests: int
    cpu_ms_per_request: float
    wall_ms_per_request: float
    samples: int
    categories: list[Share]
    top_self: list[Share]
    """Functions by the samples in which they were running themselves (leaf frames)."""
    skipped: str | None = None


def skipped(path: str, why: str) -> ProfileResult:
    return ProfileResult(path, 0, float("nan"), float("nan"), 0, [], [], why)


def measure(gateway: Managed, path: RequestPath, requests: int) -> ProfileResult:
    """Profile `requests` sequential requests of `path`, served by `gateway` (one worker)."""
    if shutil.which(PY_SPY[0]) is None:
        return skipped(path.key, f"{PY_SPY[0]} not found (py-spy runs through uv)")
    raw = gateway.log_path.with_name(f"{gateway.name}-py-spy.txt")
    with httpx.Client(timeout=60) as client:
        _load(gateway, client, path, WARM_UP)
    spy = subprocess.Popen([*PY_SPY, "record", "--pid", str(gateway.pid), "--rate", str(SAMPLE_RATE_HZ), "--gil", "--nonblocking",
                            "--full-filenames", "--format", "raw", "--output", str(raw)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        with httpx.Client(timeout=60) as client:
            _wait_sampling(spy, client, path)
            cpu, wall = _load(gateway, client, path, requests)
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its samples on SIGINT
        _, err = spy.communicate(timeout=120)
    if not raw.exists():
        return skipped(path.key, f"py-spy wrote nothing: {err.decode(errors='replace')[-300:]}")
    categories, top, samples = aggregate(raw.read_text())
    per_request = 1000 * cpu / requests
    return ProfileResult(path.key, requests, per_request, 1000 * wall / requests, samples,
                         [Share(n, s, s * per_request) for n, s in categories], [Share(n, s, s * per_request) for n, s in top])


def _wait_sampling(spy: subprocess.Popen[bytes], client: httpx.Client, path: RequestPath, timeout_s: float = 120.0) -> None:
    """py-spy is fetched by uv on first use and attaches within a second; keep the gateway warm meanwhile."""
    deadline = time.monotonic() + timeout_s
    started = time.monotonic()
    while time.monotonic() - started < 3.0:
        if spy.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"py-spy exited: {spy.stderr.read().decode(errors='replace')[-500:] if spy.stderr else ''}")
        client.post(path.chat_url, content=path.body(), headers=path.headers).raise_for_status()


def _load(gateway: Managed, client: httpx.Client, path: RequestPath, requests: int) -> tuple[float, float]:
    """(gateway CPU seconds, wall seconds) for `requests` sequential requests."""
    body = path.body()
    cpu, wall = gateway.cpu_seconds(), time.perf_counter()
    for _ in range(requests):
        client.post(path.chat_url, content=body, headers=path.headers).raise_for_status()
    return gateway.cpu_seconds() - cpu, time.perf_counter() - wall


def aggregate(raw: str) -> tuple[list[tuple[str, float]], list[tuple[str, float]], int]:
    """(category shares, top leaf functions' shares, samples) from py-spy's raw (collapsed) output."""
    categories: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")[1:]  # the first is the process
        categories[categorize(frames)] += int(count)
        if frames:
            leaves[_short(frames[-1])] += int(count)
    total = sum(categories.values()) or 1
    return ([(n, c / total) for n, c in categories.most_common()], [(n, c / total) for n, c in leaves.most_common(TOP_FUNCTIONS)],
            total)


def categorize(frames: list[str]) -> str:
    for name, match in WORK:
        if any(match(frame) for frame in frames):
            return name
    for frame in reversed(frames):
        for name, match in LAYERS:
            if match(frame):
                return name
    return OTHER


_SITE = re.compile(r"\((?:.*/site-packages/|.*/lib/python3\.\d+/|" + re.escape(f"{REPO}/") + ")")


def _short(frame: str) -> str:
    """`func (/long/path/site-packages/pkg/mod.py:12)` -> `func (pkg/mod.py:12)`."""
    return _SITE.sub("(", frame)


def main(argv: list[str]) -> int:
    from bench import configs
    from bench.processes import Supervisor, add_team_key, launch_router, start_upstream, wait_ready
    from tests.support.gateway import free_port

    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--path", choices=("c", "d"), default="c", help="c: the explicit local model, d: auto")
    args = parser.parse_args(argv)
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="llm-router-profile-"))
    with Supervisor(work / "logs") as sup:
        port = free_port()
        setup, model_list = configs.write_router(work / "router", port, sup.marker[:8], None)
        start_upstream(sup, configs.upstream_argv(port), port)
        key = add_team_key(sup, setup.config, [m["model_name"] for m in model_list])
        gateway = launch_router(sup, "llm-router", setup.config, "sk-bench-master-" + sup.marker, key)
        wait_ready(gateway)
        model = configs.LOCAL_GROUP if args.path == "c" else "auto"
        result = measure(gateway.process, RequestPath(args.path, "profile", gateway.url, model, key), args.requests)
    print(json.dumps(asdict(result), indent=2))
    return 0 if result.skipped is None else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
