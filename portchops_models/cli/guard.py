"""Confirmation for destructive commands: loopback endpoints are free, others need ``--yes``.

`portchops migrate down` reverts steps, and reverting drops tables (``--to 0000``
drops every one) or deletes data. Against a local engine that is routine; against
anything else (real AWS when ``PORTCHOPS_ENDPOINT_URL`` is unset, or a shared
engine on another host) it runs only with ``--yes``. Loopback means
``127.0.0.0/8``, ``::1`` and ``localhost``.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

__all__ = ["is_loopback"]


def is_loopback(endpoint_url: str | None) -> bool:
    """True if the endpoint is on this machine's loopback; False for AWS (``None``).

    Examples:
        >>> is_loopback("http://127.0.0.2:8000"), is_loopback("http://[::1]:8000")
        (True, True)
        >>> is_loopback("http://localhost:8000"), is_loopback(None)
        (True, False)
        >>> is_loopback("http://10.0.0.5:8000"), is_loopback("http://127.0.0.1.example.com")
        (False, False)
    """
    if endpoint_url is None:
        return False
    host = (urlsplit(endpoint_url).hostname or "").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost: it may resolve anywhere
