"""The `llm-router` command: serve, check, keys, usage, and local model server operations."""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import ipaddress
import json
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from router_config import environment
from router_config.gateway_config import ConfigError, GatewayConfig, GatewaySettings, default_config_path, load_config
from router_config.litellm_settings import LITELLM_CONFIG_NAME, write_litellm_config

if TYPE_CHECKING:
    import datetime as dt

    from router_plugins.state.spend import SpendLedger

EXIT_CONFIG_ERROR = 2
_STARTUP_FAILURE = 3
"""uvicorn's exit status when the app could not start."""
KEEP_ALIVE_S = 30
"""Seconds an idle client connection stays open."""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in _COMMANDS and argv[0] not in ("-h", "--help")):
        argv = ["serve", *argv]  # `llm-router [--port N ...]` means serve
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"llm-router: configuration has {len(exc.problems)} problem(s):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return EXIT_CONFIG_ERROR


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llm-router", description="OpenAI-compatible LLM gateway on the LiteLLM proxy.")
    sub = parser.add_subparsers(dest="command")

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", type=Path, default=default_config_path(), help="default: ./litellm_config.yaml")
        return p

    serve = with_config(sub.add_parser("serve", help="run the gateway (the default command)"))
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    # A string default goes through `type` too: a bad LLM_ROUTER_WORKERS is refused like a bad flag.
    serve.add_argument("--workers", type=int, default=os.environ.get(environment.WORKERS_ENV) or _default_workers(),
                       help=f"worker processes (default: ${environment.WORKERS_ENV}, else 2 where there are 2+ CPUs; "
                            "see the README's Performance section)")
    with_config(sub.add_parser("check", help="validate the configuration without starting anything"))

    keys = sub.add_parser("keys", help="manage team keys").add_subparsers(dest="keys_command", required=True)
    add = with_config(keys.add_parser("add", help="create a key; it is printed once"))
    add.add_argument("name")
    add.add_argument("--team", required=True)
    add.add_argument("--models", default="*", help="comma-separated model groups, or * (default)")
    add.add_argument("--rpm", type=int, default=None, help="requests per minute (default: unlimited)")
    add.add_argument("--budget", type=_budget, default=None, help="dollars per day, week or month on priced models: 50/month")
    _difficulty_options(add, "; default: the config's routing.difficulty")
    with_config(keys.add_parser("list", help="list keys (never the keys themselves)"))
    revoke = with_config(keys.add_parser("revoke", help="revoke a key by name"))
    revoke.add_argument("name")
    difficulty = with_config(keys.add_parser("difficulty", help="give a key its own share of `auto` sent to the strong model"))
    difficulty.add_argument("name")
    options = _difficulty_options(difficulty, "")
    options.add_argument("--config-default", action="store_true", help="use the config's routing.difficulty again")
    options.required = True
    budget = with_config(keys.add_parser("budget", help="set, change or remove a key's or a team's budget"))
    budget.add_argument("name", help="the key's name, or the team's with --team")
    budget.add_argument("budget", type=_budget_or_none, help="dollars per day, week or month (50/day, 200/week, 1000/month), or none")
    budget.add_argument("--team", action="store_true", help="NAME is a team: its keys share the budget")

    start = with_config(sub.add_parser("start", help="start a local model server and wait until it is ready"))
    start.add_argument("model")
    stop = with_config(sub.add_parser("stop", help="stop a local model server"))
    stop.add_argument("model", nargs="?")
    stop.add_argument("--all", action="store_true")
    prepare = with_config(sub.add_parser("prepare", help="prepare engines and weights ahead of the first start"))
    prepare.add_argument("model", nargs="?", help="default: every local model with a provision section")
    status = with_config(sub.add_parser("status", help="state of every local model server"))
    status.add_argument("--json", action="store_true")
    with_config(sub.add_parser("reload", help="reread the config, launch specs and keys, and apply them without restarting models"))
    calibrate = with_config(sub.add_parser("calibrate", help="the difficulty threshold that sends a share of `auto` traffic to routing.complex"))
    calibrate.add_argument("--share", type=_fraction, required=True, help="the share of text requests to send to routing.complex (0-1)")
    calibrate.add_argument("--prompts", type=Path, default=None,
                           help="a JSON-lines file of prompts or request bodies (default: the scores the gateway has routed)")
    calibrate.add_argument("--write", action="store_true", help="put the threshold into the config's routing.difficulty")
    usage = with_config(sub.add_parser("usage", help="spend and tokens by key, team, model or day, from the spend ledger"))
    usage.add_argument("--by", choices=["key", "team", "model", "day", "request"], default="key",
                       help="request: every request this machine served (export)")
    usage.add_argument("--since", default="7d", help="7d (the last 7 days, today included), 2w, today or a date (default: 7d)")
    usage.add_argument("--format", choices=["table", "csv", "json"], default="table")
    return parser


