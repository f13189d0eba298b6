"""The Shopify Admin API access token of a Dev Dashboard app: the client credentials grant.

https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/client-credentials-grant:
a Dev Dashboard app (the only kind new users can create since 2026-01-01) gives `client_id` and
`client_secret`; stagesync asks `POST https://{shop_domain}/admin/oauth/access_token` (form fields
grant_type=client_credentials, client_id, client_secret) for an access token, whose answer is
`{"access_token", "scope", "expires_in"}` (about 86,399 s). The token is fetched when first needed
and renewed `RENEW_BEFORE` ahead of its expiry; `forget()` drops it so that the next call fetches
a new one (the client does so once when the API answers 401). It is never logged: it joins the
HTTP helper's secrets, hidden from every message, as soon as it arrives.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable

from adapters.platforms.api import PlatformHttp
from connector.errors import PlatformApiError

TOKEN_PATH = "/admin/oauth/access_token"
RENEW_BEFORE = timedelta(minutes=5)  # a client-credentials token is renewed this long before it expires


class ClientCredentialsToken:
    """One shop's client-credentials token: fetched on first use, renewed before it expires."""

    def __init__(self, http: PlatformHttp, shop_url: str, client_id: str, client_secret: str,
                 clock: Callable[[], datetime]):
        self.http = http
        self.url = shop_url + TOKEN_PATH
        self.client_id = client_id
        self.client_secret = client_secret
        self.clock = clock
        self._token: str | None = None
        self._expires: datetime | None = None

    def get(self) -> str:
        """The current token, fetched first when there is none or it expires within RENEW_BEFORE."""
        if self._token is None or (self._expires is not None and self.clock() >= self._expires - RENEW_BEFORE):
            self._fetch()
        assert self._token is not None
        return self._token

    def forget(self) -> None:
        """Drop the token (revoked or expired early): the next `get()` fetches a new one."""
        self._token = None

    def _fetch(self) -> None:
        """POST /admin/oauth/access_token with the client credentials grant (retried on 429/5xx)."""
        form = {"grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self.client_secret}
        response = self.http.retrying(lambda: self.http.once("POST", self.url, data=form,
                                                             headers={"Accept": "application/json"}))
        try:
            body = response.json()
        except ValueError:
            body = None
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            # never quote the body: it may hold a token
            raise PlatformApiError(f"{self.http.where}: the access token answer has no access_token")
        self.http.secrets = (*self.http.secrets, token)  # hidden from every message from now on
        expires_in = body.get("expires_in")
        self._token = token
        self._expires = (self.clock() + timedelta(seconds=expires_in)
                         if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool) else None)
