"""The difficulty score in `auto`: what it reads, how the threshold and the share move decisions, a key's own
setting, calibration, and where the score shows (explain, metrics, the status page).

In-process first (a Gateway object, nothing started), then one real gateway for what crosses HTTP. No test
here asserts a quality figure: those belong to the bench (bench/routing_quality.py).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from bench import routing_data
from bench.difficulty_training import feature_matrix
from llm_router import calibrate
from router_config.gateway_config import ConfigError, DifficultySetting, load_config
from router_plugins.access import MASTER, Caller, Role
from router_plugins.conversation import Shape
from router_plugins.difficulty import DifficultyModel, DifficultyScorer, WordVectors, shipped_scorer
from router_plugins.gateway import Gateway as InProcess
from router_plugins.keys import KeyFileError, KeyStore, TeamKey, hash_key
from tests.support.configs import core_config
from tests.support.gateway import Gateway
from tests.support.prompts import EASY as EASY_TURNS
from tests.support.prompts import HARD

EASY = EASY_TURNS[0]
SYSTEM = "You are a careful coding agent. Follow the repository's conventions. " * 80  # ~5,000 characters, as agents send
TOOLS = [{"type": "function", "function": {"name": "read_file", "description": "Read a file of the repository. " * 50,
                                           "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}}]


def _config(tmp_path, routing_extra: str = "", complexity: str = "{max_chars: 2000}"):
    """The core config, its local model's window wide enough for an agent's system prompt (the context rule stays out)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = core_config(tmp_path, "http://127.0.0.1:9")
    text = config.read_text().replace("max_input_tokens: 300}", "max_input_tokens: 30000}")
    config.write_text(text.replace("complexity: {max_chars: 2000}", f"complexity: {complexity}" + (f"\n  {routing_extra}" if routing_extra else "")))
    return config


@pytest.fixture
def gateway(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-difficulty-0001")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-difficulty-0001")
    return InProcess(load_config(_config(tmp_path)))


def _gateway_with(tmp_path, monkeypatch, routing_extra: str = "", complexity: str = "{max_chars: 2000}") -> InProcess:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-difficulty-0002")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-difficulty-0002")
    return InProcess(load_config(_config(tmp_path, routing_extra, complexity)))


def _bodies(text: str) -> dict[Shape, dict]:
    return {
        Shape.CHAT: {"model": "auto", "messages": [{"role": "user", "content": text}]},
        Shape.RESPONSES: {"model": "auto", "input": [{"role": "user", "content": [{"type": "input_text", "text": text}]}]},
        Shape.MESSAGES: {"model": "auto", "max_tokens": 100, "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}]},
    }


def _decide(gw: InProcess, body: dict, shape: Shape = Shape.CHAT, caller: Caller = MASTER):
    return gw.router.decide(body, shape, gw.availability_for(caller), difficulty=caller.difficulty)


# ---- the score ---------------------------------------------------------------------------------------


def test_the_score_is_the_same_on_chat_responses_and_messages_for_the_same_text(gateway):
    scores = {shape: _decide(gateway, body, shape).signals.difficulty for shape, body in _bodies(HARD).items()}
    assert len(set(scores.values())) == 1 and 0 < scores[Shape.CHAT] < 1


def test_the_score_is_deterministic_across_processes():
    code = f"from router_plugins.difficulty import shipped_scorer; print(repr(shipped_scorer().score({HARD!r})))"
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout for _ in range(2)}
    assert runs == {repr(shipped_scorer().score(HARD)) + "\n"}


def test_the_folded_scorer_is_the_trained_head_applied_to_the_features():
    """What runs in the gateway (one number per word) is exactly what training fitted (a head over features)."""
    words = WordVectors.load()
    model = DifficultyModel.from_json((routing_data.DATA.parents[2] / "router_plugins" / "difficulty_model.json").read_text())
    scorer = DifficultyScorer(model, words)
    prompts = [HARD, EASY, "", "Ünïcödé ½ ∑ 12345 ...", "word " * 900]
    heads = [1 / (1 + np.exp(-model.raw(x))) for x in feature_matrix(prompts, words)]
    assert np.allclose([scorer.score(p) for p in prompts], heads, rtol=0, atol=1e-12)


def test_the_prompts_other_tests_route_by_are_clear_of_the_default_threshold(gateway):
    threshold = gateway.router.threshold
    assert _decide(gateway, _bodies(HARD)[Shape.CHAT]).signals.difficulty > threshold + 0.1
    assert all(_decide(gateway, _bodies(t)[Shape.CHAT]).signals.difficulty < threshold - 0.05 for t in EASY_TURNS)


def test_a_harder_request_scores_higher_than_a_greeting(gateway):
    hard, easy = (_decide(gateway, _bodies(t)[Shape.CHAT]).signals.difficulty for t in (HARD, EASY))
    assert hard > easy


