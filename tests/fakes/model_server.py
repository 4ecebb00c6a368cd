"""Stand-in for a vLLM OpenAI-compatible server, meant to run as a real subprocess.

    python tests/fakes/model_server.py --port 8100 --served-model-name local-small \
        [--host 127.0.0.1] [--start-delay S] [--crash-on-start] [--die-after-requests N]
        [--ignore-sigterm] [--spawn-child] [--response-delay S] [--pid-file PATH] [--record-requests PATH]
        [--max-model-len N]

Like vLLM it binds its port only once "ready", exits 0 on SIGTERM and answers
/health, /v1/models, /v1/chat/completions, /v1/completions and /v1/responses; like vLLM without its
opt-in response store, it answers 404 to a Responses request naming a previous_response_id.
With --record-requests it appends every POST it receives to PATH, one JSON line each
({"path", "headers", "body"}, the fake cloud's RecordedRequest fields), so a test can read
what a gateway sent to a local model. With --max-model-len it refuses, as vLLM does, a request whose
input (counted crudely, words and JSON punctuation) plus the output it reserves exceeds N tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

try:
    from . import _common as wire
    from . import handler
except ImportError:  # run as a script
    import _common as wire  # type: ignore[no-redef]
    import handler  # type: ignore[no-redef]


def log(line: str, *, err: bool = False) -> None:
    print(line, file=sys.stderr if err else sys.stdout, flush=True)


class _Terminated(BaseException):
    """Raised in the main thread by the SIGTERM handler to unwind serve_forever.

    A BaseException because socketserver swallows `Exception`s raised while it
    dispatches a request, which would turn a SIGTERM into a logged traceback.
    """


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


def _ignore_sigterm(signum: int, frame: FrameType | None) -> None:
    # os.write, not print: a print here could re-enter a print the main thread is in.
    os.write(2, b"WARNING ignoring SIGTERM (--ignore-sigterm)\n")


class ModelServer(handler.FakeHTTPServer):
    def __init__(self, address: tuple[str, int], args: argparse.Namespace) -> None:
        super().__init__(address, _ModelHandler)
        self.model_name: str = args.served_model_name
        self.response_delay: float = args.response_delay
        self.die_after: int | None = args.die_after_requests
        self.record_to: Path | None = args.record_requests
        self.max_model_len: int | None = args.max_model_len
        self._answered = 0
        self._count_lock = threading.Lock()
        self._record_lock = threading.Lock()

    def record(self, path: str, headers: dict[str, str], body: Any) -> None:
        if self.record_to is None:
            return
        line = json.dumps({"path": path, "headers": headers, "body": body}) + "\n"
        with self._record_lock, open(self.record_to, "a") as f:  # whole lines, also under concurrent requests
            f.write(line)

    def chat_answered(self) -> None:
        with self._count_lock:
            self._answered += 1
            if self.die_after is not None and self._answered >= self.die_after:
                log(f"ERROR simulated crash after {self._answered} chat requests", err=True)
                os._exit(1)


class _ModelHandler(handler.FakeHandler):
    server: ModelServer

    def do_GET(self) -> None:
        if self.route in ("/health", "/ping"):
            self.send_empty(200)
        elif self.route in ("/v1/models", "/models"):
            self.send_json(200, wire.openai_model_list([self.server.model_name], "vllm"))
        else:
            self.send_json(404, self._error(404, f"Not Found: {self.route}"))

    def do_POST(self) -> None:
        route = self.route
        body = self.read_json()
        self.server.record(route, {name.lower(): value for name, value in self.headers.items()}, body)
        if route not in ("/v1/chat/completions", "/v1/completions", "/v1/responses"):
            self.send_json(404, self._error(404, f"Not Found: {route}"))
            return
        if body is None:
            self.send_json(400, self._error(400, "Request body must be a JSON object."))
            return
        model = body.get("model")
        if model != self.server.model_name:
            self.send_json(404, self._error(404, f"The model `{model}` does not exist."))
            return
        if route == "/v1/completions":
            prompt = body.get("prompt")
            prompt_text = prompt if isinstance(prompt, str) else " ".join(map(str, prompt or []))
            text = f"local:{model} says: {prompt_text[: wire.USER_TEXT_CAP]}"
            self.send_json(200, wire.openai_text_completion(model, text, wire.count_tokens(prompt_text)))
            return

        if route == "/v1/responses" and body.get("previous_response_id") is not None:
            # vLLM keeps no responses unless VLLM_ENABLE_RESPONSES_API_STORE is set (off by default).
            self.send_json(404, self._error(404, f"Response with id '{body['previous_response_id']}' not found."))
            return
        too_long = self._over_window(body)
        if too_long:
            self.send_json(400, self._error(400, too_long))
            return
        if self.server.response_delay:
            time.sleep(self.server.response_delay)
        said = handler.responses_text(body) if route == "/v1/responses" else handler.chat_text(body)
        # Tests see every system prompt the server got, to tell whose prompt won and whether two arrived.
        text = f"local:{model} says: {said}" + "".join(f" [system: {p[:wire.USER_TEXT_CAP]}]" for p in _system_prompts(route, body))
        if route == "/v1/responses":
            self.send_openai_response(model, text, body)
        else:
            self.send_openai_chat(model, text, body)
        self.server.chat_answered()

    def _over_window(self, body: dict[str, Any]) -> str | None:
        """vLLM's refusal of a request whose input plus reserved output exceeds the window; None if it fits."""
        window = self.server.max_model_len
        reserved = next((body[f] for f in ("max_tokens", "max_completion_tokens", "max_output_tokens") if isinstance(body.get(f), int)), None)
        if window is None or reserved is None:
            return None
        prompt = {f: body.get(f) for f in ("messages", "input", "instructions", "tools") if body.get(f) is not None}
        used = wire.count_tokens(json.dumps(prompt).replace('"', " ").replace(",", " "))
        if used + reserved <= window:
            return None
        return (f"'max_tokens' or 'max_completion_tokens' is too large: {reserved}. This model's maximum context length is "
                f"{window} tokens and your request has {used} input tokens ({reserved} > {window} - {used}).")

    @staticmethod
    def _error(status: int, message: str) -> dict[str, Any]:
        # vLLM's shape: the exception class name as type, the HTTP status as code.
        names = {400: "BadRequestError", 404: "NotFoundError"}
        return {"error": {"message": message, "type": names.get(status, "InternalServerError"), "param": None, "code": status}}


