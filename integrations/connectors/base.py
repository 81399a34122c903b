"""What every store connector shares: an httpx client that respects rate limits and retries transient failures
with exponential backoff, and the page type a sync consumes."""

import datetime as dt
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from django.conf import settings

logger = logging.getLogger(__name__)


class ConnectorError(Exception):
    """A call to the store failed. ``message`` is written for the merchant; ``is_transient`` says whether trying
    again later may help (a timeout, a 5xx, a throttle) or not (bad credentials, a wrong address)."""

    def __init__(self, message: str, *, is_transient: bool, status_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.is_transient = is_transient
        self.status_code = status_code


@dataclass(frozen=True, kw_only=True)
class RecordError:
    resource: str
    external_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class Page:
    records: list[Any]
    next_cursor: str | None  # None: this was the last page
    errors: list[RecordError] = field(default_factory=list)
    max_updated_at: dt.datetime | None = None
    total_pages: int | None = None


def backoff_seconds() -> float:
    return float(getattr(settings, "INTEGRATIONS_BACKOFF_SECONDS", 1.0))


def http_attempts() -> int:
    return int(getattr(settings, "INTEGRATIONS_HTTP_ATTEMPTS", 4))


def parse_retry_after(value: str | None, default: float) -> float:
    if not value:
        return default
    try:
        return max(0.0, min(float(value), 60.0))
    except ValueError:
        return default


def parse_datetime(value: Any, *, assume_utc: bool = True) -> dt.datetime | None:
    if not value:
        return None
    text = str(value).replace("Z", "+00:00")
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None and assume_utc:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


def isoformat_utc(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class HttpClient:
    """httpx with the retry policy of every connector:

    - 429: wait ``Retry-After`` seconds (the platform's own pacing), up to ``max_throttles`` times;
    - 5xx, timeouts, connection errors: exponential backoff with jitter, ``http_attempts()`` tries in all;
    - 401/403/404 and other 4xx: fail at once with a plain-words message (retrying cannot help).
    """

    def __init__(
        self,
        *,
        base_url: str,
        headers: dict[str, str] | None = None,
        auth: Any = None,
        timeout: float = 20.0,
        sleep: Callable[[float], None] = time.sleep,
        max_throttles: int = 10,
    ):
        self.base_url = base_url.rstrip("/")
        self.client = httpx.Client(base_url=self.base_url, headers=headers or {}, auth=auth, timeout=timeout)
        self.sleep = sleep
        self.max_throttles = max_throttles
        self.waits: list[float] = []  # every pause taken, for the run's log

    def close(self) -> None:
        self.client.close()

    def pause(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.sleep(seconds)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        attempts = http_attempts()
        failures = 0
        throttles = 0
        while True:
            try:
                response = self.client.request(method, path, **kwargs)
            except httpx.TimeoutException:
                failures += 1
                problem = f"The store at {self.base_url} did not answer in time."
                if failures >= attempts:
                    raise ConnectorError(problem, is_transient=True) from None
            except httpx.TransportError as error:
                failures += 1
                problem = f"Could not reach {self.base_url}: is the address right and the store online? ({error})"
                if failures >= attempts:
                    raise ConnectorError(problem, is_transient=True) from None
            else:
                if response.status_code == 429:
                    throttles += 1
                    if throttles > self.max_throttles:
                        raise ConnectorError(
                            "The store kept rate-limiting us; will try again later.", is_transient=True, status_code=429
                        )
                    self.pause(parse_retry_after(response.headers.get("Retry-After"), backoff_seconds()))
                    continue
                if response.status_code >= 500:
                    failures += 1
                    if failures >= attempts:
                        raise ConnectorError(
                            f"The store answered with a server error ({response.status_code}) "
                            f"{failures} times in a row.",
                            is_transient=True,
                            status_code=response.status_code,
                        )
                elif response.status_code in (401, 403):
                    raise ConnectorError(
                        self.auth_message(response), is_transient=False, status_code=response.status_code
                    )
                elif response.status_code == 404:
                    raise ConnectorError(
                        f"{self.base_url} answered, but {path} was not found: check the store address "
                        f"(and, for WooCommerce, that pretty permalinks are on).",
                        is_transient=False,
                        status_code=404,
                    )
                elif response.status_code >= 400:
                    raise ConnectorError(
                        f"The store refused the request ({response.status_code}): {response.text[:200]}",
                        is_transient=False,
                        status_code=response.status_code,
                    )
                else:
                    return response
            delay = backoff_seconds() * (2 ** (failures - 1)) * (1 + random.random() / 4)  # noqa: S311
            logger.info("retrying %s %s in %.2fs (failure %s)", method, path, delay, failures)
            self.pause(delay)

    def auth_message(self, response: httpx.Response) -> str:
        return f"The store refused our credentials ({response.status_code})."
