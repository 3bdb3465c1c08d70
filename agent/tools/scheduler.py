"""Adaptive concurrency over one or more model endpoints.

Each endpoint (one base URL, with a model per role) has an AIMD limit: slow start (+1 per success)
until the first congestion signal, then +1 per window of successes (additive increase); an error or
a latency well above the endpoint's unloaded latency cuts it (multiplicative decrease), at most
once per round trip. Every model call takes a slot on the endpoint with the shortest expected wait;
the sum of slots in flight never exceeds the run's cap. Transient server errors are retried with
backoff (tenacity) on whichever endpoint is best at the time; errors a retry cannot fix (401, 404)
are raised at once.

When no endpoint accepts connections at all after one has answered in this run (the server
stopped or is restarting), that is not a failed call: the calls wait with backoff, `waiting` says so for the progress message, and they go
on when a server answers again — only after `server_wait` seconds of silence do they give up
(`ServerGone`).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import httpx
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from pydantic import BaseModel
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential_jitter

from agent.llm import LLMBadOutput, LLMError, LLMUnavailable, friendly_error, structured_call

T = TypeVar("T", bound=BaseModel)
R = TypeVar("R")
CallRole = Literal["generate", "judge"]
WAITING = "The model server is not answering; waiting for it to come back…"


class ServerGone(LLMUnavailable):
    """No endpoint accepted a connection for `server_wait` seconds."""


class AIMD:
    """An additive-increase, multiplicative-decrease limit in [1, cap]."""

    def __init__(
        self,
        start: float,
        cap: int,
        *,
        decrease: float = 0.5,
        latency_decrease: float = 0.8,
        tolerance: float = 2.0,
    ) -> None:
        self.cap = max(1, cap)
        self.limit = float(min(max(1.0, start), self.cap))
        self.decrease = decrease
        self.latency_decrease = latency_decrease
        self.tolerance = tolerance
        self.slow_start = True
        self.base: float | None = None  # the unloaded latency: a slowly rising minimum
        self.recent: float | None = None  # EWMA of latency
        self._quiet_until = 0.0
        self.decreases = 0
        self.samples: deque[float] = deque(maxlen=5)  # the last few latencies
        self.updated = 0.0  # when the last one was measured

    def estimate(self, now: float) -> float:
        """The latency a new call should expect, for choosing between endpoints.

        The median of the last few replies, so one slow reply (a cold start, a noisy neighbour)
        does not count for long; and while an endpoint gets no calls because another looks faster,
        its excess over `base` halves every few unloaded round trips, so it is tried again soon
        instead of starving on an old measurement (the idea of Finagle's peak-EWMA balancer).
        """
        if not self.samples or self.base is None:
            return 0.0
        excess = max(0.0, statistics.median(self.samples) - self.base)
        half_life = max(0.05, 4 * self.base)
        return self.base + excess * 0.5 ** (max(0.0, now - self.updated) / half_life)

    def _cut(self, factor: float) -> None:
        now = time.monotonic()
        if now < self._quiet_until:
            return  # one cut per round trip: a burst of errors is one signal
        self.limit = max(1.0, self.limit * factor)
        self.slow_start = False
        self.decreases += 1
        self._quiet_until = now + (self.recent or 0.1)

    def on_success(self, latency: float, *, alone: bool = False) -> None:
        self.recent = latency if self.recent is None else 0.8 * self.recent + 0.2 * latency
        self.samples.append(latency)
        self.updated = time.monotonic()
        if self.base is None or alone:
            self.base = latency  # a call with nothing else in flight measures the unloaded latency
        else:  # the minimum creeps up slowly, so a server that got slower for good is re-learnt
            self.base = min(self.base * 1.0005, latency)
        if self.recent > self.tolerance * self.base and self.limit > 1:
            self._cut(self.latency_decrease)
            return
        step = 1.0 if self.slow_start else 1.0 / self.limit
        self.limit = min(float(self.cap), self.limit + step)

    def on_error(self) -> None:
        self._cut(self.decrease)


@dataclass
class Endpoint:
    """One server: its models by role, its limit and its load."""

    name: str
    models: dict[str, BaseChatModel]
    limiter: AIMD
    in_flight: int = 0
    errors: int = 0
    calls: int = 0
    down_until: float = 0.0
    unreachable_since: float | None = None  # refusing connections since; None once it answers
    _strikes: int = field(default=0, repr=False)

    def expected_wait(self, now: float) -> float:
        return (self.in_flight + 1) * self.limiter.estimate(now) / max(1.0, self.limiter.limit)


def _status(exc: BaseException | None) -> int | None:
    if exc is None:
        return None
    status = getattr(exc, "status_code", None) or getattr(
        getattr(exc, "response", None), "status_code", None
    )
    return status if isinstance(status, int) else None


def is_transient(exc: BaseException) -> bool:
    """Server trouble a retry may fix (timeouts, refused connections, 429, 5xx); not 4xx or bad output."""
    if not isinstance(exc, LLMError) or isinstance(exc, LLMBadOutput):
        return False
    cause = exc.__cause__
    status = _status(cause)
    if status is not None and 400 <= status < 500 and status not in (408, 429):
        return False
    return "not found" not in str(cause or "").lower()


def is_unreachable(exc: BaseException | None) -> bool:
    """Nothing listens at the server's address: connection refused or a connect timeout."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        names = {c.__name__ for c in type(exc).__mro__}
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | ConnectionRefusedError):
            return True
        if type(exc) is ConnectionError:  # how the ollama client re-raises httpx.ConnectError
            return True
        if "APIConnectionError" in names and "APITimeoutError" not in names:  # openai's client
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class Scheduler:
    """Hands out slots on endpoints and makes structured calls through them."""

    def __init__(
        self,
        endpoints: Sequence[dict[str, BaseChatModel]],
        *,
        cap: int,
        start: int,
        server_retries: int = 5,
        max_wait: float = 20.0,
        server_wait: float = 600.0,
    ) -> None:
        if not endpoints:
            raise ValueError("at least one endpoint is needed")
        self.cap = max(1, cap)
        share = max(1, round(start / len(endpoints)))
        self.endpoints = [
            Endpoint(name=f"endpoint-{i}", models=dict(m), limiter=AIMD(share, self.cap))
            for i, m in enumerate(endpoints)
        ]
        self.server_retries = server_retries
        self.max_wait = max_wait
        self.server_wait = server_wait
        self.answered = False
        """Some server replied during this run (so a refused connection means a restart)."""
        self.in_flight = 0
        self.retries = 0
        self._cond = asyncio.Condition()
        self._queued = 0  # calls waiting in `_acquire` for a slot

    @property
    def level(self) -> float:
        """The current adaptive level: the sum of the endpoints' limits, within the cap."""
        return min(float(self.cap), sum(e.limiter.limit for e in self.endpoints))

    def down_for(self) -> float | None:
        """Seconds since the last endpoint stopped accepting connections; None while one answers."""
        since = [e.unreachable_since for e in self.endpoints]
        if any(t is None for t in since):
            return None
        return time.monotonic() - max(t for t in since if t is not None)

    @property
    def waiting(self) -> str | None:
        """A sentence for the progress message while no server accepts connections."""
        return WAITING if self.down_for() is not None else None

    def _pick(self) -> Endpoint | None:
        if self.in_flight >= self.cap:
            return None
        now = time.monotonic()
        open_ = [e for e in self.endpoints if e.in_flight < int(e.limiter.limit)]
        up = [e for e in open_ if e.down_until <= now]
        if not up:
            # every endpoint is resting after errors: still let one call through to probe
            up = [e for e in open_ if e.in_flight == 0][:1] if self.in_flight == 0 else []
        return min(up, key=lambda e: e.expected_wait(now), default=None)

    async def _acquire(self) -> Endpoint:
        async with self._cond:
            self._queued += 1
            try:
                while (ep := self._pick()) is None:
                    try:
                        async with asyncio.timeout(0.5):  # a resting endpoint may be up again
                            await self._cond.wait()
                    except TimeoutError:
                        pass
            finally:
                self._queued -= 1
            ep.in_flight += 1
            self.in_flight += 1
            return ep

    async def _release(self, ep: Endpoint) -> None:
        async with self._cond:
            ep.in_flight -= 1
            self.in_flight -= 1
            self._cond.notify_all()
        if self._queued:
            # A call waits for this slot with its request ready: let it go out before the caller
            # goes on to its own bookkeeping, so the server is not left idle meanwhile.
            await asyncio.sleep(0)

    async def _once(self, role: CallRole, call: Callable[[BaseChatModel], Awaitable[R]]) -> R:
        ep = await self._acquire()
        alone = ep.in_flight == 1
        started = time.monotonic()
        try:
            out = await call(ep.models[role])
        except LLMBadOutput:
            ep.calls += 1
            ep.unreachable_since = None
            self.answered = True
            # the server was fine, the reply was not
            ep.limiter.on_success(time.monotonic() - started, alone=alone)
            raise
        except LLMError as exc:
            ep.calls += 1
            ep.errors += 1
            if is_unreachable(exc):
                # nobody listening is no sign of load: keep the limit for when it is back
                ep.unreachable_since = ep.unreachable_since or time.monotonic()
            else:
                ep.unreachable_since = None if _status(exc.__cause__) else ep.unreachable_since
                ep.limiter.on_error()
            if is_transient(exc) and _status(exc.__cause__) is None:
                # unreachable (no HTTP status): rest this endpoint, longer each time
                ep._strikes += 1
                ep.down_until = time.monotonic() + min(self.max_wait, 0.25 * 2**ep._strikes)
            raise
        finally:
            await self._release(ep)
        ep.calls += 1
        ep._strikes, ep.down_until, ep.unreachable_since = 0, 0.0, None
        self.answered = True
        ep.limiter.on_success(time.monotonic() - started, alone=alone)
        return out

    async def _retrying(self, role: CallRole, call: Callable[[BaseChatModel], Awaitable[R]]) -> R:
        failures = 0  # attempts that reached a server: the retry budget counts only those

        def stop(state: RetryCallState) -> bool:
            nonlocal failures
            exc = state.outcome.exception() if state.outcome else None
            down = self.down_for()
            # Wait only for a server that answered in this run (restarting); one that was never
            # up is a setup problem the user should hear about at once.
            if is_unreachable(exc) and down is not None and self.answered:
                if down >= self.server_wait:
                    raise ServerGone(
                        f"The model server is not answering (waited {_duration(down)})"
                    ) from exc
                return False
            failures += 1
            return failures >= self.server_retries

        wait_busy = wait_exponential_jitter(multiplier=0.2, max=self.max_wait)
        wait_down = wait_exponential_jitter(multiplier=0.2, max=min(self.max_wait, 5.0), jitter=0.5)

        def wait(state: RetryCallState) -> float:
            # a server that is down is probed often, so the run goes on soon after it is back
            exc = state.outcome.exception() if state.outcome else None
            return wait_down(state) if is_unreachable(exc) else wait_busy(state)

        async for attempt in AsyncRetrying(
            stop=stop,
            wait=wait,
            retry=retry_if_exception(is_transient),
            before_sleep=self._count_retry,
            reraise=True,
        ):
            with attempt:
                return await self._once(role, call)
        raise AssertionError("unreachable")  # pragma: no cover

    async def structured(
        self, role: CallRole, schema: type[T], messages: Sequence[BaseMessage]
    ) -> T:
        """A structured call on the best endpoint; transient server errors are retried with backoff."""
        return await self._retrying(role, lambda m: structured_call(m, schema, messages))

    async def text(self, role: CallRole, messages: Sequence[BaseMessage]) -> str:
        """A plain chat completion on the best endpoint (same slots, retries and error sentences)."""

        async def call(model: BaseChatModel) -> str:
            try:
                reply = await model.ainvoke(list(messages))
            except LLMError:
                raise
            except Exception as exc:
                raise friendly_error(exc) from exc
            return str(reply.content)

        return await self._retrying(role, call)

    def _count_retry(self, state: RetryCallState) -> None:
        if self.down_for() is None:  # waiting for a server to come back is not a retry
            self.retries += 1


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"
