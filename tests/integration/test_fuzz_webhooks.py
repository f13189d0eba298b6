"""Fuzzing the webhook receiver: every platform parser, and `POST /webhooks/<shop_id>` on both engines.

Payloads are the documented fixtures (tests/fixtures/<platform>/) mutated field by field (wrong
types, missing keys, huge numbers, NaN/Infinity, negative amounts, weird dates, unicode, nested
junk), or fully random JSON, always correctly signed so that the parser is reached. Properties:
- a parser returns an `Inbound` or raises `PayloadError` with a clear message, nothing else;
- the HTTP answer is 200 or a 400 with a JSON `error` message, never a 5xx;
- a 400, an `ignored` or a `duplicate` changes nothing in the database, and an `accepted` leaves
  it consistent (each order's customer has a state, each state a pending sync: one transaction).

The inputs fuzzing once turned into a 500 are pinned at the end (FOUND_BY_FUZZING), each refused
with a 400 and nothing stored.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings as hypothesis_settings, strategies as st
from sqlalchemy import func, select

from adapters.platforms import PLATFORMS
from connector import config
from connector.web.app import create_app
from connector.errors import PayloadError
from connector.domain.inbound import Inbound, RecordRefund, UpsertOrder
from connector.storage.schema import customers, deliveries, orders, outbox, refunds, stage_changes
from connector.storage.store import Store
from connector.storage.values import money_to_micros, to_micros
from tests.conftest import NOW
from tests.fakes.senders import SECRETS, SENDERS, shops_toml

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
INT64 = 2**63 - 1
FUZZ = hypothesis_settings(max_examples=200, deadline=None, derandomize=False,
                           suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                                  HealthCheck.data_too_large])
HTTP_FUZZ = hypothesis_settings(FUZZ, max_examples=120)


# --- the documented fixtures -------------------------------------------------------------------

def webhook_fixtures(platform: str) -> list[tuple[str, dict]]:
    """(topic, payload) of every webhook fixture of a platform (API answers are not webhooks)."""
    folder = FIXTURES / platform
    found = []
    for path in sorted(folder.rglob("*.json")):
        relative = path.relative_to(folder)
        if relative.parts[0] == "api":
            continue
        payload = json.loads(path.read_text())
        if platform == "standard":
            topic = payload.get("type", relative.stem)
        elif relative.parts[0] == "webhooks":  # bigcommerce: webhooks/store_order_created.json
            topic = payload.get("scope") or relative.stem
        else:  # shopify orders/create.json, woocommerce order.created.json
            topic = str(relative.with_suffix(""))
        found.append((topic, payload))
    return found


FUZZED_PLATFORMS = sorted(name for name in PLATFORMS if webhook_fixtures(name))
HTTP_PLATFORMS = sorted(name for name in FUZZED_PLATFORMS if name in SENDERS)  # body-signed platforms


def signed_headers(platform: str, body: bytes, topic: str) -> dict[str, str]:
    if platform in SENDERS:
        return SENDERS[platform](clock=NOW).signed(body, topic).headers
    return PLATFORMS[platform].sign(body, secret_of(platform), topic=topic)  # a platform added later


def secret_of(platform: str) -> str:
    return SECRETS.get(platform, "fuzz-secret-0123456789")


# --- strategies --------------------------------------------------------------------------------

AMOUNTS = ["NaN", "nan", "Infinity", "-Infinity", "inf", "-0", "-5.00", "-0.01", "0", "0.0000001", " 12.50 ",
           "12,50", "0x10", "1_000", "\u0661\u0662\u0663", "12.5.1", "--1", "+7", "1e-999", "", " ", "1E+3",
           "9223372036854.775807", "999999999999.999999", 0, -1, -0.5, 12.5, 10**12, True, [], {},
           "1e999", "1e30", "99999999999999999999.99", "10000000000000", 10**13, 10**30, 2**63, -(10**30), 1e20]
DATES = ["2025-02-30T00:00:00Z", "2025-13-01", "0000-00-00 00:00:00", "2025-03-14T10:30:00+25:00", "2025-03-14",
         "1970-01-01T00:00:00Z", "2025-03-14T10:30:00.123456789Z", "24:00", "tomorrow", "0001-01-01T00:00:00Z",
         "9999-12-31T23:59:59Z", "0001-01-01T00:00:00-01:00", "2025-03-14T10:30:00 +01:00", "2030-01-01T00:00:00Z",
         "2025-03-14T10:30:00+01", "", 1741948200, "Fri, 14 Mar 2025 10:30:00 +0000",
         "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-05:00", "0001-01-01T05:00:00+14:00"]
TEXTS = ["", " ", "jane@example.com", "JANE@EXAMPLE.COM ", "@", "a@b", "\u00e4@\u00fc.example",
         "\uff21\uff22@example.com", "no-at-sign", "+33 6 12 34 56 78", "0033612345678", "+999999999999999999",
         "06", "+", "\u202e", "\U0001f642" * 40, "a" * 129, "x" * 5000, "placed", "cancelled", "voided", "refunded",
         "deleted", "trash", "checkout-draft", "paid", "partially_refunded", "success", "refund", "EUR", "eur",
         "XXX", "\u20ac", "EURO", "\x00", "nul\x00@example.com", "\ud800@example.com", "\udfff",
         "x" * 320 + "@example.com"]
AMOUNT_KEYS = frozenset({"amount", "total", "total_price", "current_total_price", "refunded", "subtotal",
                         "total_tax", "exchange_rate"})
DATE_KEYS = frozenset({"processed_at", "created_at", "updated_at", "cancelled_at", "placed_at", "date_created_gmt",
                       "date_modified_gmt", "date_paid_gmt", "timestamp"})


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


safe_integers = st.integers(min_value=-(10**12), max_value=10**12)
scalars = st.one_of(
    st.none(), st.booleans(), safe_integers,
    st.sampled_from([0, -1, 1, 2**31, 2**53 + 1, -(2**53)]),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
    st.sampled_from([math.nan, math.inf, -math.inf]),  # written as the NaN / Infinity tokens
    st.sampled_from(AMOUNTS + DATES + TEXTS),
    st.text(max_size=40),
)


def replacement_for(key) -> st.SearchStrategy:
    """A wrong value for `key`, aimed at its kind of field half of the time."""
    if key in AMOUNT_KEYS:
        return st.one_of(st.sampled_from(AMOUNTS), scalars)
    if key in DATE_KEYS:
        return st.one_of(st.sampled_from(DATES), scalars)
    return scalars


junk = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12)
json_values = st.recursive(
    st.none() | st.booleans() | safe_integers | st.floats(allow_nan=False, allow_infinity=False,
                                                         min_value=-1e12, max_value=1e12) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=25)

# Keys the adapters read: mutations aim at them most of the time (the fixtures have many others).
READ_KEYS = frozenset({
    "id", "order_id", "test", "processed_at", "created_at", "updated_at", "cancelled_at", "financial_status",
    "total_price", "total_price_set", "current_total_price", "current_total_price_set", "shop_money",
    "presentment_money", "amount", "currency_code", "currency", "date_paid_gmt", "meta_data", "exchange_rate",
    "email", "contact_email", "phone", "customer", "billing_address", "billing", "refunds", "transactions", "kind",
    "status", "amount_set", "refund_line_items", "subtotal_set", "total_tax_set", "refund_shipping_lines",
    "subtotal_amount_set", "orders_to_redact", "orders_requested", "data_request", "order_edit", "default_address",
    "date_created_gmt", "date_modified_gmt", "total", "customer_id", "type", "data", "placed_at", "refunded",
    "refund_id", "order_ids", "scope", "hash", "store_id", "producer",
})


def is_read(path) -> bool:
    """Whether an adapter may read the field at `path`: every key on the way is one they read."""
    return isinstance(path[-1], str) and all(step in READ_KEYS for step in path if isinstance(step, str))


def paths(value, prefix=()):
    """Every path (a tuple of keys and indexes) to a node below `value`."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield prefix + (key,)
            yield from paths(child, prefix + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield prefix + (index,)
            yield from paths(child, prefix + (index,))


def mutate(data: st.DataObject, payload):
    """The payload with up to 5 field mutations: removed, replaced by junk, or re-typed."""
    payload = json.loads(json.dumps(payload))
    for _ in range(data.draw(st.sampled_from([0, 1, 1, 1, 2, 2, 3, 5]), label="mutations")):
        every = list(paths(payload))
        if not every:
            break
        read = [p for p in every if is_read(p)]
        pool = read if read and data.draw(st.integers(0, 9), label="aim") < 7 else every
        path = data.draw(st.sampled_from(pool), label="path")
        parent = payload
        for step in path[:-1]:
            parent = parent[step]
        key, old = path[-1], parent[path[-1]]
        operation = data.draw(st.sampled_from(["delete", "junk", "scalar", "scalar", "retype"]), label="operation")
        if operation == "delete":
            del parent[key]
        else:
            value = data.draw({"junk": junk, "scalar": replacement_for(key),  # or the same value, wrongly typed
                               "retype": st.sampled_from([[old], {"value": old}, json.dumps(old), None])}[operation],
                              label=operation)
            parent[key] = value
    return payload


def topics(platform: str):
    known = st.sampled_from(list(PLATFORMS[platform].TOPICS))
    return st.one_of(known, known, known, st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1,
                                                  max_size=30))