def _system_prompts(route: str, body: dict[str, Any]) -> list[str]:
    """Chat system/developer messages; on the Responses API, `instructions` and then system/developer `input` items."""
    items = body.get("input" if route == "/v1/responses" else "messages")
    prompts = [body.get("instructions")] if route == "/v1/responses" else []
    prompts += [wire.text_of(m.get("content")) for m in (items if isinstance(items, list) else [])
                if isinstance(m, dict) and m.get("role") in ("system", "developer")]
    return [p for p in prompts if isinstance(p, str) and p]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Fake vLLM OpenAI-compatible server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--served-model-name", required=True)
    parser.add_argument("--start-delay", type=float, default=0.0, help="seconds to wait before binding the port")
    parser.add_argument("--crash-on-start", action="store_true", help="log a FATAL line and exit 3")
    parser.add_argument("--die-after-requests", type=int, default=None, help="os._exit(1) after N chat answers")
    parser.add_argument("--ignore-sigterm", action="store_true")
    parser.add_argument("--spawn-child", action="store_true", help="start a long-lived child in the same process group")
    parser.add_argument("--response-delay", type=float, default=0.0, help="seconds to wait in each chat request")
    parser.add_argument("--pid-file", type=Path, default=None)
    parser.add_argument("--record-requests", type=Path, default=None, help="append each POST received to this file as a JSON line")
    parser.add_argument("--max-model-len", type=int, default=None, help="refuse input + max_tokens beyond N tokens, as vLLM does")
    return parser.parse_args(argv)


def _stop_child(child: subprocess.Popen[bytes] | None) -> None:
    if child is None or child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(timeout=2)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    name = args.served_model_name
    signal.signal(signal.SIGTERM, _ignore_sigterm if args.ignore_sigterm else _raise_terminated)
    log(f"INFO starting fake model server {name} on port {args.port} (pid {os.getpid()})")

    child: subprocess.Popen[bytes] | None = None
    server: ModelServer | None = None
    try:
        if args.start_delay > 0:
            log(f"INFO loading model {name} ({args.start_delay:g} s)")
            time.sleep(args.start_delay)
        if args.crash_on_start:
            log(f"INFO loading model weights for {name}", err=True)
            log("ERROR torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", err=True)
            log("ERROR engine core initialization failed", err=True)
            log("FATAL: simulated start failure: CUDA out of memory", err=True)
            return 3
        if args.spawn_child:
            # Same session and process group as us, like vLLM's engine-core processes.
            child = subprocess.Popen(
                [sys.executable, "-c", "import time; time.sleep(3600)"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            log(f"INFO spawned engine child pid {child.pid}")
        try:
            server = ModelServer((args.host, args.port), args)
        except OSError as exc:
            log(f"FATAL: cannot bind {args.host}:{args.port}: {exc}", err=True)
            _stop_child(child)
            return 1
        if args.pid_file is not None:
            tmp = args.pid_file.with_name(args.pid_file.name + ".tmp")
            tmp.write_text(f"{os.getpid()}\n")
            tmp.replace(args.pid_file)
        log(f"INFO listening on http://{args.host}:{server.server_address[1]}")
        log("INFO ready")
        server.serve_forever(poll_interval=0.1)
    except (_Terminated, KeyboardInterrupt):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not abort the cleanup
        log("INFO received shutdown signal, shutting down")
    finally:
        if server is not None:
            server.server_close()
        _stop_child(child)
    log("INFO stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
