"""The launcher's lifecycle against real subprocesses standing in for vLLM."""

from __future__ import annotations

import asyncio
import json
import itertools
import subprocess
import sys
import time

import httpx
import psutil
import pytest

import launchers.server as server_module
from launchers.server import IllegalTransition, ServerState, ServerUnavailable
from router_config.gateway_config import MemoryBudget
from tests.support.gateway import FAKE_MODEL_SERVER, free_port
from tests.support.launcher import make_launcher
from tests.support.processes import count_spawned, model_server_processes
from tests.support.waiting import wait_until, wait_until_async


def run(coro):
    return asyncio.run(coro)


def _alive(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_fifty_concurrent_cold_requests_start_one_process_and_all_are_served(tmp_path):
    launcher = make_launcher(tmp_path, {"a": {"flags": ["--start-delay", "1"]}})
    server = launcher.server("a")
    seen_processes = set()

    async def scenario():
        async def one_request(i):
            await server.ensure_ready()
            seen_processes.update(p.pid for p in model_server_processes() if "served-a" in " ".join(p.cmdline()))
            async with httpx.AsyncClient() as client:
                r = await client.post(f"{server.spec.base_url}/v1/chat/completions",
                                      json={"model": "served-a", "messages": [{"role": "user", "content": f"n{i}"}]})
            return r.status_code

        codes = await asyncio.gather(*(one_request(i) for i in range(50)))
        await launcher.shutdown()
        return codes

    codes = run(scenario())
    assert codes == [200] * 50
    assert len(seen_processes) == 1
    assert count_spawned(str(FAKE_MODEL_SERVER), "served-a") == 0


def test_a_server_that_exits_while_starting_fails_at_once_with_its_log_tail(tmp_path):
    launcher = make_launcher(tmp_path, {"a": {"flags": ["--start-delay", "0.5", "--crash-on-start"], "startup_timeout_s": 60}})
    started = time.monotonic()
    with pytest.raises(ServerUnavailable) as info:
        run(launcher.server("a").ensure_ready())
    assert time.monotonic() - started < 15  # far from the 60 s timeout
    assert "exited with code 3" in str(info.value)
    assert "FATAL: simulated start failure" in info.value.log_tail
    assert launcher.server("a").state is ServerState.FAILED
    assert (tmp_path / "logs" / "a.log").read_text().count("simulated start failure") == 1


def test_a_start_past_its_timeout_kills_the_process_group(tmp_path):
    launcher = make_launcher(tmp_path, {"a": {"flags": ["--start-delay", "60", "--spawn-child"], "startup_timeout_s": 2}})
    with pytest.raises(ServerUnavailable, match="not ready after startup_timeout_s=2"):
        run(launcher.server("a").ensure_ready())
    assert count_spawned(str(FAKE_MODEL_SERVER), "served-a") == 0
    log = (tmp_path / "logs" / "a.log").read_text()
    child_pid = int(log.split("spawned engine child pid ")[1].split()[0]) if "spawned engine child pid" in log else None
    assert child_pid is None or not _alive(child_pid)


def test_a_missing_executable_is_reported_before_anything_is_spawned(tmp_path):
    make_launcher(tmp_path, {"a": {}})
    spec_path = tmp_path / "models" / "a.yaml"
    spec_path.write_text(spec_path.read_text().replace(sys.executable, "/nonexistent/python"))
    from router_config.spec import load_spec
    from launchers.paths import RuntimePaths
    from launchers.server import ModelServer

    server = ModelServer(load_spec(spec_path), RuntimePaths(tmp_path / "run", tmp_path / "logs"))
    with pytest.raises(ServerUnavailable, match="executable not found: /nonexistent/python"):
        run(server.ensure_ready())
    assert not (tmp_path / "logs" / "a.log").exists()


def test_an_idle_server_is_stopped_after_its_ttl(tmp_path):
    launcher = make_launcher(tmp_path, {"a": {"idle_ttl_s": 1}})

    async def scenario():
        launcher.start_monitor()
        await launcher.server("a").ensure_ready()
        pid = launcher.server("a").status().pid
        await wait_until_async(lambda: launcher.server("a").state is ServerState.STOPPED, 5, "the idle stop")
        state = launcher.server("a").state
        await launcher.shutdown()
        return pid, state

    pid, state = run(scenario())
    assert state is ServerState.STOPPED
    assert not _alive(pid)


def test_a_server_with_a_request_in_flight_is_never_stopped_for_idleness(tmp_path):
    launcher = make_launcher(tmp_path, {"a": {"idle_ttl_s": 0.5}})

    async def scenario():
        launcher.start_monitor()
        server = launcher.server("a")
        await server.ensure_ready()
        server.lease("request-1")
        await asyncio.sleep(2.0)
        during = server.state
        server.release("request-1")
        await wait_until_async(lambda: server.state is ServerState.STOPPED, 4, "the idle stop after the release")
        after = server.state
        await launcher.shutdown()
        return during, after

    during, after = run(scenario())
    assert during is ServerState.READY
    assert after is ServerState.STOPPED


def test_the_least_recently_used_idle_server_is_evicted_to_fit_the_budget(tmp_path):
    budget = MemoryBudget(gpu_gib={0: 10})
    launcher = make_launcher(tmp_path, {n: {"memory": {"gpu_gib": 6}} for n in ("a", "b")}, budget)

    async def scenario():
        await launcher.server("a").ensure_ready()
        await launcher.server("b").ensure_ready()
        states = (launcher.server("a").state, launcher.server("b").state)
        await launcher.shutdown()
        return states

    assert run(scenario()) == (ServerState.STOPPED, ServerState.READY)


def test_two_models_that_do_not_fit_together_take_turns(tmp_path):
    budget = MemoryBudget(gpu_gib={0: 20})
    launcher = make_launcher(tmp_path, {"text": {"memory": {"gpu_gib": 15}}, "vision": {"memory": {"gpu_gib": 15}}}, budget)

    async def scenario():
        order = []
        for name in ("text", "vision", "text"):
            await launcher.server(name).ensure_ready()
            order.append(tuple(s.name for s in launcher.servers.values() if s.is_ready))
        await launcher.shutdown()
        return order

    assert run(scenario()) == [("text",), ("vision",), ("text",)]


def test_a_busy_server_is_waited_for_then_evicted(tmp_path):
    budget = MemoryBudget(gpu_gib={0: 10}, drain_timeout_s=10)
    launcher = make_launcher(tmp_path, {n: {"memory": {"gpu_gib": 6}} for n in ("a", "b")}, budget)

    async def scenario():
        a, b = launcher.server("a"), launcher.server("b")
        await a.ensure_ready()
        a.lease("busy")
        start_b = asyncio.create_task(b.ensure_ready())
        await asyncio.sleep(1.0)
        waiting = (a.state, b.state)
        a.release("busy")
        await start_b
        final = (a.state, b.state)
        await launcher.shutdown()
        return waiting, final

    waiting, final = run(scenario())
    assert waiting == (ServerState.READY, ServerState.STARTING)
    assert final == (ServerState.STOPPED, ServerState.READY)


def test_a_start_blocked_by_a_pinned_server_fails_after_the_drain_timeout(tmp_path):
    budget = MemoryBudget(gpu_gib={0: 10}, drain_timeout_s=0.5)
    launcher = make_launcher(tmp_path, {"a": {"memory": {"gpu_gib": 6}, "pinned": True}, "b": {"memory": {"gpu_gib": 6}}}, budget)

    async def scenario():
        await launcher.server("a").ensure_ready()
        try:
            await launcher.server("b").ensure_ready()
        finally:
            await launcher.shutdown()

    with pytest.raises(ServerUnavailable, match="does not fit the memory budget"):
        run(scenario())


def test_a_server_bigger_than_the_budget_is_refused_without_spawning(tmp_path):
    launcher = make_launcher(tmp_path, {"a": {"memory": {"gpu_gib": 30}}}, MemoryBudget(gpu_gib={0: 20}))
    with pytest.raises(ServerUnavailable, match="needs 30 GiB on GPU 0, budget is 20 GiB"):
        run(launcher.server("a").ensure_ready())
    assert count_spawned(str(FAKE_MODEL_SERVER), "served-a") == 0


def test_stop_kills_the_whole_group_even_when_sigterm_is_ignored(tmp_path, monkeypatch):
    monkeypatch.setattr(server_module, "STOP_GRACE_S", 1.0)
    launcher = make_launcher(tmp_path, {"a": {"flags": ["--spawn-child", "--ignore-sigterm"]}})

    async def scenario():
        server = launcher.server("a")
        await server.ensure_ready()
        pgid = server.status().pid
        members = [p.pid for p in psutil.process_iter() if _pgid(p) == pgid]
        await server.stop("test")
        return members

    members = run(scenario())
    assert len(members) >= 2  # the server and its engine child
    assert not any(_alive(pid) for pid in members)


def _pgid(proc):
    import os

    try:
        return os.getpgid(proc.pid)
    except (ProcessLookupError, psutil.Error):
        return None


def test_a_healthy_server_already_on_the_port_is_adopted_not_started_twice(tmp_path):
    port = free_port()
    manual = subprocess.Popen([sys.executable, str(FAKE_MODEL_SERVER), "--port", str(port), "--served-model-name", "served-a"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(port)
        launcher = make_launcher(tmp_path, {"a": {"port": port}})

        async def scenario():
            server = launcher.server("a")
            await server.ensure_ready()
            owned = server.owned
            await launcher.shutdown()
            return owned

        assert run(scenario()) is False
        assert count_spawned(str(FAKE_MODEL_SERVER), "served-a") == 1  # only the manual one, still running
    finally:
        manual.terminate()
        manual.wait(10)


def test_a_server_stopped_by_a_process_that_adopted_it_leaves_no_tmpdir(tmp_path):
    port = free_port()
    spawner = make_launcher(tmp_path, {"a": {"port": port}})
    adopter = make_launcher(tmp_path, {"a": {"port": port}})
    tmpdir = adopter.server("a")._paths.tmp_dir("a", create=False)

    async def scenario():
        try:
            await spawner.server("a").ensure_ready()
            assert await adopter.server("a").attach()
            await adopter.shutdown()  # adopted servers belong to their spawner: left running
            kept_while_running = tmpdir.is_dir()
            await adopter.server("a").stop("stopped by an operator")
            return kept_while_running, tmpdir.exists()
        finally:
            await spawner.shutdown()

    assert run(scenario()) == (True, False)
    assert count_spawned(str(FAKE_MODEL_SERVER), "served-a") == 0


def test_a_port_held_by_another_program_is_a_clear_error(tmp_path):
    port = free_port()
    other = subprocess.Popen([sys.executable, str(FAKE_MODEL_SERVER), "--port", str(port), "--served-model-name", "someone-else"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(port)
        launcher = make_launcher(tmp_path, {"a": {"port": port}})
        with pytest.raises(ServerUnavailable, match=f"port {port} is held by another process"):
            run(launcher.server("a").ensure_ready())
    finally:
        other.terminate()
        other.wait(10)


def test_a_server_that_dies_while_ready_is_marked_failed_and_restarted_by_the_next_request(tmp_path):
    launcher = make_launcher(tmp_path, {"a": {"flags": ["--die-after-requests", "1"]}})

    async def scenario():
        launcher.start_monitor()
        server = launcher.server("a")
        await server.ensure_ready()
        first_pid = server.status().pid
        async with httpx.AsyncClient() as client:
            await client.post(f"{server.spec.base_url}/v1/chat/completions",
                              json={"model": "served-a", "messages": [{"role": "user", "content": "die"}]})
        await wait_until_async(lambda: server.state is ServerState.FAILED, 4, "the monitor to notice the crash")
        crashed_state, last_error = server.state, server.last_error
        await server.ensure_ready()
        second_pid = server.status().pid
        await launcher.shutdown()
        return first_pid, crashed_state, last_error, second_pid

    first_pid, crashed_state, last_error, second_pid = run(scenario())
    assert crashed_state is ServerState.FAILED
    assert "exited with code 1 while ready" in last_error
    assert second_pid != first_pid


def test_repeated_crashes_back_off_before_the_next_start(tmp_path):
    launcher = make_launcher(tmp_path, {"a": {"flags": ["--crash-on-start"]}})

    async def scenario():
        server = launcher.server("a")
        with pytest.raises(ServerUnavailable, match="exited with code 3"):
            await server.ensure_ready()
        started = count_spawned(str(FAKE_MODEL_SERVER), "served-a")
        with pytest.raises(ServerUnavailable, match="exited with code 3"):
            await server.ensure_ready()  # the first failure allows one immediate retry
        with pytest.raises(ServerUnavailable, match="next start allowed in"):
            await server.ensure_ready()
        return started

    assert run(scenario()) == 0


def test_shutdown_stops_every_started_server_and_leaves_no_process(tmp_path):
    launcher = make_launcher(tmp_path, {n: {"flags": ["--spawn-child"]} for n in ("a", "b")})

    async def scenario():
        await asyncio.gather(launcher.server("a").ensure_ready(), launcher.server("b").ensure_ready())
        pids = [s.status().pid for s in launcher.servers.values()]
        await launcher.shutdown()
        return pids

    pids = run(scenario())
    assert all(not _alive(pid) for pid in pids)
    assert count_spawned(str(FAKE_MODEL_SERVER), "served-a") == count_spawned(str(FAKE_MODEL_SERVER), "served-b") == 0


def test_every_transition_is_logged_once(tmp_path, caplog):
    launcher = make_launcher(tmp_path, {"a": {}})

    async def scenario():
        await launcher.server("a").ensure_ready()
        await launcher.shutdown()

    with caplog.at_level("INFO", logger="llm_router.launcher"):
        run(scenario())
    transitions = [r.getMessage() for r in caplog.records if " -> " in r.getMessage()]
    assert [t.split(": ", 1)[1].split(" (")[0] for t in transitions] == [
        "stopped -> starting", "starting -> ready", "ready -> stopping", "stopping -> stopped"]


def _wait_listening(port, timeout=15):
    def answers():
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(answers, timeout, f"a server on port {port}")


_S = ServerState
# The lifecycle as the README draws it, written out here independently of the code's own table.
_LEGAL = {
    (_S.STOPPED, _S.STARTING),
    (_S.STARTING, _S.READY), (_S.STARTING, _S.FAILED), (_S.STARTING, _S.STOPPING),
    (_S.READY, _S.STOPPING), (_S.READY, _S.FAILED),
    (_S.STOPPING, _S.STOPPED),
    (_S.FAILED, _S.STARTING), (_S.FAILED, _S.STOPPED),
}


@pytest.mark.parametrize(("old", "new"), list(itertools.product(ServerState, ServerState)), ids=lambda s: s.value)
def test_the_state_machine_takes_exactly_its_legal_transitions(tmp_path, old, new):
    server = make_launcher(tmp_path, {"a": {}}).server("a")
    server.state = old
    if (old, new) in _LEGAL:
        assert server._transition(old, new) is True
        assert server.state is new
    else:
        with pytest.raises(IllegalTransition):
            server._transition(old, new)
        assert server.state is old


def test_a_transition_from_a_state_the_server_is_no_longer_in_changes_nothing(tmp_path):
    server = make_launcher(tmp_path, {"a": {}}).server("a")
    server.state = ServerState.STOPPING  # someone else began a stop
    assert server._transition(ServerState.READY, ServerState.STOPPING) is False
    assert server.state is ServerState.STOPPING


def test_a_recorded_pid_now_held_by_another_process_is_never_signalled(tmp_path):
    """A state file outlives its server; once the system reuses the pid, the recorded group is someone else's."""
    port = free_port()
    manual = subprocess.Popen([sys.executable, str(FAKE_MODEL_SERVER), "--port", str(port), "--served-model-name", "served-a"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    try:
        _wait_listening(port)
        launcher = make_launcher(tmp_path, {"a": {"port": port}})
        state_file = launcher.server("a")._paths.state_file("a")
        state_file.parent.mkdir(parents=True, exist_ok=True)
        # What a server that has since died left behind, its pid now the bystander's (started later than it was).
        state_file.write_text(json.dumps({"state": "ready", "pid": bystander.pid, "pgid": bystander.pid, "started": 1.0, "port": port}))

        async def scenario():
            server = launcher.server("a")
            await server.ensure_ready()  # adopts the healthy server on the port
            await server.stop("stopped by an operator")
            await launcher.shutdown()

        run(scenario())
        assert bystander.poll() is None, "the bystander's group was signalled"
    finally:
        for proc in (manual, bystander):
            proc.kill()
            proc.wait(10)
