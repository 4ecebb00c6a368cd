"""The gateway's configuration: typed, validated once at load, importable from every layer.

This package is the leaf of llm-router's import graph: it imports nothing from `launchers`,
`router_plugins` or `llm_router`, which all build on it.
"""