def encode(payload) -> bytes:
    return json.dumps(payload, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")


@st.composite
def deliveries_for(draw, platform: str):
    """(topic, raw body) of a mutated fixture, a random JSON document, or random bytes."""
    kind = draw(st.sampled_from(["fixture"] * 6 + ["random json", "random bytes"]))
    if kind == "random bytes":
        return draw(topics(platform)), draw(st.binary(max_size=200))
    if kind == "random json":
        document = draw(json_values)
        return draw(topics(platform)), encode(document)
    topic, payload = draw(st.sampled_from(webhook_fixtures(platform)))
    if draw(st.booleans()):
        topic = draw(topics(platform))
    return topic, encode(mutate(draw(st.data()), payload))


# --- properties ----------------------------------------------------------------------------------

# Column sizes of connector/storage/schema.py that a payload's text can reach (PostgreSQL enforces them).
TEXT_LIMITS = {"order_id": 128, "email": 320, "phone": 32, "customer_id": 128, "currency": 3}


def storable(inbound: Inbound) -> None:
    """What the store needs of each action: finite, non-negative amounts that fit 64-bit millionths,
    aware instants that fit 64-bit microseconds, text that fits its column, is valid UTF-8 and has
    no NUL character (PostgreSQL text cannot hold one)."""
    for action in inbound.actions:
        if isinstance(action, UpsertOrder):
            order = action.order
            assert order.placed_at.tzinfo is not None
            for amount in (order.total, order.refunded):
                assert amount.is_finite() and amount >= 0 and money_to_micros(amount) <= INT64, amount
            for moment in (order.placed_at, order.updated_at):
                assert moment is None or abs(to_micros(moment)) <= INT64, moment
            for name, limit in TEXT_LIMITS.items():
                text = getattr(order, name)
                assert text is None or (len(text) <= limit and "\x00" not in text and _utf8(text)), (name, text[:40])
        elif isinstance(action, RecordRefund):
            amount = action.amount
            assert amount.is_finite() and money_to_micros(amount) <= INT64, amount
            assert amount >= 0, amount


def shop_for(platform: str):
    toml = (f'database_url = "sqlite://"\n[[shops]]\nid = "{platform}"\nplatform = "{platform}"\n'
            f'webhook_secret = "{secret_of(platform)}"\ncurrency = "EUR"\n  [[shops.destinations]]\n  type = "log"\n')
    return config.parse(toml, env={}).shops[platform]


def clear(message: str) -> bool:
    return bool(message.strip()) and "\n" not in message and len(message) < 600 and "Traceback" not in message


@pytest.mark.slow
@pytest.mark.parametrize("platform", FUZZED_PLATFORMS)
@FUZZ
@given(data=st.data())
def test_a_parser_returns_actions_or_a_clear_payload_error(platform, data):
    module, shop = PLATFORMS[platform], shop_for(platform)
    topic, body = data.draw(deliveries_for(platform), label="delivery")
    headers = signed_headers(platform, body, topic)
    module.verify(headers, body, shop.webhook_secret, NOW)  # a correct signature: the parser is reached
    try:
        inbound = module.parse(headers, body, shop)
    except PayloadError as exc:
        assert clear(str(exc)), str(exc)
        return
    assert isinstance(inbound, Inbound)
    if inbound.fetch_order_id is None:
        storable(inbound)


WRONG_TYPES = [None, True, -7, 1.5, [], {}, {"nested": [1, {"x": None}]}, "x"]
DELETE = object()


def field_mutations(payload):
    """Every (path, value) of the systematic sweep: each field the adapters read, in turn removed,
    given each wrong type, and each nasty value of its kind."""
    for path in filter(is_read, paths(payload)):
        key = path[-1]
        kind = AMOUNTS if key in AMOUNT_KEYS else DATES if key in DATE_KEYS else TEXTS
        for value in [DELETE, *WRONG_TYPES, *kind]:
            yield path, value


def with_value(payload, path, value):
    copy = json.loads(json.dumps(payload))
    parent = copy
    for step in path[:-1]:
        parent = parent[step]
    if value is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return copy


@pytest.mark.slow
@pytest.mark.parametrize("platform", FUZZED_PLATFORMS)
def test_every_field_of_every_fixture_mutated_in_turn_parses_or_is_a_clear_payload_error(platform):
    module, shop = PLATFORMS[platform], shop_for(platform)
    failures, swept = [], set()
    for topic, payload in webhook_fixtures(platform):
        # Topics one handler parses alike (orders/create, /updated, /paid ...) are swept once.
        handler = getattr(module, "_HANDLERS", {}).get(topic, topic)
        if handler in swept:
            continue
        swept.add(handler)
        for path, value in field_mutations(payload):
            body = encode(with_value(payload, path, value))
            headers = signed_headers(platform, body, topic)
            try:
                inbound = module.parse(headers, body, shop)
                if inbound.fetch_order_id is None:
                    storable(inbound)
            except PayloadError as exc:
                if not clear(str(exc)):
                    failures.append((topic, path, value, f"unclear message {str(exc)!r}"))
            except Exception as exc:  # noqa: BLE001 - collected, so that one run lists them all
                failures.append((topic, path, value, f"{type(exc).__name__}: {exc}"[:200]))
    assert not failures, f"{len(failures)} mutation(s) crash the parser, e.g.:\n" + "\n".join(
        f"  {topic} {'.'.join(map(str, path))} = {'<deleted>' if value is DELETE else repr(value)[:60]}: {why}"
        for topic, path, value, why in failures[:15])


# --- over HTTP, on both engines ------------------------------------------------------------------

TABLES = (orders, refunds, customers, stage_changes, deliveries, outbox)


@pytest.fixture
def http(database_url):
    settings = config.parse(shops_toml(database_url), env={})
    store = Store.open(database_url)
    yield create_app(settings, store=store, clock=lambda: NOW).test_client(), store
    store.close()


def counts(store: Store) -> dict[str, int]:
    with store.read() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in TABLES}


