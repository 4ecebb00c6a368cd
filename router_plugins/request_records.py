"""What llm-router learns about each request while LiteLLM handles it, kept beside the request.

Keyed by LiteLLM's call id, which the pre-call hook, every attempt, the failure hook and the
response-headers hook all see. Nothing of ours goes into the request itself: on the Responses
and Messages routes LiteLLM forwards the client's `metadata` to the provider. Bounded, so a
request whose end is never reported can't grow it forever.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from router_plugins.errors import ApiError
from router_plugins.output_budget import OutputBudget

_MEMORY = 10_000


@dataclass(frozen=True)
class Decision:
    model: str
    reason: str
    tier: str | None = None
    """The tier `auto` routed at; None for an explicit name."""


@dataclass(frozen=True)
class Attempt:
    group: str
    why: str
    unavailable: bool
    """True when the backend couldn't take the request (no key, not started, rate limited, not allowed)."""


@dataclass
class RequestRecord:
    requested: str | None = None
    """The model the client asked for (before routing), once the pre-call hook has seen the request."""
    began_at: float = 0.0
    accounted: bool = False
    """Its spend-ledger row is written (or being written): a request's end may be reported twice."""
    decision: Decision | None = None
    attempts: list[Attempt] = field(default_factory=list)
    answer: ApiError | None = None
    """The error the failure hook made of this request's failure, until the door has sent it."""
    output_budget: OutputBudget | None = None
    """The output budget of the attempt that lowered the request's reserved output, if one did."""


class RequestRecords:
    def __init__(self, memory: int = _MEMORY) -> None:
        self._records: OrderedDict[str, RequestRecord] = OrderedDict()
        self._lock = threading.Lock()
        self._memory = memory

    def began(self, call_id: str, requested: str) -> None:
        """A request reached LiteLLM's pre-call hook, asking for `requested`: one the gateway accounts for."""
        with self._lock:
            record = self._record(call_id)
            record.requested, record.began_at = requested, time.time()

    def decided(self, call_id: str, decision: Decision) -> None:
        with self._lock:
            self._record(call_id).decision = decision

    def decision(self, call_id: str) -> Decision | None:
        with self._lock:
            record = self._records.get(call_id)
            return record.decision if record else None

    def record(self, call_id: str) -> RequestRecord:
        """What is known of the request so far (an empty record for one never seen)."""
        with self._lock:
            return self._records.get(call_id) or RequestRecord()

    def lowered_output(self, call_id: str, budget: OutputBudget) -> None:
        with self._lock:
            self._record(call_id).output_budget = budget

    def attempted(self, call_id: str, attempt: Attempt) -> None:
        with self._lock:
            attempts = self._record(call_id).attempts
            if not attempts or attempts[-1] != attempt:
                attempts.append(attempt)

    def failed_on(self, call_id: str, group: str) -> bool:
        """Whether an attempt of this request at `group` has already failed."""
        with self._lock:
            record = self._records.get(call_id)
            return record is not None and any(a.group == group for a in record.attempts)

    def last_attempted_group(self, call_id: str) -> str | None:
        """The group this request's last failed attempt was at, if any."""
        with self._lock:
            record = self._records.get(call_id)
            return record.attempts[-1].group if record and record.attempts else None

    def failed_with(self, call_id: str, error: ApiError) -> None:
        """Keep the error a failed request is to be answered with: LiteLLM's Messages route doesn't
        take it from the failure hook, so the door puts it on the answer itself."""
        with self._lock:
            self._record(call_id).answer = error

    def take_answer(self, call_id: str) -> ApiError | None:
        with self._lock:
            record = self._records.pop(call_id, None)
            return record.answer if record else None

    def finish(self, call_id: str) -> RequestRecord:
        """The request's record, forgotten from now on."""
        with self._lock:
            return self._records.pop(call_id, None) or RequestRecord()

    def _record(self, call_id: str) -> RequestRecord:
        record = self._records.get(call_id)
        if record is None:
            record = self._records[call_id] = RequestRecord()
            while len(self._records) > self._memory:
                self._records.popitem(last=False)
        else:
            self._records.move_to_end(call_id)
        return record
