"""Which webhook subscriptions are stagesync's, and where they must point (pure, no I/O).

A shop's deliveries arrive at `<public base>/webhooks/<shop id>`. A subscription whose delivery URL
ends with `/webhooks/<shop id>` is stagesync's for that shop ("ours"), whatever its host: an
older public URL of ours is repaired, never left behind as someone else's. Any other
subscription belongs to someone else and is never changed or removed.
"""

from __future__ import annotations

from urllib.parse import urlsplit

LOOPBACK = ("localhost", "127.0.0.1", "::1")


def delivery_url(public_url: str, shop_id: str) -> str:
    """The URL a platform must deliver `shop_id`'s webhooks to."""
    return f"{public_url.rstrip('/')}/webhooks/{shop_id}"


def is_ours(url: str, shop_id: str) -> bool:
    """True when `url` is stagesync's delivery URL for `shop_id` (any host, any base path)."""
    path = urlsplit(url or "").path.rstrip("/")
    return path.endswith(f"/webhooks/{shop_id}")


def public_url_problem(value: object) -> str | None:
    """Why `value` cannot be a shop's public base URL (None when it can): https://, or http:// on
    loopback only (tests and local runs); no query, no fragment, no /webhooks/ part."""
    if not isinstance(value, str) or not value.strip():
        return "must be a URL such as https://abc.execute-api.eu-west-3.amazonaws.com"
    parts = urlsplit(value.strip())
    if parts.scheme == "http" and (parts.hostname or "") not in LOOPBACK:
        return "must be https:// (http:// only on a loopback address)"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an https:// URL such as https://abc.execute-api.eu-west-3.amazonaws.com"
    if parts.query or parts.fragment:
        return "must have no query or fragment"
    if "/webhooks" in parts.path:
        return "must be the public base only: stagesync appends /webhooks/<shop id>"
    return None