def consistent(store: Store) -> None:
    """The one-transaction rule, as seen from outside: every stored order's customer has a state,
    and every state a sync entry (no sync runs here, so none was consumed)."""
    with store.read() as conn:
        order_keys = set(conn.execute(select(orders.c.shop_id, orders.c.customer_key)
                                      .where(orders.c.customer_key.is_not(None))).all())
        state_keys = set(conn.execute(select(customers.c.shop_id, customers.c.customer_key)).all())
        queued = set(conn.execute(select(outbox.c.shop_id, outbox.c.customer_key)).all())
    assert order_keys <= state_keys, f"orders without a customer state: {sorted(order_keys - state_keys)[:3]}"
    assert state_keys <= queued, f"customer states never queued: {sorted(state_keys - queued)[:3]}"


@pytest.mark.slow
@pytest.mark.parametrize("platform", HTTP_PLATFORMS)
@HTTP_FUZZ
@given(data=st.data())
def test_a_signed_delivery_is_answered_200_or_a_clear_400_and_never_half_written(http, platform, data):
    client, store = http
    topic, body = data.draw(deliveries_for(platform), label="delivery")
    before = counts(store)
    answer = client.post(f"/webhooks/{platform}", data=body, headers=signed_headers(platform, body, topic))
    assert answer.status_code in (200, 400), (answer.status_code, answer.get_data(as_text=True)[:300])
    reply = answer.get_json()
    event(f"{answer.status_code} {reply.get('status', '')}".strip())  # --hypothesis-show-statistics
    if answer.status_code == 400:
        assert clear(reply["error"]), reply
        assert counts(store) == before, "a refused delivery changed the database"
        return
    assert reply["status"] in ("accepted", "duplicate", "ignored")
    if reply["status"] != "accepted":
        assert counts(store) == before, f"an {reply['status']} delivery changed the database"
    consistent(store)


