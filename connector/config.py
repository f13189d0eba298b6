"""`stagesync.toml` -> typed settings (docs/configuration.md).

`${NAME}` in any string is replaced by environment variable NAME. Every problem found is
collected and raised together as one `ConfigError`; no message ever holds a secret's value.
The `[[shops.destinations]]` tables are read by `connector.config_destinations`.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Mapping

from connector.domain import ports
from connector.domain.orders import MAX_RATE, MIN_RATE, plausible_rate
from connector.errors import ConfigError
from connector.domain.stages import RFM_STAGES, PHASES, PhaseSettings, RfmSettings
from connector.domain.subscriptions import public_url_problem
from connector.config_destinations import DESTINATION_TYPES, ID, DestinationSettings, read_destinations

# What callers import from here (the destinations' names and settings come from config_destinations).
__all__ = ["ConfigError", "DESTINATION_TYPES", "DestinationSettings", "PLATFORMS", "Settings", "ShopSettings",
           "config_path", "load", "parse"]

# The valid names are those of the registered adapters (connector.domain.ports: names only, nothing imported).
PLATFORMS = tuple(ports.WEBHOOK_ADAPTERS)
DEFAULT_DATABASE_URL = "sqlite:///stagesync.db"
SHOP_ID = ID  # the form of a destination name too
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

# Keys whose values are secrets: present in settings, never in a message or a repr.
SECRET_KEYS = frozenset({"webhook_secret", "admin_token", "api_key", "access_token", "consumer_key",
                         "consumer_secret", "client_secret", "password", "secret", "token", "private_key"})


@dataclass(frozen=True)
class ShopSettings:
    id: str
    platform: str
    webhook_secret: str = field(repr=False)
    currency: str | None = None
    country: str | None = None  # default region for phone numbers without a country code
    rfm: RfmSettings = RfmSettings()
    phases: PhaseSettings = PhaseSettings()
    api: Mapping[str, Any] = field(default_factory=dict, repr=False)
    destinations: tuple[DestinationSettings, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    rates: Mapping[str, Decimal] = field(default_factory=dict)  # shop-currency units per foreign unit
    public_url: str | None = None  # where the platform reaches us; deliveries go to <public_url>/webhooks/<id>
    auto_repair: bool = False  # the scheduled poll re-installs a missing or disabled subscription

    def label(self, stage: str) -> str:
        return self.labels.get(stage, stage)


@dataclass(frozen=True)
class Settings:
    database_url: str = field(repr=False)
    admin_token: str | None = field(default=None, repr=False)
    shops: Mapping[str, ShopSettings] = field(default_factory=dict)
    source: str | None = None  # the file read, for messages

    def shop(self, shop_id: str) -> ShopSettings:
        from connector.errors import UnknownShopError

        try:
            return self.shops[shop_id]
        except KeyError:
            raise UnknownShopError(shop_id, sorted(self.shops)) from None


# Label presets (`labels = "en"` or `labels = "fr"`); a table overrides single stages.
LABEL_PRESETS: dict[str, dict[str, str]] = {
    "en": {
        "prospect": "Prospects", "champion": "Champions", "loyalist": "Loyalists", "recent": "Recent customers",
        "high_potential": "High potential", "needs_nurturing": "Needs nurturing", "cant_lose": "Can't lose",
        "at_risk": "At risk", "about_to_lose": "About to lose", "lost": "Lost",
        "conquest": "Conquest", "conversion": "Conversion", "development": "Development",
        "loyalty": "Loyalty", "disengagement": "Disengagement",
    },
    "fr": {
        "prospect": "Prospects", "champion": "Champions", "loyalist": "Fidèles", "recent": "Clients récents",
        "high_potential": "Fort potentiel", "needs_nurturing": "À entretenir", "cant_lose": "À ne pas perdre",
        "at_risk": "À risque", "about_to_lose": "Sur le point de partir", "lost": "Perdus",
        "conquest": "Conquête", "conversion": "Transformation", "development": "Développement",
        "loyalty": "Fidélisation", "disengagement": "Désintérêt",
    },
}


_DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres", "postgresql+psycopg")
_DATABASE_FORMS = "sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE"


def database_url_problem(url: Any) -> str | None:
    """What is wrong with the shape of a database URL, in one line that never shows its password;
    None when it can be tried. `postgres://` and `postgresql://` both mean PostgreSQL through
    psycopg 3 (the storage layer rewrites them to `postgresql+psycopg://`)."""
    if not isinstance(url, str) or not url.strip():
        return f"must be a string: {_DATABASE_FORMS}"
    scheme, sep, rest = url.partition("://")
    if not sep:
        if url.startswith("sqlite:"):
            return (f"{url!r} is not a SQLite URL: it takes three slashes, sqlite:///relative/path.db or "
                    f"sqlite:////absolute/path.db")
        return f"is not a URL: {_DATABASE_FORMS}"
    if scheme not in _DATABASE_SCHEMES:
        return (f"{scheme}:// is not supported: {_DATABASE_FORMS} (postgres:// and postgresql+psycopg:// "
                f"work too)")
    if scheme == "sqlite":
        if rest and not rest.startswith("/"):
            return (f"{url!r} is not a SQLite URL: it takes three slashes, sqlite:///relative/path.db or "
                    f"sqlite:////absolute/path.db")
        return None
    host = rest.partition("/")[0].rpartition("@")[2]
    port = host.rpartition(":")[2] if ":" in host and not host.endswith("]") else ""
    if port and not port.isdigit():
        return f"{scheme}://...@{host}: the port must be a number"
    return None


def config_path(explicit: str | os.PathLike | None = None) -> Path:
    """--config PATH, else $STAGESYNC_CONFIG, else ./stagesync.toml."""
    return Path(explicit or os.environ.get("STAGESYNC_CONFIG") or "stagesync.toml")


def load(path: str | os.PathLike | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the configuration file; raise ConfigError with every problem."""
    file = config_path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{file}: no such configuration file (use --config PATH or $STAGESYNC_CONFIG)"]) from None
    except OSError as exc:
        raise ConfigError([f"{file}: cannot be read ({exc.strerror})"]) from None
    return parse(text, env=os.environ if env is None else env, source=str(file))


