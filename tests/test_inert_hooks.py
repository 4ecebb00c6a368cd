"""LiteLLM's proxy hooks with nothing to enforce in llm-router are off; ours and the rest stay on."""

from __future__ import annotations

from llm_router.inert_hooks import INERT_PROXY_HOOKS
from tests.support.configs import core_config
from tests.support.gateway import Gateway


def test_the_inert_litellm_proxy_hooks_are_off_after_requests_while_ours_and_the_others_stay(cloud, tmp_path):
    with Gateway(core_config(tmp_path, cloud.url), {"OPENAI_API_KEY": "sk-test-unused"}) as gw:
        answer = gw.client().chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hello"}])
        active = gw.get("/active/callbacks").json()["all_litellm_callbacks"]
        router_log = (gw.config.parent / "logs" / "router.log").read_text()
    assert answer.choices[0].message.content
    registered = " ".join(active)
    assert [hook.__name__ for hook in INERT_PROXY_HOOKS if hook.__name__ in registered] == []
    assert "RouterHooks" in registered
    assert "ResponsesIDSecurity" in registered  # hooks that could act here are kept
    assert "turned off: " + ", ".join(sorted(h.__name__ for h in INERT_PROXY_HOOKS)) in router_log