# --- the bugs found by fuzzing, fixed in the core: each must stay a 400 ---------------------------

def _with(payload: dict, dotted: str, value) -> dict:
    *parents, last = dotted.split(".")
    target = payload
    for step in parents:
        target = target[int(step) if step.isdigit() else step]
    target[last] = value
    return payload


def _fixture(platform: str, topic: str, path: str, **changes):
    payload = json.loads((FIXTURES / platform / path).read_text())
    for dotted, value in changes.items():
        _with(payload, dotted, value)
    return platform, topic, payload


def _shopify_order(**changes):
    return _fixture("shopify", "orders/create", "orders/create.json", **changes)


def _standard_order(**changes):
    payload = json.loads((FIXTURES / "standard" / "order.upserted.json").read_text())
    payload["data"].update(changes)
    return "standard", "order.upserted", payload


# Inputs that fuzzing once turned into a 500 or a stored negative refund; each is now refused with a 400.
FOUND_BY_FUZZING = {
    # Amounts are stored as 64-bit integer millionths: 10**13 and more overflow the column.
    # (the amount counted is current_total_price: after edits and refunds)
    "shopify-total-1e30": _shopify_order(**{"current_total_price_set.shop_money.amount": "1e30"}),
    "standard-total-10000000000000": _standard_order(total="10000000000000"),
    "standard-total-int-10**13": _standard_order(total=10**13),
    "standard-refunded-1e20": _standard_order(refunded="1e20", total="1e21"),
    # datetime overflows when an instant at its bounds is moved to UTC (OverflowError, not ValueError).
    "shopify-processed_at-year-1-plus-01": _shopify_order(processed_at="0001-01-01T00:00:00+01:00"),
    "standard-placed_at-year-9999-minus-05": _standard_order(placed_at="9999-12-31T23:59:59-05:00"),
    "standard-updated_at-year-1-plus-14": _standard_order(updated_at="0001-01-01T00:00:00+14:00"),
    # A JSON "\ud800" escape is a lone surrogate: the database driver cannot encode it as UTF-8.
    "standard-email-lone-surrogate": _standard_order(email="\ud800@example.com"),
    # Text past its column or with a NUL: PostgreSQL refuses it (500); SQLite stores it as it is.
    "standard-currency-EURO": _standard_order(currency="EURO"),
    "shopify-currency-4-letters": _shopify_order(currency="EUROS"),
    "standard-order_id-NUL": _standard_order(order_id="A-\x001"),
    "standard-email-over-320-characters": _standard_order(email="x" * 320 + "@example.com"),
    # The same checks for the emails of sign-ups and privacy requests (found with 1,200 examples).
    "standard-redacted-email-over-320-characters": _fixture(
        "standard", "customer.redacted", "customer.redacted.json", **{"data.email": "x" * 320 + "@example.com"}),
    "standard-seen-email-NUL": _fixture("standard", "customer.seen", "customer.seen.json",
                                        **{"data.email": "a\x00b@example.com"}),
    "shopify-redact-email-over-320-characters": _fixture(
        "shopify", "customers/redact", "customers/redact.json", **{"customer.email": "x" * 320 + "@example.com"}),
    "woocommerce-customer-email-over-320-characters": _fixture(
        "woocommerce", "customer.created", "customer.created.json", email="x" * 320 + "@example.com"),
    # An id with a NUL (any id: here the one of a deleted order), found with 4,000 examples.
    "woocommerce-deleted-id-NUL": ("woocommerce", "order.deleted", {"id": "\x00"}),
    "standard-refund-order_id-NUL": _fixture("standard", "refund.created", "refund.created.json",
                                             **{"data.order_id": "A-\x001"}),
    # Not a crash: a negative refund transaction is stored as a negative refund (200 accepted);
    # the standard platform refuses a negative refund amount with a 400.
    "shopify-refund-negative-transaction": ("shopify", "refunds/create", _with(
        json.loads((FIXTURES / "shopify" / "refunds" / "create.json").read_text()), "transactions.0.amount", "-5.00")),
}


@pytest.mark.parametrize("case", sorted(FOUND_BY_FUZZING))
def test_known_bad_inputs_are_refused_with_400_and_nothing_stored(http, case):
    client, store = http
    platform, topic, payload = FOUND_BY_FUZZING[case]
    body = json.dumps(payload).encode()  # ensure_ascii: "\ud800" travels as a valid JSON escape
    before = counts(store)
    answer = client.post(f"/webhooks/{platform}", data=body, headers=signed_headers(platform, body, topic))
    assert answer.status_code == 400, (answer.status_code, answer.get_data(as_text=True)[:200])
    assert clear(answer.get_json()["error"]) and counts(store) == before
