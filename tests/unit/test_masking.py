"""Emails echoed in a vendor's answer never reach a log or an error whole, however they are written."""

from __future__ import annotations

import json

import pytest

from connector.errors import scrub


@pytest.mark.parametrize("text, hidden", [
    ('refused "alice smith"@example.com', "alice smith"),
    ("alice+tag@sub.example.co.uk is not allowed", "alice+tag"),
    ("To: <alice@example.com>", "alice@"),
    ("GET /v1/contacts?email=alice%40example.com&limit=1", "alice%40"),
    ("GET /v1/contacts/alice%2Btag%40example.com", "alice%2Btag"),
    (json.dumps({"error": "unknown contact alice@example.com"}, ensure_ascii=True), "alice@"),
    ('{"email": "alice\\u0040example.com"}', "alice\\u0040"),
    ('{"error": "\\"alice smith\\"@example.com is invalid"}', "alice smith"),
    ("contact alice&#64;example.com", "alice&#64;"),
    ("ALICE.SMITH@EXAMPLE.COM", "ALICE.SMITH"),
])
def test_scrub_masks_quoted_tagged_bracketed_and_encoded_addresses(text, hidden):
    scrubbed = scrub(text)
    assert hidden not in scrubbed and "***" in scrubbed


def test_scrub_keeps_the_rest_of_the_message():
    assert scrub("GET /v1/contacts?email=alice%40example.com&limit=1 -> 404") == \
        "GET /v1/contacts?email=al***@ex***.com&limit=1 -> 404"
    assert scrub("no address here, 12 @ 3 and a@b") == "no address here, 12 @ 3 and a@b"