def _difficulty_options(parser: argparse.ArgumentParser, default: str) -> argparse._MutuallyExclusiveGroup:
    options = parser.add_mutually_exclusive_group()
    options.add_argument("--share", type=_fraction, default=None,
                         help=f"about this share of the key's text requests goes to routing.complex (0-1{default})")
    options.add_argument("--threshold", type=_fraction, default=None,
                         help=f"a request whose difficulty score is at least this goes to routing.complex (0-1{default})")
    return options


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number between 0 and 1") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and 1")
    return value


def _budget(text: str):  # type: ignore[no-untyped-def]
    from pydantic import ValidationError

    from router_config.gateway_config import SpendLimit

    try:
        return SpendLimit.model_validate(text)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError("; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())) from None


def _budget_or_none(text: str):  # type: ignore[no-untyped-def]
    return None if text.strip().lower() == "none" else _budget(text)


def _difficulty_setting(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The key's own routing.difficulty from --share/--threshold, or None for the config's."""
    from router_config.gateway_config import DifficultySetting

    if args.share is None and args.threshold is None:
        return None
    return DifficultySetting(share=args.share, threshold=args.threshold)


def _serve(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    master = os.environ.get(environment.MASTER_KEY_ENV)
    if not master and not _is_loopback(args.host):
        print(f"llm-router: refusing to bind {args.host} without a master key. Set {environment.MASTER_KEY_ENV} "
              f"(or {environment.MASTER_KEY_ENV}{environment.SECRET_FILE_SUFFIX}, a file holding it), or bind 127.0.0.1.",
              file=sys.stderr)
        return EXIT_CONFIG_ERROR
    if args.workers < 1:
        print("llm-router: --workers must be at least 1", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    with _state_folder(config):  # before anything is written there or started
        return _run_gateway(config, args, bool(master))


def _run_gateway(config: GatewayConfig, args: argparse.Namespace, has_master_key: bool) -> int:
    # LiteLLM reads its part from a copy with our plugins always registered; our workers read the admin's file.
    os.environ[environment.CONFIG_ENV] = str(config.path)
    os.environ["CONFIG_FILE_PATH"] = str(write_litellm_config(config, config.resolve_path(config.settings.state_dir) / LITELLM_CONFIG_NAME))
    # A crash in native code (a rare segfault was seen once under load) prints every thread's
    # Python stack to stderr; the variable carries it into uvicorn's worker processes.
    os.environ.setdefault("PYTHONFAULTHANDLER", "1")
    faulthandler.enable()
    os.environ[environment.WORKERS_ENV] = str(args.workers)
    environment.apply_defaults()
    if config.settings.metrics:
        # Before anything imports prometheus_client, here and in the workers (which inherit it).
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_fresh_metrics_dir(config))
    import uvicorn

    from launchers.owner import OwnerThread
    from llm_router import logs

    # One owner of the machine's model servers, in this process, whatever the number of workers;
    # it logs to the same places as the workers.
    logs.configure(_runtime_paths(config).log_dir, config.secrets)
    for line in _settings_summary(config, has_master_key, args.workers):
        logging.getLogger("llm_router").info("llm-router: %s", line)
    owner = OwnerThread(lambda: _launcher(config, servers_outlive_us=False), _runtime_paths(config), _Reloader(config))
    owner.start()
    _stop_owner_on_exit_signals(owner)
    print(f"llm-router: serving on http://{args.host}:{args.port}/v1 (config {config.path})", file=sys.stderr)
    served = uvicorn.Config("llm_router.app:app", host=args.host, port=args.port, workers=args.workers,
                            **serving_options(config.settings.shutdown_grace_s))
    try:
        return _run_workers(served, owner)
    finally:
        owner.stop()  # after the workers: their in-flight requests finished on running servers


def _run_workers(served, owner) -> int:  # type: ignore[no-untyped-def]
    """uvicorn.run, but with SIGHUP ours: it reloads the configuration live (uvicorn's supervisor
    would restart the workers instead, leaving the owner's launch specs as they were)."""
    from uvicorn.supervisors import Multiprocess

    def reload_on_hup(signum: int, frame: object) -> None:
        owner.reload_soon()

    if served.workers > 1:
        supervisor = Multiprocess(served, sockets=[served.bind_socket()])
        signal.signal(signal.SIGHUP, reload_on_hup)  # after the supervisor has installed its own
        supervisor.run()
        return 0
    import uvicorn

    served.load_app()
    server = uvicorn.Server(served)
    signal.signal(signal.SIGHUP, reload_on_hup)
    server.run()
    return 0 if server.started else _STARTUP_FAILURE


class _Reloader:
    """The owner's `reload`: rereads the config with the same checks as `check`, rewrites LiteLLM's copy
    (for workers started later), and names what only a restart applies."""

    def __init__(self, config: GatewayConfig):
        self._config = config

    def __call__(self):  # type: ignore[no-untyped-def]
        from launchers.owner import NewConfig

        new = load_config(self._config.path)
        write_litellm_config(new, new.resolve_path(new.settings.state_dir) / LITELLM_CONFIG_NAME)
        needs_restart = _needs_gateway_restart(self._config, new)
        self._config = new
        return NewConfig(list(new.local_specs().values()), new.settings.memory_budget, needs_restart)


def _needs_gateway_restart(old: GatewayConfig, new: GatewayConfig) -> list[str]:
    """What a live reload can't apply: LiteLLM adds, removes or changes a deployment only with its database."""
    before = {d.id: entry for d, entry in zip(old.deployments, old.raw.get("model_list") or [])}
    after = {d.id: entry for d, entry in zip(new.deployments, new.raw.get("model_list") or [])}
    changed = [f"model_list: {i} {'added' if i not in before else 'removed' if i not in after else 'changed'}"
               for i in sorted(set(before) | set(after)) if before.get(i) != after.get(i)]
    moved = [f"llm_router.{name} changed" for name in ("state_dir", "log_dir", "keys_file", "redis", "metrics", "shutdown_grace_s")
             if getattr(old.settings, name) != getattr(new.settings, name)]
    if old.settings.responses.enabled != new.settings.responses.enabled:
        moved.append(f"llm_router.responses turned {'on' if new.settings.responses.enabled else 'off'}")
    return changed + moved


def _reload(args: argparse.Namespace) -> int:
    from launchers.owner_client import OwnerClient
    from launchers.server import ServerUnavailable

    config = load_config(args.config)  # an invalid file stops here: nothing changes

    async def ask() -> dict:  # type: ignore[type-arg]
        client = OwnerClient(_runtime_paths(config).owner_socket, list(config.local_specs()), connect_timeout_s=2)
        try:
            return await client.reload()
        finally:
            await client.close()

    try:
        with _state_folder(config):  # another config's gateway would reload its own file
            done = asyncio.run(ask())
    except ServerUnavailable as exc:
        print(f"llm-router: {exc.why}", file=sys.stderr)
        return 1
    print(f"reloaded {config.path}")
    print(f"  applied live: routing, fallbacks, aliases, keys; local servers: {', '.join(done['applied']) or 'no change'}")
    print(f"  restarting when idle: {', '.join(done['restarts_when_idle']) or 'none'}")
    print(f"  needs a gateway restart: {'; '.join(done['needs_gateway_restart']) or 'nothing'}")
    return 0


def _fresh_metrics_dir(config: GatewayConfig) -> Path:
    """This gateway's folder for prometheus_client's multiprocess files, emptied; folders that
    gateways no longer running left behind are removed."""
    import shutil

    import psutil

    root = config.resolve_path(config.settings.state_dir) / "metrics"
    for old in root.glob("*"):
        if not old.name.isdigit() or not psutil.pid_exists(int(old.name)) or int(old.name) == os.getpid():
            shutil.rmtree(old, ignore_errors=True)
    mine = root / str(os.getpid())
    mine.mkdir(parents=True)
    return mine


def _settings_summary(config: GatewayConfig, has_master_key: bool, workers: int) -> list[str]:
    """What the gateway runs with, for the start of its log (LiteLLM's own start-up notices are about
    features llm-router replaces, and are left out)."""
    s = config.settings
    if has_master_key:
        keys = f"team keys from {s.keys_file}" if s.keys_file else "no team keys (llm_router.keys_file is not set)"
        access = f"master key set, {keys}"
    else:
        access = f"no {environment.MASTER_KEY_ENV}: open to anyone on this machine (loopback only)"
    local = config.local_specs()
    routing = f"content routing for {', '.join(config.routing.trigger_models)}" if config.routing else "no content routing (no routing: section)"
    return [access,
            f"{len(config.groups)} model groups ({len(local)} local: {', '.join(local) or 'none'}); {routing}",
            f"{workers} worker(s); state in {config.resolve_path(s.state_dir)}, logs in {config.resolve_path(s.log_dir)}"]


def _stop_owner_on_exit_signals(owner) -> None:  # type: ignore[no-untyped-def]
    """After its graceful shutdown, uvicorn (one worker) raises the signal that stopped it again, with
    the handler it found installed: this one, which stops the model servers first, then dies of the
    signal as the default handler would."""
    def stop_then_die(signum: int, _frame: object) -> None:
        owner.stop()
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)
        # Still alive: this is a container's PID 1, whose signals' default actions the kernel ignores.
        # The shutdown is done; exit now, as the signal would have, rather than through the interpreter's
        # teardown, whose garbage collection of LiteLLM's objects can outlast the runtime's stop timeout.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop_then_die)


def serving_options(shutdown_grace_s: float = GatewaySettings().shutdown_grace_s) -> dict[str, object]:
    """uvicorn's settings for the gateway (bench/ runs LiteLLM alone under the same ones); `shutdown_grace_s`
    is llm_router.shutdown_grace_s."""
    return {
        # Tuned defaults (measured in bench/, see BENCHMARKS.md): the C HTTP parser and event
        # loop, and no per-request access-log line unless asked for (LLM_ROUTER_ACCESS_LOG=1);
        # errors, fallbacks and launcher events are still logged.
        "loop": "uvloop",
        "http": "httptools",
        "access_log": environment.access_log_enabled(),
        "log_config": None,
        # Longer than the 5 s after which httpx (the OpenAI SDK's client) drops an idle pooled
        # connection, so the client always closes first: with uvicorn's 5 s default, a request sent
        # as the gateway closes an idle connection meets a reset.
        "timeout_keep_alive": KEEP_ALIVE_S,
        "timeout_graceful_shutdown": shutdown_grace_s,
    }


def _default_workers() -> int:
    # Two workers nearly double throughput on a 2-core machine (bench (e)); more mostly add memory.
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def _check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    print(f"{config.path}: OK ({len(config.groups)} model groups, {len(config.local_specs())} local launch specs)")
    for note in _section_notes(config):
        print(f"  note: {note}")
    return 0


def _section_notes(config: GatewayConfig) -> list[str]:
    """What leaving out one of our sections means: none of them is required."""
    notes = []
    if config.routing is None:
        notes.append("no `routing:` section: requests must name a model; `auto` answers 400 (see the README, Routing)")
    if "llm_router" not in config.raw:
        notes.append("no `llm_router:` section: defaults apply (state in ./run, logs in ./logs, no team keys, no memory budget)")
    if not config.settings.keys_file:
        notes.append("no `llm_router.keys_file`: only the master key (LLM_ROUTER_MASTER_KEY) can call the gateway, or anyone if it is unset")
    return notes


def _keys(args: argparse.Namespace) -> int:
    from router_plugins.keys import KeyFileError, KeyStore

    config = load_config(args.config)
    if not config.settings.keys_file:
        print(f"llm-router: {config.path}: llm_router.keys_file is not set; add e.g. `keys_file: keys.yaml`", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    store = KeyStore(config.resolve_path(config.settings.keys_file))
    try:
        if args.keys_command == "add":
            models = tuple(m.strip() for m in args.models.split(",") if m.strip())
            unknown = [m for m in models if m != "*" and m not in config.groups]
            if unknown:
                print(f"llm-router: unknown model group(s) {unknown}; known: {list(config.groups)}", file=sys.stderr)
                return EXIT_CONFIG_ERROR
            key = store.add(args.name, args.team, models or ("*",), args.rpm, _difficulty_setting(args), args.budget)
            print(key)
            print(f"Key '{args.name}' for team '{args.team}' created. It is shown only this once; only its hash is stored.", file=sys.stderr)
        elif args.keys_command == "list":
            for k in store.all():
                rpm = k.rpm if k.rpm is not None else "unlimited"
                own = k.difficulty.model_dump(exclude_none=True) if k.difficulty else None
                difficulty = ",".join(f"{n}={v}" for n, v in own.items()) if own else "config"
                print(f"{k.name}\tteam={k.team}\tmodels={','.join(k.models)}\trpm={rpm}\tdifficulty={difficulty}\t"
                      f"budget={k.budget.text if k.budget else 'none'}\t{'revoked' if k.revoked else 'active'}")
            for team, limit in sorted(store.team_budgets().items()):
                print(f"team {team}\tbudget={limit.text}")
        elif args.keys_command == "difficulty":
            own = _difficulty_setting(args)
            store.set_difficulty(args.name, own)
            print(f"Key '{args.name}' routes `auto` by " + (f"its own {own.model_dump(exclude_none=True)}." if own else "the config's routing.difficulty."))
        elif args.keys_command == "budget":
            if args.team:
                store.set_team_budget(args.name, args.budget)
            else:
                store.set_budget(args.name, args.budget)
            whose = f"Team '{args.name}'" if args.team else f"Key '{args.name}'"
            zone = config.settings.spend.time_zone
            print(f"{whose} may spend {args.budget} on priced models (periods in {zone})." if args.budget else f"{whose} has no budget.")
        else:
            store.revoke(args.name)
            print(f"Key '{args.name}' revoked.")
    except KeyFileError as exc:
        print(f"llm-router: {exc}", file=sys.stderr)
        return 1
    return 0


def _usage(args: argparse.Namespace) -> int:
    """The spend ledger's report (or its rows), read from the state database while gateways write it."""
    from router_plugins.state.database import StateDatabase
    from router_plugins.state.periods import BadSince
    from router_plugins.state.spend import SpendLedger

    config = load_config(args.config)
    with _state_folder(config):  # another config's gateway would be reported as this one's
        ledger = SpendLedger(StateDatabase(_runtime_paths(config).state_database), config.settings.spend)
        try:
            since = ledger.since(args.since)
        except BadSince as exc:
            print(f"llm-router: {exc}", file=sys.stderr)
            return EXIT_CONFIG_ERROR
        return _print_usage(ledger, args, since, config.settings.spend.time_zone)


def _print_usage(ledger: SpendLedger, args: argparse.Namespace, since: dt.date, zone: str) -> int:
    import csv

    if args.by == "request":
        rows = list(ledger.requests(since))
    else:
        report = ledger.report(args.by, since)
        if args.format == "json":
            print(json.dumps(report.as_json(), indent=2))
            return 0
        rows = [u.as_json() for u in report.lines]
        if args.format == "table":
            rows.append({**{name: "" for name in (rows[0] if rows else {})}, **report.total.as_json(), _first(rows): "TOTAL"})
    if args.format == "json":
        print(json.dumps(rows, indent=2))
    elif args.format == "csv":
        if rows:
            writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        print(f"since {since} ({zone})")
        _print_table(rows)
    return 0


def _first(rows: list[dict]) -> str:  # type: ignore[type-arg]
    return next(iter(rows[0])) if rows else "key"


def _print_table(rows: list[dict]) -> None:  # type: ignore[type-arg]
    if not rows:
        print("no requests recorded")
        return
    cells = [[_cell(value) for value in row.values()] for row in rows]
    names = [name.upper().replace("_", " ") for name in rows[0]]
    widths = [max(len(name), *(len(c[i]) for c in cells)) for i, name in enumerate(names)]
    for line in [names, *cells]:
        print("  ".join(value.rjust(width) if i else value.ljust(width) for i, (value, width) in enumerate(zip(line, widths))))


def _cell(value: object) -> str:
    return f"{value:.6f}" if isinstance(value, float) else str(value)


def _runtime_paths(config: GatewayConfig):  # type: ignore[no-untyped-def]
    from launchers.paths import RuntimePaths

    s = config.settings
    return RuntimePaths(config.resolve_path(s.state_dir), config.resolve_path(s.log_dir))


def _state_folder(config: GatewayConfig):  # type: ignore[no-untyped-def]
    """This command's claim on its state folder (launchers/state_folder.py). A folder that a
    live llm-router uses for another config ends the command here, exit status 2, with one line
    naming the folder, that config and the fix."""
    from launchers.state_folder import StateFolderClaim, StateFolderInUse

    try:
        return StateFolderClaim(_runtime_paths(config), config.path)
    except StateFolderInUse as exc:
        print(f"llm-router: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG_ERROR) from None


def _launcher(config: GatewayConfig, servers_outlive_us: bool):  # type: ignore[no-untyped-def]
    from launchers.manager import Launcher

    return Launcher(config.local_specs().values(), config.settings.memory_budget, _runtime_paths(config), servers_outlive_us)


def _with_owner(config: GatewayConfig, action):  # type: ignore[no-untyped-def]
    """Run `action(client)` against the machine's owner: the gateway's, or this command for as long
    as it runs, whose servers then outlive it (the next gateway adopts them)."""
    from launchers.owner import machine_owner

    async def run():  # type: ignore[no-untyped-def]
        async with machine_owner(lambda: _launcher(config, servers_outlive_us=True), _runtime_paths(config), list(config.local_specs())) as client:
            return await action(client)

    with _state_folder(config):
        return asyncio.run(run())


def _server_names(config: GatewayConfig, model: str | None, every: bool) -> list[str]:
    names = list(config.local_specs())
    if every:
        return names
    if model not in names:
        raise SystemExit(f"llm-router: no local model '{model}'; known: {names}")
    return [model]


def _start(args: argparse.Namespace) -> int:
    from launchers.server import ServerUnavailable

    config = load_config(args.config)
    (name,) = _server_names(config, args.model, False)

    async def start(client) -> int:  # type: ignore[no-untyped-def]
        try:
            status = await client.start_server(name)
        except ServerUnavailable as exc:
            print(f"llm-router: {exc}", file=sys.stderr)
            return 1
        print(f"{name}: ready on port {status['port']}")
        return 0

    return _with_owner(config, start)


def _stop(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if not args.model and not args.all:
        print("llm-router: name a model or pass --all", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    names = _server_names(config, args.model, args.all)

    async def stop(client) -> int:  # type: ignore[no-untyped-def]
        running = {s["name"] for s in await client.statuses() if s["state"] != "stopped"}
        for name in names:
            if name in running:
                await client.stop_server(name, "stopped by an operator")
                print(f"{name}: stopped")
            else:
                print(f"{name}: not running")
        return 0

    return _with_owner(config, stop)


def _prepare(args: argparse.Namespace) -> int:
    import logging

    from launchers import provision

    config = load_config(args.config)
    specs = config.local_specs()
    names = _server_names(config, args.model, False) if args.model else [n for n, s in specs.items() if s.provision.engine or s.provision.weights]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    for name in names:
        try:
            provision.prepare_spec(specs[name])
        except provision.PreparationFailed as exc:
            print(f"llm-router: {exc}", file=sys.stderr)
            return 1
        print(f"{name}: prepared")
    return 0


def _status(args: argparse.Namespace) -> int:
    config = load_config(args.config)

    async def statuses(client) -> list[dict]:  # type: ignore[no-untyped-def]
        return await client.statuses()

    found = _with_owner(config, statuses)
    if args.json:
        print(json.dumps({"servers": found}, indent=2))
        return 0
    print(f"{'MODEL':<22}{'STATE':<10}{'PID':>8}{'PORT':>7}{'UPTIME':>9}{'IDLE':>8}{'RSS GiB':>9}  LAST ERROR")
    for s in found:
        print(f"{s['name']:<22}{s['state']:<10}{s['pid'] or '-':>8}{s['port']:>7}{_secs(s['uptime_s']):>9}"
              f"{_secs(s['idle_s']):>8}{s['rss_gib'] or '-':>9}  {s['last_error'] or ''}")
    return 0


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}s"


def _is_loopback(host: str) -> bool:
    try:
        return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
    except (OSError, ValueError):
        return False


def _calibrate(args: argparse.Namespace) -> int:
    from llm_router import calibrate

    config = load_config(args.config)
    try:
        found = calibrate.from_prompts(config, args.prompts, args.share) if args.prompts else calibrate.from_histogram(config, args.share)
        if args.write:
            calibrate.write(config, found.threshold)
    except calibrate.CalibrationError as exc:
        print(f"llm-router: {exc}", file=sys.stderr)
        return 1
    print(f"threshold {found.threshold}: sends {found.share:.1%} of {found.scores:,} scored requests to routing.complex "
          f"(scores from {found.source})")
    print(calibrate.config_line(found.threshold))
    if args.write:
        print(f"wrote it into {config.path}; a running gateway takes it with `llm-router reload`")
    return 0


_COMMANDS = {"serve": _serve, "check": _check, "keys": _keys, "start": _start, "stop": _stop, "status": _status, "prepare": _prepare,
             "reload": _reload, "calibrate": _calibrate, "usage": _usage}

if __name__ == "__main__":
    sys.exit(main())
