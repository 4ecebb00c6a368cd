"""Record what each real client sends: `uv run python -m tests.clients.record` rewrites tests/clients/corpus/.

Each client (tests/clients/agents.py) runs its conversations through the recorder, in front of
the fake cloud, with `model: auto`. One JSON file per client holds every request it made:
method, path with its query string, headers without credentials, and the body, as sent. Run it
again whenever a client's pinned version changes, and commit the result: the door's rules are
checked against this corpus (tests/test_client_corpus.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.clients.agents import CLI_CLIENTS, SDK_CLIENTS, Endpoint
from tests.clients.recorder import Recorder
from tests.fakes.cloud import FakeCloud

CORPUS_DIR = Path(__file__).resolve().parent / "corpus"
_KEY = "sk-recording-only"


def record(name: str) -> list[dict]:
    with FakeCloud() as cloud, Recorder(cloud.url) as recorder:
        endpoint = Endpoint(recorder.url, _KEY, "auto")
        if name in CLI_CLIENTS:
            client = CLI_CLIENTS[name]()
            client.ask(endpoint, "What is the capital of France?")
            client.ask(endpoint, "And of Italy?", follow_up=True)
        else:
            client = SDK_CLIENTS[name]()
            client.ask(endpoint, "What is the capital of France?")
            client.ask(endpoint, "And of Italy?", follow_up=True)
            client.ask(endpoint, "Tell me a story.", stream=True)
            client.ask(endpoint, "What's the weather in Paris?", tool=True)
        return [call.as_json() for call in recorder.calls]


def main(argv: list[str]) -> None:
    CORPUS_DIR.mkdir(exist_ok=True)
    for name in argv or [*CLI_CLIENTS, *SDK_CLIENTS]:
        calls = record(name)
        (CORPUS_DIR / f"{name}.json").write_text(json.dumps(calls, indent=1, ensure_ascii=False) + "\n")
        print(f"{name}: {len(calls)} requests")


if __name__ == "__main__":
    main(sys.argv[1:])
