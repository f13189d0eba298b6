"""What the HTTP tests send through Flask's test client: a signed delivery to a shop's webhook
route, and the admin token's bearer header (the token of `shops_toml`)."""

from __future__ import annotations

from tests.fakes.senders import ADMIN_TOKEN, Delivery

BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def deliver(client, shop_id: str, delivery: Delivery, **headers):
    """POST the delivery's signed body to /webhooks/<shop_id>; `headers` are added to its own."""
    return client.post(f"/webhooks/{shop_id}", data=delivery.body, headers={**delivery.headers, **headers})