def test_the_system_prompt_and_tool_definitions_are_not_scored(gateway):
    bare = _decide(gateway, _bodies(HARD)[Shape.CHAT]).signals
    agent = _decide(gateway, {"model": "auto", "tools": TOOLS,
                              "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": HARD}]}).signals
    assert agent.difficulty == bare.difficulty and agent.chars > 5000 and agent.user_chars == len(HARD)


def test_a_clients_tagged_context_and_tool_results_are_not_the_users_words(gateway):
    """Claude Code sends <system-reminder> text parts in user turns; tool results come back in user turns too."""
    bare = _decide(gateway, _bodies(HARD)[Shape.MESSAGES], Shape.MESSAGES).signals.difficulty
    reminder = {"type": "text", "text": "<system-reminder>\n" + "Attribution and environment notes. " * 40 + "\n</system-reminder>"}
    body = {"model": "auto", "max_tokens": 100, "system": SYSTEM, "tools": [{"name": "read_file", "input_schema": {"type": "object"}}],
            "messages": [{"role": "user", "content": [reminder, {"type": "text", "text": HARD}]},
                         {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "read_file", "input": {}}]},
                         {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "x = 1\n" * 300}]}]}
    assert _decide(gateway, body, Shape.MESSAGES).signals.difficulty == bare


def test_a_follow_up_is_scored_with_the_first_user_turn(gateway):
    follow_up = {"model": "auto", "messages": [{"role": "user", "content": HARD}, {"role": "assistant", "content": "Here is a proof."},
                                               {"role": "user", "content": "thanks"}]}
    alone = _decide(gateway, _bodies("thanks")[Shape.CHAT]).signals.difficulty
    assert _decide(gateway, follow_up).signals.difficulty > alone


def test_the_length_rule_measures_the_users_words_by_default(gateway):
    body = {"model": "auto", "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": EASY}]}
    decision = _decide(gateway, body)
    assert decision.reason == "default" and decision.signals.difficulty is not None


def test_the_length_rule_can_measure_the_whole_prompt(tmp_path, monkeypatch):
    gw = _gateway_with(tmp_path, monkeypatch, complexity="{max_chars: 2000, length_of: prompt}")
    body = {"model": "auto", "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": EASY}]}
    decision = _decide(gw, body)
    assert decision.reason == "complex" and decision.signals.difficulty is None


def test_long_user_words_are_complex_by_length_and_not_scored(gateway):
    decision = _decide(gateway, _bodies("tell me about it. " * 150)[Shape.CHAT])
    assert decision.reason in ("complex", "context") and decision.signals.difficulty is None


# ---- the threshold, the share and a key's own --------------------------------------------------------


def test_a_request_at_the_threshold_is_complex_and_just_below_it_default(tmp_path, monkeypatch, gateway):
    score = _decide(gateway, _bodies(HARD)[Shape.CHAT]).signals.difficulty
    at = _gateway_with(tmp_path / "at", monkeypatch, f"difficulty: {{threshold: {score}}}")
    above = _gateway_with(tmp_path / "above", monkeypatch, f"difficulty: {{threshold: {score + 0.0001:.4f}}}")
    assert (_decide(at, _bodies(HARD)[Shape.CHAT]).model, _decide(at, _bodies(HARD)[Shape.CHAT]).reason) == ("claude-sonnet", "complex")
    assert (_decide(above, _bodies(HARD)[Shape.CHAT]).model, _decide(above, _bodies(HARD)[Shape.CHAT]).reason) == ("local-text", "default")


@pytest.mark.parametrize("threshold, reason", [(0.0, "complex"), (1.0, "default")])
def test_the_threshold_sends_every_text_request_up_or_none(tmp_path, monkeypatch, threshold, reason):
    gw = _gateway_with(tmp_path, monkeypatch, f"difficulty: {{threshold: {threshold}}}")
    assert {_decide(gw, _bodies(t)[Shape.CHAT]).reason for t in (HARD, EASY)} == {reason}


def test_a_larger_share_is_a_lower_threshold(tmp_path, monkeypatch):
    thresholds = [_gateway_with(tmp_path / str(share), monkeypatch, f"difficulty: {{share: {share}}}").router.threshold
                  for share in (0.1, 0.25, 0.5)]
    assert thresholds == sorted(thresholds, reverse=True) and len(set(thresholds)) == 3


def test_no_setting_is_the_default_share(gateway):
    assert gateway.router.threshold == gateway.router.scorer.model.threshold_for_share(0.25)


def test_a_threshold_and_a_share_together_are_refused_at_load(tmp_path):
    with pytest.raises(ConfigError) as raised:
        load_config(_config(tmp_path, "difficulty: {threshold: 0.3, share: 0.2}"))
    assert "routing.difficulty" in str(raised.value) and "either threshold or share" in str(raised.value)


