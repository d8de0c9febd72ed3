"""Who may talk to a server ecomlab starts (`serve`, `dashboard`): loopback by default; any other
address only with an API key (or an explicit `--insecure`).

The key comes from `--api-key` or `$ECOMLAB_API_KEY`; a `--api-key` value is taken out of the
recorded command line at once, like a storage password. Requests carry it as a bearer token
(`Authorization: Bearer KEY`) or, for a browser, as the password of HTTP basic authentication. It is
compared in constant time and never logged or written.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import os
import sys

from experiments.core.errors import EcomlabError

API_KEY_ENV = "ECOMLAB_API_KEY"


def take_api_key(api_key: str | None) -> str | None:
    """The key a server uses: `--api-key` (removed from `sys.argv`), else `$ECOMLAB_API_KEY`."""
    if api_key:
        sys.argv = ["***" if a == api_key else a.replace(api_key, "***") for a in sys.argv]
        return api_key
    return os.environ.get(API_KEY_ENV) or None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, api_key: str | None, insecure: bool, what: str) -> None:
    """Refuse to bind a non-loopback address without a key, unless `--insecure` says so on purpose."""
    if is_loopback(host) or api_key or insecure:
        return
    raise EcomlabError(
        f"{what} on {host} would answer anyone who can reach this machine: give --api-key KEY (or "
        f"${API_KEY_ENV}; clients then send 'Authorization: Bearer KEY'), or --insecure to serve without "
        "one on a network you trust. Without --host it binds 127.0.0.1."
    )


def authorized(header: str | None, api_key: str | None) -> bool:
    """Whether an `Authorization` header carries the key (bearer, or basic auth's password)."""
    if api_key is None:
        return True
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    given = value.strip()
    if scheme.lower() == "basic":
        try:
            given = base64.b64decode(given, validate=True).decode("utf-8").partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return False
    elif scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.encode("utf-8"), api_key.encode("utf-8"))
