"""The dashboard's "Data requests" card and the JSON download that answers one request.

Kept beside the dashboard (connector/web/dashboard.py registers it) so that the page shows every
privacy data request the platform sent, newest first, and the store owner can download a
customer's stored data as `stagesync requests --export ID` prints it.
"""

from __future__ import annotations

import json
from typing import Callable

from flask import Blueprint, abort, current_app

from connector.config import ShopSettings
from connector.errors import UserError
from connector.services.data_requests import export_request, list_requests
from connector.web.context import get_store

REQUESTS_SHOWN = 20


def requests_card(shop: ShopSettings) -> dict:
    """What the card shows: the newest requests (identities masked by the template) and the total."""
    shown, total = list_requests(get_store(), shop, limit=REQUESTS_SHOWN)
    return {"shown": shown, "total": total}


def register(blueprint: Blueprint, shop_of: Callable[[str], ShopSettings]) -> None:
    """Add `GET /dashboard/<shop_id>/requests/<id>.json` to the (admin-only) dashboard blueprint."""

    def download(shop_id: str, request_row: int):
        shop = shop_of(shop_id)
        try:
            data = export_request(get_store(), shop, request_row, current_app.extensions["stagesync"]["clock"]())
        except UserError as exc:
            abort(404, description=str(exc))
        return current_app.response_class(json.dumps(data, indent=1), mimetype="application/json", headers={
            "Content-Disposition": f'attachment; filename="{shop.id}-data-request-{request_row}.json"',
            "Cache-Control": "no-store"})

    blueprint.add_url_rule("/dashboard/<shop_id>/requests/<int:request_row>.json", "data_request", download)