@pytest.mark.parametrize("value", ["{threshold: 1.5}", "{share: -0.1}", "{cutoff: 0.2}", "0.3"])
def test_a_bad_difficulty_setting_is_refused_at_load(tmp_path, value):
    with pytest.raises(ConfigError) as raised:
        load_config(_config(tmp_path, f"difficulty: {value}"))
    assert "routing.difficulty" in str(raised.value)


def test_a_keys_own_threshold_wins_over_the_configs(gateway):
    eager = Caller(Role.TEAM, TeamKey("eager", "t", "0" * 64, difficulty=DifficultySetting(threshold=0.0)))
    frugal = Caller(Role.TEAM, TeamKey("frugal", "t", "1" * 64, difficulty=DifficultySetting(threshold=1.0)))
    assert _decide(gateway, _bodies(EASY)[Shape.CHAT], caller=eager).reason == "complex"
    assert _decide(gateway, _bodies(HARD)[Shape.CHAT], caller=frugal).reason == "default"
    assert _decide(gateway, _bodies(HARD)[Shape.CHAT], caller=frugal).signals.difficulty_threshold == 1.0


def test_the_keys_file_keeps_a_keys_own_share(tmp_path):
    store = KeyStore(tmp_path / "keys.yaml")
    key = store.add("alice", "research", difficulty=DifficultySetting(share=0.4))
    store.set_difficulty("alice", DifficultySetting(threshold=0.3))
    assert KeyStore(tmp_path / "keys.yaml").lookup(key).difficulty == DifficultySetting(threshold=0.3)
    store.set_difficulty("alice", None)
    assert KeyStore(tmp_path / "keys.yaml").lookup(key).difficulty is None


def test_a_bad_difficulty_in_the_keys_file_names_the_key_and_the_fix(tmp_path):
    (tmp_path / "keys.yaml").write_text(f"keys: [{{name: bob, team: t, sha256: {hash_key('sk-llmr-x')}, difficulty: {{share: 7}}}}]\n")
    with pytest.raises(KeyFileError) as raised:
        KeyStore(tmp_path / "keys.yaml").lookup("sk-llmr-x")
    assert "key 'bob'" in str(raised.value) and "llm-router keys difficulty bob" in str(raised.value)


