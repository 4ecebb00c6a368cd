"""The real clients a team points at the gateway, each driven as its users drive it.

Claude Code and Codex are the pinned npm CLIs in tests/clients/package.json (`npm ci --prefix
tests/clients`, which .ci/run does), run non-interactively; the OpenAI Agents SDK and LangChain's
`ChatOpenAI` and `ChatAnthropic` are the pinned dev dependencies in pyproject.toml. Every client
gets the same four conversations: one question, a follow-up in the same conversation, a streamed
answer, and a tool round trip (the fakes call the first tool offered and answer the tool's result in
text, `tool said: ...`). Nothing leaves the machine: each client's telemetry and updates are off.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLIENTS_DIR = Path(__file__).resolve().parent
NODE_BIN = CLIENTS_DIR / "node_modules" / ".bin"
_CLI_TIMEOUT_S = 180


@dataclass(frozen=True)
class Endpoint:
    """Where a client is pointed: a gateway's (or the recorder's) base URL, without /v1."""

    url: str
    key: str
    model: str


@dataclass(frozen=True)
class Answer:
    text: str
    """What the client printed or returned as the model's final answer."""


class ClientFailed(AssertionError):
    pass


# ---- the agent CLIs ------------------------------------------------------------------------


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=_CLI_TIMEOUT_S, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise ClientFailed(f"{Path(argv[0]).name} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return done.stdout.strip()


def _base_env(home: Path) -> dict[str, str]:
    """A clean environment: no credentials or proxies of the machine's, a home of the client's own."""
    return {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8", "NO_COLOR": "1"}


class ClaudeCode:
    """Anthropic's Claude Code CLI (`claude -p`): the Messages API, streaming, with its own tools."""

    name = "claude-code"

    def __init__(self, workdir: Path | None = None) -> None:
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="claude-code-"))

    def ask(self, endpoint: Endpoint, prompt: str, *, follow_up: bool = False) -> Answer:
        """One turn; follow_up continues the last conversation in this client's folder (`--continue`)."""
        env = {**_base_env(self.workdir), "ANTHROPIC_BASE_URL": endpoint.url, "ANTHROPIC_API_KEY": endpoint.key,
               "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1",
               "DISABLE_ERROR_REPORTING": "1", "CLAUDE_CODE_MAX_RETRIES": "0"}
        argv = [str(NODE_BIN / "claude"), "-p", prompt, "--model", endpoint.model, *(["--continue"] if follow_up else [])]
        return Answer(_run(argv, env, self.workdir))


class Codex:
    """OpenAI's Codex CLI (`codex exec`): the Responses API, streaming, with its shell tool."""

    name = "codex"

    def __init__(self, workdir: Path | None = None) -> None:
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="codex-"))

    def ask(self, endpoint: Endpoint, prompt: str, *, follow_up: bool = False) -> Answer:
        """One turn; follow_up resumes the last session (`codex exec resume --last`)."""
        home = self.workdir / ".codex"
        home.mkdir(exist_ok=True)
        (home / "config.toml").write_text(
            f'model = "{endpoint.model}"\nmodel_provider = "router"\n'
            f'[model_providers.router]\nname = "llm-router"\nbase_url = "{endpoint.url}/v1"\nenv_key = "ROUTER_KEY"\n'
            'wire_api = "responses"\nrequest_max_retries = 0\nstream_max_retries = 0\n'
            '[analytics]\nenabled = false\n')
        env = {**_base_env(self.workdir), "CODEX_HOME": str(home), "ROUTER_KEY": endpoint.key}
        resume = ["resume", "--last"] if follow_up else []
        argv = [str(NODE_BIN / "codex"), "exec", *resume, "--skip-git-repo-check", prompt]
        return Answer(_run(argv, env, self.workdir))


# ---- the Python SDKs -------------------------------------------------------------------------


