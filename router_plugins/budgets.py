"""Budgets: the dollars per day, week or month a team key, and its team, may spend on priced models.

A key's budget and its team's are in the keys file (router_plugins/keys.py). What has been spent is
the spend ledger's (router_plugins/state/spend.py): every worker's requests once their rows commit,
other replicas' as Redis brings their daily totals (about a second). So concurrency can overshoot a
budget by the requests in flight when it was reached, and, across replicas, by what the others
finished within that second.

Past its budget, a key (every key of a team past the team's) may still use free models: the
priced groups are unavailable to it, with the reason OVER_BUDGET. `auto` then routes to a free
group (reason `budget`); a request that names a priced model, or that no free group can serve,
gets 429 `insufficient_quota`, which clients don't retry; no fallback hop goes to a priced group.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from router_config.gateway_config import Deployment, GatewayConfig, SpendLimit
from router_plugins import metrics
from router_plugins.access import OVER_BUDGET
from router_plugins.accounting import rates_of
from router_plugins.errors import ApiError
from router_plugins.keys import KeyStore, TeamKey
from router_plugins.state import periods
from router_plugins.state.spend import Scope, SpendLedger

__all__ = ["OVER_BUDGET", "BudgetStanding", "Budgets", "REMAINING_HEADER"]
REMAINING_HEADER = "x-llm-router-budget-remaining"


@dataclass(frozen=True)
class BudgetStanding:
    """Where one budget stands now."""

    scope: Scope
    name: str
    """The key's name, or the team."""
    limit: SpendLimit
    spent: float
    resets_at: dt.datetime

    @property
    def remaining(self) -> float:
        return max(0.0, self.limit.usd - self.spent)

    @property
    def exhausted(self) -> bool:
        return self.spent >= self.limit.usd

    @property
    def share_used(self) -> float:
        return self.spent / self.limit.usd

    def refusal(self) -> ApiError:
        """The 429 a request for a priced model gets past this budget."""
        whose = f"This key's ({self.name})" if self.scope == "key" else f"Team {self.name}'s"
        resets = self.resets_at.strftime("%Y-%m-%d %H:%M %Z")
        return ApiError(429, f"{whose} budget of {self.limit} is spent (${self.spent:.2f}); it resets at {resets}. "
                             "Free models still answer (model 'auto' routes to them); ask an admin to raise the budget "
                             f"(llm-router keys budget{' --team' if self.scope == 'team' else ''} {self.name} ...).",
                        kind="insufficient_quota", code="insufficient_quota", retryable=False)


class Budgets:
    def __init__(self, config: GatewayConfig, ledger: SpendLedger, keys: KeyStore | None) -> None:
        self._ledger = ledger
        self._keys = keys
        self.reload(config)

    def reload(self, config: GatewayConfig) -> None:
        self._priced = frozenset(group for group in config.groups if any(_is_priced(d) for d in config.deployments_of(group)))

    def is_priced(self, group: str) -> bool:
        """Whether a group costs money: a deployment with a price, configured or in LiteLLM's cost map (or unknown to it)."""
        return group in self._priced

    def standing(self, key: TeamKey | None, now: float | None = None) -> BudgetStanding | None:
        """The tighter of the key's budget and its team's (the one with less left), or None when neither has one.
        Each budget's share used goes to the llm_router_budget_used_ratio metric."""
        if key is None:
            return None
        standings = []
        for scope, name, limit in (("key", key.name, key.budget), ("team", key.team, self._keys.team_budget(key.team) if self._keys else None)):
            if limit is None:
                continue
            window = periods.current(limit.period, self._ledger.settings.zone, now)
            spent = self._ledger.spent(scope, name, limit.period, now)  # type: ignore[arg-type]
            standing = BudgetStanding(scope, name, limit, spent, window.resets_at)  # type: ignore[arg-type]
            metrics.budget_used(scope, name, standing.share_used)
            standings.append(standing)
        return min(standings, key=lambda s: s.remaining) if standings else None


def _is_priced(deployment: Deployment) -> bool:
    rates = rates_of(deployment)
    return rates is None or rates != (0.0, 0.0)
