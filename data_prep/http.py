"""HTTP sessions of the crawl: urllib3 ``Retry`` (backoff, ``Retry-After``) and honest User-Agents."""

from __future__ import annotations

RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
# Search engines serve bots a different (or no) page: the Bing source presents a normal browser by
# default (``--user-agent`` changes it). APIs get a User-Agent naming the project and a contact.
BROWSER_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
API_USER_AGENT = "mushroom-id-data-prep/0.2 (research dataset; +https://github.com/; contact: {contact})"


def retry_policy(retries: int, backoff: float):
    """Retries for connection errors, read timeouts and 408/425/429/5xx; waits ``backoff * 2**(n-1)``
    between tries (urllib3 skips the wait before the first retry) or what ``Retry-After`` says."""
    from urllib3.util.retry import Retry

    return Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=0,
        backoff_factor=backoff,
        backoff_max=120,
        status_forcelist=sorted(RETRY_STATUS),
        allowed_methods=frozenset({"GET", "HEAD"}),
        respect_retry_after_header=True,
        raise_on_status=False,  # the last response comes back: its status is the drop reason
    )


def mount_retries(session, retries: int, backoff: float, pool_size: int = 32):
    from requests.adapters import HTTPAdapter

    adapter = HTTPAdapter(
        max_retries=retry_policy(retries, backoff), pool_connections=pool_size, pool_maxsize=pool_size
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def api_session(contact: str, retries: int = 4, backoff: float = 1.0, timeout: float = 30.0, limiter=None):
    """A requests session for JSON APIs: retries, a contact in the User-Agent, a timeout, a rate limiter."""
    import requests

    class _Session(requests.Session):
        def request(self, method, url, **kwargs):
            if limiter is not None:
                limiter.wait(url)
            kwargs.setdefault("timeout", timeout)
            return super().request(method, url, **kwargs)

    session = mount_retries(_Session(), retries, backoff)
    session.headers["User-Agent"] = API_USER_AGENT.format(contact=contact or "none given")
    session.headers["Accept"] = "application/json"
    return session
