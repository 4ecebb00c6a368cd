#!/usr/bin/env bash
# Verify a shipped GPU launch spec end to end, on a machine with an NVIDIA GPU, CUDA vLLM on PATH
# (`pip install vllm` in its own venv) and the model's weights in the local Hugging Face cache.
#
#   launchers/gpu_check.sh [MODEL]          # MODEL: qwen3-14b (default) or qwen2.5-vl-7b
#
# It starts the gateway on a spare port, asks MODEL through it (the launcher starts vLLM on
# demand), prints the answer and the launcher's status, then stops everything.
set -euo pipefail
MODEL=${1:-qwen3-14b}
PORT=${PORT:-8090}
cd "$(dirname "$0")/.."

uv run llm-router check
nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv
uv run llm-router serve --port "$PORT" &
GATEWAY=$!
trap 'kill -TERM $GATEWAY 2>/dev/null; wait $GATEWAY 2>/dev/null || true' EXIT
for _ in $(seq 60); do curl -sf "http://127.0.0.1:$PORT/health/liveliness" >/dev/null && break; sleep 1; done

if [ "$MODEL" = "qwen2.5-vl-7b" ]; then
    PNG="iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    CONTENT='[{"type":"text","text":"What colour is this image?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,'$PNG'"}}]'
else
    CONTENT='"What is the capital of France? Answer in one sentence."'
fi
time curl -sS --max-time 900 "http://127.0.0.1:$PORT/v1/chat/completions" -H 'content-type: application/json' \
    -d '{"model":"'"$MODEL"'","max_tokens":64,"messages":[{"role":"user","content":'"$CONTENT"'}]}' -D - 
echo
uv run llm-router status