def _cli(*args: str, cwd=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llm_router.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_keys_add_and_keys_difficulty_set_a_keys_own_share(tmp_path):
    config = core_config(tmp_path, "http://127.0.0.1:9", keys_file=True)
    added = _cli("keys", "add", "alice", "--team", "research", "--share", "0.4", "--config", str(config))
    assert added.returncode == 0, added.stderr
    assert "difficulty=share=0.4" in _cli("keys", "list", "--config", str(config)).stdout
    assert _cli("keys", "difficulty", "alice", "--threshold", "0.3", "--config", str(config)).returncode == 0
    assert "difficulty=threshold=0.3" in _cli("keys", "list", "--config", str(config)).stdout
    refused = _cli("keys", "difficulty", "alice", "--share", "2", "--config", str(config))
    assert refused.returncode == 2 and "not between 0 and 1" in refused.stderr


# ---- calibration -----------------------------------------------------------------------------------------


def _held_out_files(tmp_path):
    """Two disjoint halves of the bench's labelled prompts, one to calibrate on and one to check against."""
    prompts = [p for s in routing_data.all_sets() for p in s.prompts]
    rng = np.random.default_rng(7)
    order = rng.permutation(len(prompts))[:6000]
    fit, check = tmp_path / "fit.jsonl", tmp_path / "check.jsonl"
    fit.write_text("".join(json.dumps({"prompt": prompts[i]}) + "\n" for i in order[:3000]))
    check.write_text("".join(json.dumps({"model": "auto", "messages": [{"role": "user", "content": prompts[i]}]}) + "\n"
                             for i in order[3000:]))
    return fit, check


@pytest.mark.parametrize("share", [0.1, 0.25, 0.5])
def test_calibrate_hits_the_target_share_within_two_points_on_a_held_out_file(tmp_path, share):
    config = load_config(_config(tmp_path))
    fit, check = _held_out_files(tmp_path)
    found = calibrate.from_prompts(config, fit, share)
    scores = list(calibrate._scores_of(config, (json.loads(line) for line in check.read_text().splitlines())))
    sent = sum(s >= found.threshold for s in scores) / len(scores)
    assert abs(sent - share) <= 0.02, (share, sent, found)


def test_calibrate_from_a_histogram_interpolates_within_a_bucket():
    buckets = [(0.1, 10.0), (0.2, 50.0), (0.3, 90.0), (1.0, 100.0), (float("inf"), 100.0)]
    threshold, total = calibrate.threshold_from_histogram(buckets, 0.3)
    assert total == 100 and threshold == pytest.approx(0.25)


def test_calibrate_write_sets_the_threshold_and_the_config_still_loads(tmp_path):
    config = _config(tmp_path, "difficulty: {share: 0.25}")
    fit, _ = _held_out_files(tmp_path)
    done = _cli("calibrate", "--share", "0.2", "--prompts", str(fit), "--write", "--config", str(config))
    assert done.returncode == 0, done.stderr
    threshold = float(done.stdout.split()[1].rstrip(":"))
    assert "difficulty: {threshold:" in done.stdout
    assert load_config(config).routing.difficulty == DifficultySetting(threshold=threshold)
    assert "share: 0.25" not in config.read_text() and "max_chars: 2000" in config.read_text()


@pytest.mark.parametrize("content, error", [("not json\n", "not JSON"), ('{"model": "auto", "messages": []}\n', "no prompt in it")])
def test_calibrate_on_a_file_it_cant_use_says_why(tmp_path, content, error):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(content)
    done = _cli("calibrate", "--share", "0.2", "--prompts", str(prompts), "--config", str(_config(tmp_path)))
    assert done.returncode == 1 and error in done.stderr and "Traceback" not in done.stderr


# ---- through a gateway: explain, metrics, the status page and calibrate from the histogram ---------------

MASTER_KEY = "sk-master-difficulty-0001"
TEAM_KEY = "sk-llmr-difficulty-team-0001"


@pytest.fixture(scope="module")
def live(cloud, tmp_path_factory):
    folder = tmp_path_factory.mktemp("difficulty")
    config = core_config(folder, cloud.url, keys_file=True, extra_llm_router="metrics_public: true")
    (folder / "keys.yaml").write_text(f"keys: [{{name: eager, team: t, sha256: {hash_key(TEAM_KEY)}, difficulty: {{threshold: 0.0}}}}]\n")
    env = {"OPENAI_API_KEY": "sk-test-difficulty-live", "ANTHROPIC_API_KEY": "sk-ant-test-difficulty-live", "LLM_ROUTER_MASTER_KEY": MASTER_KEY}
    with Gateway(config, env, workers=2) as gw:
        for text in (HARD, EASY, "What is 2+2?", "Summarize the causes of World War I.") * 3:
            assert gw.post("/v1/chat/completions", _bodies(text)[Shape.CHAT], key=MASTER_KEY).status_code == 200
        yield gw


def test_explain_shows_the_score_and_the_threshold_beside_it(live):
    signals = live.post("/v1/router/explain", _bodies(HARD)[Shape.CHAT], key=MASTER_KEY).json()["signals"]
    assert signals["difficulty"] == round(shipped_scorer().score(HARD), 4)
    assert 0 < signals["difficulty_threshold"] < 1 and signals["chars"] == len(HARD)


def test_explain_shows_a_keys_own_threshold(live):
    answer = live.post("/v1/router/explain", _bodies(EASY)[Shape.CHAT], key=TEAM_KEY).json()
    assert answer["signals"]["difficulty_threshold"] == 0.0 and answer["reason"] == "complex"


def test_the_metrics_histogram_holds_the_scores_of_every_worker(live):
    scrape = live.get("/metrics/").text  # LiteLLM mounts the scrape at /metrics/
    count = next(line for line in scrape.splitlines() if line.startswith("llm_router_difficulty_count"))
    assert float(count.split()[-1]) >= 12


def test_the_status_page_data_holds_the_strong_share(live):
    auto = live.get("/v1/router/status", key=MASTER_KEY).json()["auto"]
    assert auto["decisions"] >= 12 and 0 < auto["strong"] < auto["decisions"] and auto["strong_share"] == round(auto["strong"] / auto["decisions"], 3)


def test_calibrate_reads_the_gateways_histogram(live):
    done = _cli("calibrate", "--share", "0.5", "--config", str(live.config))
    assert done.returncode == 0, done.stderr
    assert "llm_router_difficulty" in done.stdout and 0 < float(done.stdout.split()[1].rstrip(":")) < 1


# ---- the bench's data ----------------------------------------------------------------------------------


def test_the_bench_data_loader_drops_contaminated_prompts():
    for data, name, kept in ((routing_data.mt_bench(), "mt_bench", 72), (routing_data.gsm8k(), "gsm8k", 1307),
                             (routing_data.mmlu(), "mmlu", 14037)):
        contaminated = {json.loads(line)["eval_prompt"] for line in (routing_data.DATA / f"{name}_contaminated.jsonl").read_text().splitlines()}
        assert len(data.items) == kept and not contaminated & set(data.prompts), name
