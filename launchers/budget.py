"""The memory budget: which local servers may hold memory at the same time."""

from __future__ import annotations

from collections.abc import Iterable

from router_config.gateway_config import MemoryBudget
from router_config.spec import LaunchSpec


def never_fits(budget: MemoryBudget, spec: LaunchSpec) -> str | None:
    """Why the server could never fit the budget, even alone; None if it can."""
    gpu_cap = budget.gpu_gib.get(spec.memory.gpu_device)
    if spec.memory.gpu_gib and gpu_cap is not None and spec.memory.gpu_gib > gpu_cap:
        return f"needs {spec.memory.gpu_gib:g} GiB on GPU {spec.memory.gpu_device}, budget is {gpu_cap:g} GiB"
    if spec.memory.host_gib and budget.host_gib is not None and spec.memory.host_gib > budget.host_gib:
        return f"needs {spec.memory.host_gib:g} GiB host memory, budget is {budget.host_gib:g} GiB"
    return None


def fits_beside(budget: MemoryBudget, spec: LaunchSpec, holding: Iterable[LaunchSpec]) -> bool:
    """Whether `spec` fits next to the servers that hold memory now."""
    holding = list(holding)
    mem = spec.memory
    cap = budget.gpu_gib.get(mem.gpu_device)
    if mem.gpu_gib and cap is not None:
        used = sum(s.memory.gpu_gib for s in holding if s.memory.gpu_device == mem.gpu_device)
        if used + mem.gpu_gib > cap:
            return False
    if mem.host_gib and budget.host_gib is not None:
        if sum(s.memory.host_gib for s in holding) + mem.host_gib > budget.host_gib:
            return False
    return True


def competes(spec: LaunchSpec, other: LaunchSpec) -> bool:
    """Whether stopping `other` frees memory that `spec` needs."""
    same_gpu = spec.memory.gpu_gib and other.memory.gpu_gib and spec.memory.gpu_device == other.memory.gpu_device
    return bool(same_gpu or (spec.memory.host_gib and other.memory.host_gib))