class AgentsSdk:
    """The OpenAI Agents SDK: an Agent on the Responses API, with a function tool.

    chained: the server keeps the conversation. A follow-up sends only its own input with the last
    answer's id as `previous_response_id`, and within a run (a tool round trip) the SDK chains each
    model call to the last one (`auto_previous_response_id`). Otherwise the SDK resends the history."""

    name = "openai-agents"

    def __init__(self, chained: bool = False) -> None:
        self._history: list[Any] = []
        self._chained = chained
        self.last_response_id: str | None = None

    def ask(self, endpoint: Endpoint, prompt: str, *, follow_up: bool = False, stream: bool = False, tool: bool = False) -> Answer:
        return asyncio.run(self._ask(endpoint, prompt, follow_up, stream, tool))

    async def _ask(self, endpoint: Endpoint, prompt: str, follow_up: bool, stream: bool, tool: bool) -> Answer:
        import agents
        from openai import AsyncOpenAI

        agents.set_tracing_disabled(True)
        client = AsyncOpenAI(base_url=f"{endpoint.url}/v1", api_key=endpoint.key, max_retries=0, timeout=120)

        @agents.function_tool
        def weather(city: str) -> str:
            """The weather in a city."""
            return f"sunny in {city}"

        # Greedy: a small real model sampled at random can ramble to its output limit, which the SDK takes as an error.
        agent = agents.Agent(name="assistant", instructions="Answer briefly.", tools=[weather] if tool else [],
                             model=agents.OpenAIResponsesModel(endpoint.model, client), model_settings=agents.ModelSettings(temperature=0))
        run_input: Any = [*self._history, {"role": "user", "content": prompt}] if follow_up and not self._chained else prompt
        chaining: dict[str, Any] = {}
        if self._chained:
            chaining = {"previous_response_id": self.last_response_id if follow_up else None, "auto_previous_response_id": True}
        if stream:
            result = agents.Runner.run_streamed(agent, run_input, **chaining)
            async for _ in result.stream_events():
                pass
        else:
            result = await agents.Runner.run(agent, run_input, **chaining)
        self._history = result.to_input_list()
        self.last_response_id = result.last_response_id
        await client.close()
        return Answer(str(result.final_output))


class LangChain:
    """LangChain's chat models: `ChatOpenAI` (chat completions) or `ChatAnthropic` (Messages)."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.name = f"langchain-{provider}"
        self._history: list[Any] = []

    def model(self, endpoint: Endpoint, **kw: Any) -> Any:
        if self.provider == "openai":
            from langchain_openai import ChatOpenAI

            return ChatOpenAI(model=endpoint.model, base_url=f"{endpoint.url}/v1", api_key=endpoint.key, max_retries=0, timeout=120, **kw)
        from langchain_anthropic import ChatAnthropic

        # LangChain's own default for a model it doesn't know: a large max_tokens, as real Messages clients send.
        return ChatAnthropic(model=endpoint.model, base_url=endpoint.url, api_key=endpoint.key, max_retries=0, timeout=120, **kw)

    def ask(self, endpoint: Endpoint, prompt: str, *, follow_up: bool = False, stream: bool = False, tool: bool = False) -> Answer:
        from langchain_core.messages import HumanMessage, ToolMessage
        from langchain_core.tools import tool as make_tool

        @make_tool
        def weather(city: str) -> str:
            """The weather in a city."""
            return f"sunny in {city}"

        chat = self.model(endpoint)
        if tool:
            chat = chat.bind_tools([weather])
        messages = [*(self._history if follow_up else []), HumanMessage(prompt)]
        reply = _stream_whole(chat, messages) if stream else chat.invoke(messages)
        messages.append(reply)
        if tool:
            for call in reply.tool_calls:
                messages.append(ToolMessage(weather.invoke(call["args"]), tool_call_id=call["id"]))
            reply = chat.invoke(messages)
            messages.append(reply)
        self._history = messages
        return Answer(_text_of(reply.content))


def _stream_whole(chat: Any, messages: list[Any]) -> Any:
    whole = None
    for chunk in chat.stream(messages):
        whole = chunk if whole is None else whole + chunk
    if whole is None:
        raise ClientFailed("the stream ended without a chunk")
    return whole


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


ClientFactory = Callable[[], Any]
CLI_CLIENTS: dict[str, ClientFactory] = {"claude-code": ClaudeCode, "codex": Codex}
SDK_CLIENTS: dict[str, ClientFactory] = {
    "openai-agents": AgentsSdk,
    "langchain-openai": lambda: LangChain("openai"),
    "langchain-anthropic": lambda: LangChain("anthropic"),
}
