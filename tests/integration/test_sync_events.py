"""Stage-change events whose outcome is unknown are recorded, never resent (real SQLite and PostgreSQL).

Omnisend does not de-duplicate real-time events used by automations (api-docs.omnisend.com/reference/
post_events, EventRequest.eventID) and Brevo's events take no idempotency key
(developers.brevo.com/reference/create-event): a resent event can start a merchant's flow twice.
"""

from __future__ import annotations

from datetime import timedelta

from connector.services import evaluation
from connector.storage import outbox
from connector.errors import OutcomeUnknownError, RetriableDestinationError
from connector.domain.ports import ItemFailure
from tests.conftest import NOW
from tests.integration.test_sync import FakeDestination, add_orders, clock, fake, shop_settings, worker  # noqa: F401


class EventfulFake(FakeDestination):
    max_event_batch = 1

    def __init__(self):
        super().__init__()
        self.event_script: list = []

    def send_events(self, events):
        self.events.extend(events)
        outcome = self.event_script.pop(0) if self.event_script else []
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def _stage_change(store, shop_settings, fake, clock):
    shop = shop_settings.shops["acme"]
    add_orders(store, ("ann@example.com", 5, "100"))
    evaluation.recompute(store, shop, NOW)
    worker(store, shop_settings, fake, clock).drain()
    clock.now = NOW + timedelta(days=40)
    evaluation.recompute(store, shop, clock.now)  # no longer recent: one stage change, one event


def test_an_event_whose_outcome_is_unknown_is_a_dead_letter_and_never_resent(store, shop_settings, clock):
    fake = EventfulFake()
    _stage_change(store, shop_settings, fake, clock)
    fake.event_script = [OutcomeUnknownError("omnisend: POST /events -> 503; it may have been received", status=503)]
    stats = worker(store, shop_settings, fake, clock).drain()
    assert (stats.dead, stats.retried, len(fake.events)) == (1, 0, 1)
    with store.read() as conn:
        [letter] = outbox.dead_letters(conn, "acme")
    assert letter.status == 503 and "outcome unknown" in letter.error
    # Queued again (a new recompute) or replayed by hand: the properties are already there, the event is not resent.
    with store.transaction() as conn:
        store.enqueue(conn, "acme", ["omnisend"], ["ann@example.com"], clock.now)
    worker(store, shop_settings, fake, clock).drain()
    with store.transaction() as conn:
        outbox.replay(conn, clock.now, "acme")
    worker(store, shop_settings, fake, clock).drain()
    assert len(fake.events) == 1
    assert len(fake.upserts) == 2  # the first sync, then the stage change; never again


def test_an_event_surely_refused_is_retried(store, shop_settings, clock):
    fake = EventfulFake()
    _stage_change(store, shop_settings, fake, clock)
    fake.event_script = [RetriableDestinationError("429 slow down", status=429, retry_after=1)]
    stats = worker(store, shop_settings, fake, clock).drain()
    assert (stats.dead, stats.events, len(fake.events)) == (0, 1, 2)


def test_one_contacts_unknown_event_does_not_fail_the_others(store, shop_settings, clock):
    fake = EventfulFake()
    shop = shop_settings.shops["acme"]
    add_orders(store, ("ann@example.com", 5, "100"), ("bob@example.com", 5, "100"))
    evaluation.recompute(store, shop, NOW)
    worker(store, shop_settings, fake, clock).drain()
    clock.now = NOW + timedelta(days=40)
    evaluation.recompute(store, shop, clock.now)
    fake.event_script = [OutcomeUnknownError("read timeout", status=None), []]
    stats = worker(store, shop_settings, fake, clock).drain()
    assert (stats.sent, stats.dead, stats.events, len(fake.events)) == (1, 1, 1, 2)