def parse(text: str, env: Mapping[str, str], source: str = "stagesync.toml") -> Settings:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{source}: not valid TOML: {exc}"]) from None
    reader = _Reader(env)
    settings = reader.settings(raw, source)
    if reader.problems:
        raise ConfigError(reader.problems)
    return settings


class _Reader:
    """Walks the TOML tree once, collecting problems instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]):
        self.env = env
        self.problems: list[str] = []
        self.unset: set[str] = set()  # keys whose ${NAME} was missing (reported once, not again as empty)

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def interpolate(self, value: Any, where: str) -> Any:
        if isinstance(value, str):
            def substitute(match: re.Match) -> str:
                name = match.group(1)
                if name not in self.env:
                    self.problem(where, f"environment variable {name} is not set")
                    self.unset.add(where)
                    return ""
                return self.env[name]
            return _ENV_REF.sub(substitute, value)
        if isinstance(value, dict):
            return {k: self.interpolate(v, f"{where}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [self.interpolate(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return value

    def settings(self, raw: dict, source: str) -> Settings:
        raw = {k: v if k == "shops" else self.interpolate(v, k) for k, v in raw.items()}
        database_url = self.env.get("STAGESYNC_DATABASE_URL") or raw.get("database_url") or DEFAULT_DATABASE_URL
        if (problem := database_url_problem(database_url)) is not None:
            self.problem("database_url", problem)
        admin_token = raw.get("admin_token") or None
        if admin_token is not None and (not isinstance(admin_token, str) or len(admin_token) < 8):
            self.problem("admin_token", "must be a string of at least 8 characters")
        known = {"database_url", "admin_token", "shops"}
        for key in sorted(set(raw) - known):
            self.problem(key.lstrip("."), "unknown key")
        shops: dict[str, ShopSettings] = {}
        raw_shops = raw.get("shops", [])
        if not isinstance(raw_shops, list):
            self.problem("shops", "must be an array of tables ([[shops]])")
            raw_shops = []
        for index, raw_shop in enumerate(raw_shops):
            shop = self.shop(raw_shop, f"shops[{index}]")
            if shop is None:
                continue
            if shop.id in shops:
                self.problem(f"shops[{index}].id", f"duplicate shop id {shop.id!r}")
            shops[shop.id] = shop
        return Settings(database_url=str(database_url), admin_token=admin_token, shops=shops, source=source)

    def shop(self, raw: Any, where: str) -> ShopSettings | None:
        if not isinstance(raw, dict):
            self.problem(where, "must be a table")
            return None
        shop_id = raw.get("id")
        if not isinstance(shop_id, str) or not SHOP_ID.fullmatch(shop_id):
            self.problem(f"{where}.id", "must match [a-z0-9_-]{1,64}")
            shop_id = str(shop_id)
        else:
            where = f"shops[{shop_id}]"
        raw = {k: self.interpolate(v, f"{where}.{k}") for k, v in raw.items()}
        platform = raw.get("platform")
        if platform not in PLATFORMS:
            self.problem(f"{where}.platform", f"must be one of {', '.join(PLATFORMS)} (got {platform!r})")
        secret = raw.get("webhook_secret")
        api_table = raw.get("api")
        if platform == "shopify" and secret is None and isinstance(api_table, dict) \
                and isinstance(api_table.get("client_secret"), str):
            # A Dev Dashboard app signs its webhooks with its client secret (docs/configuration.md)
            secret = api_table["client_secret"]
        if (not isinstance(secret, str) or not secret) and f"{where}.webhook_secret" not in self.unset:
            self.problem(f"{where}.webhook_secret", "is required (a non-empty string)")
            secret = ""
        known = {"id", "platform", "webhook_secret", "currency", "country", "rfm", "phases", "api",
                 "destinations", "labels", "rates", "public_url", "auto_repair"}
        for key in sorted(set(raw) - known):
            self.problem(f"{where}.{key}", "unknown key")
        currency = raw.get("currency")
        if currency is not None and not (isinstance(currency, str) and re.fullmatch(r"[A-Za-z]{3}", currency)):
            self.problem(f"{where}.currency", "must be an ISO 4217 code such as EUR")
        country = raw.get("country")
        if country is not None and not (isinstance(country, str) and re.fullmatch(r"[A-Za-z]{2}", country)):
            self.problem(f"{where}.country", "must be an ISO 3166 alpha-2 code such as FR")
        api = raw.get("api", {})
        if not isinstance(api, dict):
            self.problem(f"{where}.api", "must be a table")
            api = {}
        destinations = read_destinations(raw.get("destinations", []), where, self.problem)
        public_url = raw.get("public_url")
        if public_url is not None and public_url_problem(public_url):
            self.problem(f"{where}.public_url", str(public_url_problem(public_url)))
        auto_repair = raw.get("auto_repair", False)
        if not isinstance(auto_repair, bool):
            self.problem(f"{where}.auto_repair", "must be true or false")
        elif auto_repair and public_url is None:
            self.problem(f"{where}.auto_repair", "needs the shop's public_url (where the subscriptions must point)")
        return ShopSettings(
            id=shop_id,
            platform=str(platform),
            webhook_secret=secret,
            currency=currency.upper() if isinstance(currency, str) else None,
            country=country.upper() if isinstance(country, str) else None,
            rfm=self.rfm(raw.get("rfm", {}), f"{where}.rfm"),
            phases=self.phases(raw.get("phases", {}), f"{where}.phases"),
            api=api,
            destinations=destinations,
            labels=self.labels(raw.get("labels", {}), f"{where}.labels"),
            rates=self.rates(raw.get("rates", {}), f"{where}.rates", currency),
            public_url=public_url.strip().rstrip("/") if isinstance(public_url, str) else None,
            auto_repair=auto_repair is True,
        )

    def _int(self, raw: dict, key: str, default: int, where: str, low: int, high: int) -> int:
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.problem(f"{where}.{key}", f"must be a whole number from {low} to {high} (got {value!r})")
            return default
        return value

    def _table(self, raw: Any, where: str, known: set[str]) -> dict:
        if not isinstance(raw, dict):
            self.problem(where, "must be a table")
            return {}
        for key in sorted(set(raw) - known):
            self.problem(f"{where}.{key}", "unknown key")
        return raw

    def rfm(self, raw: Any, where: str) -> RfmSettings:
        raw = self._table(raw, where, {"recent_days", "nurture_days", "risk_days", "adaptive", "value_ratio"})
        d = RfmSettings()
        recent = self._int(raw, "recent_days", d.recent_days, where, 1, 3650)
        nurture = self._int(raw, "nurture_days", d.nurture_days, where, 1, 3650)
        risk = self._int(raw, "risk_days", d.risk_days, where, 1, 3650)
        if not recent < nurture < risk:
            self.problem(where, f"recent_days < nurture_days < risk_days is required (got {recent}, {nurture}, {risk})")
        adaptive = raw.get("adaptive", d.adaptive)
        if not isinstance(adaptive, bool):
            self.problem(f"{where}.adaptive", "must be true or false")
            adaptive = d.adaptive
        ratio_raw = raw.get("value_ratio", 1.0)
        try:
            if isinstance(ratio_raw, bool):
                raise InvalidOperation
            ratio = Decimal(str(ratio_raw))
            if not ratio.is_finite() or ratio <= 0:
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            self.problem(f"{where}.value_ratio", f"must be a positive number (got {ratio_raw!r})")
            ratio = d.value_ratio
        return RfmSettings(recent, nurture, risk, adaptive, ratio)

    def phases(self, raw: Any, where: str) -> PhaseSettings:
        raw = self._table(raw, where, {"loyal_orders", "churn_days"})
        d = PhaseSettings()
        return PhaseSettings(
            loyal_orders=self._int(raw, "loyal_orders", d.loyal_orders, where, 1, 1000),
            churn_days=self._int(raw, "churn_days", d.churn_days, where, 1, 365),
        )

    def rates(self, raw: Any, where: str, currency: Any) -> dict[str, Decimal]:
        """`rates = { USD = 0.92 }`: shop-currency units per unit of each foreign currency."""
        if not isinstance(raw, dict):
            self.problem(where, "must be a table of CURRENCY = rate, e.g. { USD = 0.92 }")
            return {}
        rates: dict[str, Decimal] = {}
        for code, value in raw.items():
            if not re.fullmatch(r"[A-Za-z]{3}", code):
                self.problem(f"{where}.{code}", "must be an ISO 4217 code such as USD")
                continue
            try:
                if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                    raise InvalidOperation
                rate = Decimal(str(value))
                if not rate.is_finite() or rate <= 0:
                    raise InvalidOperation
            except (InvalidOperation, ValueError):
                self.problem(f"{where}.{code}", f"must be a positive number of shop-currency units per {code.upper()}")
                continue
            if not plausible_rate(rate):
                self.problem(f"{where}.{code}", f"{value} shop-currency units per {code.upper()} is not a plausible "
                                                f"rate (between {MIN_RATE} and {MAX_RATE:.0E})")
                continue
            if isinstance(currency, str) and code.upper() == currency.upper():
                self.problem(f"{where}.{code}", "is the shop's own currency")
                continue
            rates[code.upper()] = rate
        if rates and not isinstance(currency, str):
            self.problem(where, "needs the shop's `currency`")
        return rates

    def labels(self, raw: Any, where: str) -> dict[str, str]:
        if isinstance(raw, str):
            if raw not in LABEL_PRESETS:
                self.problem(where, f"unknown preset {raw!r} (presets: {', '.join(LABEL_PRESETS)})")
                return {}
            return dict(LABEL_PRESETS[raw])
        if not isinstance(raw, dict):
            self.problem(where, "must be a preset name or a table of stage = label")
            return {}
        labels = dict(LABEL_PRESETS[raw["preset"]]) if raw.get("preset") in LABEL_PRESETS else {}
        if "preset" in raw and raw["preset"] not in LABEL_PRESETS:
            self.problem(f"{where}.preset", f"unknown preset {raw['preset']!r} (presets: {', '.join(LABEL_PRESETS)})")
        stages = set(RFM_STAGES) | set(PHASES)
        for key, value in raw.items():
            if key == "preset":
                continue
            if key not in stages:
                self.problem(f"{where}.{key}", f"unknown stage (stages: {', '.join(RFM_STAGES + PHASES)})")
            elif not isinstance(value, str) or not value:
                self.problem(f"{where}.{key}", "must be a non-empty string")
            else:
                labels[key] = value
        return labels
