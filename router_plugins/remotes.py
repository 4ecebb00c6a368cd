"""Deployments another llm-router serves: GPU hosts that own their model servers (README, Several
replicas and GPU hosts).

A front gateway knows such a deployment by `model_info.llm_router_remote: true` (RemoteGateway in
router_config/gateway_config.py). LiteLLM sends it requests as to any OpenAI-compatible upstream,
with a service key (a team key of the host); the host starts, budgets and stops its servers, one
start at a time however many fronts ask. Two hosts may serve one group: LiteLLM balances between
them, or tries them by their `order`, and a host that fails an attempt passes it to the next.

What a front needs to know about a host, without sending it a completion, comes from the host's own
/v1/health, read by one thread per process every POLL_S: whether it answers, and the state of each
of its model groups. Routing, attempts and health read that copy, never the network.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import httpx

from router_config.gateway_config import Deployment

log = logging.getLogger("llm_router.remotes")

POLL_S = 1.0
_TIMEOUT_S = 2.0
_WARM_TIMEOUT_S = 3600.0
"""How long the request that starts a host's server may wait: a start there can take many minutes."""
# A remote group in one of these states can't serve there at all (no GPU, no key, ...), as opposed to
# one that is cold or starting, or failed and tried again on the next request.
_CANNOT_SERVE = frozenset({"unavailable", "unconfigured"})


@dataclass(frozen=True)
class HostView:
    """One host as its last /v1/health showed it."""

    error: str | None
    """Why the host couldn't be read (unreachable, key refused ...); None when it answered."""
    backends: dict[str, dict] = field(default_factory=dict)
    """Its /v1/health `backends`: group -> {healthy, state, detail}."""


class RemoteBackends:
    def __init__(self, deployments: Iterable[Deployment]):
        self._by_host: dict[str, list[Deployment]] = {}
        for d in deployments:
            if d.remote is not None:
                self._by_host.setdefault(d.remote.base_url, []).append(d)
        self._views: dict[str, HostView] = {}
        self._warming: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        if self._by_host:
            threading.Thread(target=self._run, name="llm-router-remotes", daemon=True).start()

    def problem(self, d: Deployment) -> str | None:
        """Why this remote deployment can't serve now (its host is unreachable, or can't serve the group at all), or None."""
        assert d.remote is not None
        view = self._views.get(d.remote.base_url)
        if view is None:
            return None  # not read yet: try it
        if view.error is not None:
            return f"llm-router at {d.remote.host}: {view.error}"
        backend = view.backends.get(d.remote.group)
        if backend is None:
            return f"llm-router at {d.remote.host} has no model group '{d.remote.group}'"
        if backend.get("state") in _CANNOT_SERVE:
            return f"on {d.remote.host}: {backend.get('detail')}"
        return None

    def health(self, deployments: tuple[Deployment, ...]) -> tuple[bool, str, str]:
        """(healthy, state, detail) of a group its hosts serve: the state of the first that can serve,
        and each host's in the detail."""
        views = [(d.remote.host, *self._health(d)) for d in deployments if d.remote is not None]
        _, healthy, state, _ = next((v for v in views if v[1]), views[0])
        if len(views) == 1:
            host, _, _, detail = views[0]
            return healthy, state, f"{host}: {detail}"
        return healthy, state, "; ".join(f"{host} {state_of}: {detail}" for host, _, state_of, detail in views)

    def _health(self, d: Deployment) -> tuple[bool, str, str]:
        assert d.remote is not None
        view = self._views.get(d.remote.base_url)
        if view is None:
            return True, "unknown", "not read yet"
        if view.error is not None:
            return False, "unreachable", view.error
        backend = view.backends.get(d.remote.group)
        if backend is None:
            return False, "unavailable", f"has no model group '{d.remote.group}'"
        return bool(backend.get("healthy")), str(backend.get("state")), str(backend.get("detail"))

    def cold_start_fallback(self, d: Deployment, may_fall_back: bool) -> str | None:
        """Why an attempt at this remote deployment goes to the fallback now rather than wait for the
        host's cold server, having asked the host to start it; None to send the attempt.

        may_fall_back: the request is one cold_start: fallback applies to (routed by content, with a
        fallback chain after this group), as for a local server (router_plugins/hooks.py)."""
        assert d.remote is not None
        if d.remote.cold_start != "fallback" or not may_fall_back:
            return None
        view = self._views.get(d.remote.base_url)
        backend = view.backends.get(d.remote.group) if view is not None else None
        if backend is None or backend.get("state") == "ready":
            return None
        self._warm(d)
        return f"cold on {d.remote.host}; starting there in the background while a fallback serves this request"

    def _warm(self, d: Deployment) -> None:
        """Have the host start the group's server: one request from this process at a time, the request a
        client would send, which the host's owner turns into a single start whoever else asks."""
        assert d.remote is not None
        job = (d.remote.base_url, d.remote.group)
        with self._lock:
            if job in self._warming:
                return
            self._warming.add(job)
        threading.Thread(target=self._warm_up, args=(d, job), name="llm-router-warm", daemon=True).start()

    def _warm_up(self, d: Deployment, job: tuple[str, str]) -> None:
        assert d.remote is not None
        try:
            body = {"model": d.remote.group, "messages": [{"role": "user", "content": "."}], "max_tokens": 1}
            answer = httpx.post(f"{d.remote.base_url}/v1/chat/completions", json=body, headers=_auth(d), timeout=_WARM_TIMEOUT_S)
            if answer.status_code != 200:
                log.warning("asking llm-router at %s to start %s: it answered %d", d.remote.host, d.remote.group, answer.status_code)
        except httpx.HTTPError as exc:
            log.warning("asking llm-router at %s to start %s failed: %s", d.remote.host, d.remote.group, _why(exc))
        finally:
            with self._lock:
                self._warming.discard(job)

    def _run(self) -> None:
        with httpx.Client(timeout=_TIMEOUT_S) as client:
            while True:
                for base_url, deployments in self._by_host.items():
                    try:
                        self._views[base_url] = _read(client, base_url, deployments)
                    except Exception as exc:  # noqa: BLE001 - a view that can't be read must not end the polling
                        log.exception("reading llm-router at %s failed", base_url)
                        self._views[base_url] = HostView(f"could not be read: {type(exc).__name__}")
                time.sleep(POLL_S)


def _read(client: httpx.Client, base_url: str, deployments: list[Deployment]) -> HostView:
    keyed = next((d for d in deployments if not d.missing_key()), None)
    if keyed is None:
        return HostView(f"{deployments[0].key_env} is not set")
    try:
        answer = client.get(f"{base_url}/v1/health", headers=_auth(keyed))
    except httpx.HTTPError as exc:
        return HostView(_why(exc))
    if answer.status_code in (401, 403):
        return HostView(f"refused the service key ({answer.status_code}); give it a key from `llm-router keys add` there")
    try:
        backends = answer.json()["backends"] if answer.status_code == 200 else None
    except (ValueError, KeyError, TypeError):
        backends = None
    if not isinstance(backends, dict):
        return HostView(f"its /v1/health answered {answer.status_code} without a list of backends; is it an llm-router?")
    return HostView(None, backends)


def _auth(d: Deployment) -> dict[str, str]:
    return {"authorization": f"Bearer {os.environ.get(d.key_env or '', '')}"}


def _why(exc: httpx.HTTPError) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
