"""Fixtures shared by the unit tests."""

from __future__ import annotations

import pytest
import responses


@pytest.fixture
def rsps():
    """Vendor HTTP; a request to any URL not registered fails the test."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock
        stray = [c.request.url for c in mock.calls if "Connection refused by Responses" in str(c.response)]
        assert not stray, f"unexpected requests: {stray}"
