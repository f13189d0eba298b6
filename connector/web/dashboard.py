"""The dashboard (`GET /dashboard/<shop_id>`): a shop's stages, movements, revenue, intake and sync health.

Server-rendered HTML with inline SVG and inline CSS: no script, no font, nothing fetched from
elsewhere. The stage counts come from the very code behind `stagesync stages --json`
(`snapshot` + `stage_counts`), so the page and the command agree at the same instant; `?at=ISO`
replays any instant, as `--at` does.

Access needs the admin token: `Authorization: Bearer <admin_token>`, or the login form, which
opens a session kept in the database (`connector.web.access`: cookie flags, logout, failed-login
limits, security headers). Forms that change something, and the customer search, are POSTs that
carry a CSRF token; a customer is named in URLs by its opaque ref, never by email or phone.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import urlencode

from flask import Blueprint, abort, current_app, redirect, render_template, request, session, url_for
from sqlalchemy import Connection

from connector.config import Settings, ShopSettings
from connector.domain.orders import ZERO
from connector.domain.stages import MODELS, RFM_STAGES
from connector.errors import UnknownShopError, mask
from connector.services.customer_view import customer_by_ref, identity_key, ref_of_key
from connector.services.evaluation import Snapshot, snapshot
from connector.services.intake_health import REASONS, intake_health
from connector.services.reports import iso, stage_counts, unconverted_note
from connector.storage import outbox
from connector.storage.currency import unconverted_orders
from connector.storage.outbox import QueueLevel, queue_levels
from connector.storage.states import stage_movements
from connector.web import access
from connector.web import data_requests_card
from connector.web.context import get_store

MOVEMENT_WINDOW = timedelta(weeks=8)
EARLIEST_AT = datetime(1970, 1, 1, tzinfo=timezone.utc)  # `?at=` bounds: the models look a year back
LATEST_AT = datetime(9000, 1, 1, tzinfo=timezone.utc)  # and predictions a year ahead
DEAD_LETTERS_SHOWN = 50
NEW = "(new)"  # the "from" of a customer's first stage
COLOURS = {
    "prospect": "#c3c8d0", "champion": "#17804a", "loyalist": "#3aa45c", "recent": "#86c77a",
    "high_potential": "#2d74b5", "needs_nurturing": "#86b6e0", "cant_lose": "#d97706",
    "at_risk": "#f0a23c", "about_to_lose": "#d4483b", "lost": "#8a9099",
    "conquest": "#c3c8d0", "conversion": "#86b6e0", "development": "#2d74b5", "loyalty": "#17804a",
    "disengagement": "#d4483b",
}

blueprint = Blueprint("dashboard", __name__, template_folder="templates")


# --- session and access (connector.web.access) ------------------------------------------------------

@blueprint.record_once
def _configure(state) -> None:
    access.configure(state.app)


def _settings() -> Settings:
    return current_app.extensions["stagesync"]["settings"]


def _login_page(status: int, error: str | None = None, next_url: str | None = None):
    """The login form; after signing in, back to `next_url` (a protected page asked for: itself)."""
    next_url = access.redirect_target(next_url, url_for("dashboard.index"))
    headers = {"WWW-Authenticate": 'Bearer realm="stagesync"'} if status == 401 else {}
    return render_template("dashboard/login.html", error=error, next_url=next_url), status, headers


@blueprint.before_request
def _require_admin():
    if request.endpoint in ("dashboard.login", "dashboard.login_form", "dashboard.logout"):
        return None
    if not access.signed_in():
        return _login_page(401, next_url=request.full_path.rstrip("?") if request.method == "GET" else None)
    if request.method == "POST" and not access.bearer() and not access.csrf_ok():  # a browser form
        abort(403, description="the form expired; reload the page and try again")
    return None


@blueprint.get("/login")
def login_form():
    if access.has_line_break(request.args.get("next")):
        abort(400, description="next: a line break is not part of a path")
    return _login_page(200, next_url=request.args.get("next"))


@blueprint.post("/login")
def login():
    next_url = request.form.get("next")
    if access.has_line_break(next_url):
        abort(400, description="next: a line break is not part of a path")
    if access.login_refused():
        page, _, _ = _login_page(429, "Too many failed sign-ins; try again in a few minutes.", next_url)
        return page, 429, {"Retry-After": str(int(access.LOGIN_WINDOW.total_seconds()))}
    if not access.token_matches(request.form.get("token", "")):
        access.count_failed_login()
        return _login_page(401, "That is not the admin token.", next_url)
    access.open_session()
    return redirect(access.redirect_target(next_url, url_for("dashboard.index")), 303)


@blueprint.post("/logout")
def logout():
    access.close_session()
    return redirect(url_for("dashboard.login_form"), 303)


def _shop(shop_id: str) -> ShopSettings:
    try:
        return _settings().shop(shop_id)
    except UnknownShopError as exc:
        abort(404, description=str(exc))


def _now() -> datetime:
    raw = request.args.get("at")
    if not raw:
        return current_app.extensions["stagesync"]["clock"]()
    from connector.services.csv_import import parse_instant

    try:
        instant = parse_instant(raw)
    except ValueError as exc:
        abort(400, description=f"at: {exc}")
    if not EARLIEST_AT <= instant <= LATEST_AT:  # a year-1 instant minus 365 days does not exist
        abort(400, description=f"at: must be between {EARLIEST_AT.date()} and {LATEST_AT.date()}")
    return instant


# --- what the page shows ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Bar:
    key: str
    label: str
    value: int | Decimal
    text: str  # what is written next to the bar
    share: float  # of the total, 0..1
    width: float  # % of the chart's width; the longest bar fills it
    colour: str


def bars(values: dict[str, int | Decimal], shop: ShopSettings, text) -> list[Bar]:
    total = sum(values.values()) or 1
    longest = max(values.values(), default=0) or 1
    return [Bar(key, shop.label(key), value, text(value), float(value / total),
                round(100 * float(value / longest), 1), COLOURS.get(key, "#888"))
            for key, value in values.items()]


def revenue_by_stage(snap: Snapshot) -> dict[str, Decimal]:
    """Sum of the customers' total_spent by rfm stage (orders with no customer are in no stage)."""
    revenue = dict.fromkeys(RFM_STAGES, ZERO)
    for evaluation in snap.evaluations.values():
        revenue[evaluation.rfm] += evaluation.figures.total_spent
    return revenue


def movements(conn: Connection, shop_id: str, model: str, now: datetime,
              window: timedelta = MOVEMENT_WINDOW) -> Counter:
    """(from, to) -> number of stage changes recorded in (now - window, now]; from is NEW for a
    customer's first stage."""
    rows = stage_movements(conn, shop_id, model, now - window, now)
    return Counter({(before or NEW, after): n for before, after, n in rows})


@dataclass(frozen=True)
class Matrix:
    rows: list[str]
    columns: list[str]
    cells: dict[tuple[str, str], int]
    total: int
    largest: int

    def shade(self, row: str, column: str) -> str:
        """A cell's background: transparent at 0, deep blue at the largest count."""
        n = self.cells.get((row, column), 0)
        return "transparent" if not n else f"rgba(45, 116, 181, {0.12 + 0.78 * n / self.largest:.2f})"


def matrix(counts: Counter, model: str) -> Matrix:
    stages = list(MODELS[model])
    return Matrix([NEW, *stages], stages, dict(counts), sum(counts.values()), max(counts.values(), default=0) or 1)


@dataclass(frozen=True)
class DestinationHealth:
    name: str
    type: str
    level: QueueLevel


def money_text(amount: Decimal, currency: str | None) -> str:
    return f"{amount:,.2f}" + (f" {currency}" if currency else "")


# --- pages -----------------------------------------------------------------------------------------

@blueprint.get("/dashboard")
def index():
    shops = sorted(_settings().shops)
    if len(shops) == 1:
        return redirect(url_for("dashboard.shop_dashboard", shop_id=shops[0]))
    return render_template("dashboard/index.html", shops=shops)


@blueprint.get("/dashboard/<shop_id>")
def shop_dashboard(shop_id: str):

    shop = _shop(shop_id)
    now = _now()
    model = request.args.get("model", "rfm")
    if model not in MODELS:
        abort(400, description=f"model must be one of {', '.join(MODELS)}")
    store = get_store()
    snap = snapshot(store, shop, now)
    counts = stage_counts(snap)
    predictions = _predictions(store, shop, now)
    revenue = revenue_by_stage(snap)
    total_revenue = sum(revenue.values(), ZERO)
    with store.read() as conn:
        moves = movements(conn, shop.id, model, now)
        levels = queue_levels(conn, shop.id)
        letters = outbox.dead_letters(conn, shop.id)
        unconverted = unconverted_orders(conn, shop.id).get(shop.id, 0)
    intake = intake_health(store, shop.id, now)  # the Intake card: do webhooks still arrive?
    destinations = [DestinationHealth(d.name, d.type, levels.get((shop.id, d.name), QueueLevel()))
                    for d in shop.destinations]
    destinations += [DestinationHealth(name, "no longer configured", level)
                     for (_, name), level in sorted(levels.items()) if name not in {d.name for d in shop.destinations}]
    return render_template(
        "dashboard/shop.html", shop=shop, at=counts["at"], at_text=now.strftime("%Y-%m-%d %H:%M:%S UTC"),
        counts=counts, customers=len(snap.evaluations), window_orders=snap.shop.window_orders,
        shop_aov=money_text(snap.shop.shop_aov, shop.currency) if snap.shop.shop_aov is not None else "-",
        rfm_bars=bars(counts["rfm"], shop, lambda n: f"{n:,}"),
        phase_bars=bars(counts["phases"], shop, lambda n: f"{n:,}"),
        revenue_bars=bars(revenue, shop, lambda amount: money_text(amount, shop.currency)),
        total_revenue=money_text(total_revenue, shop.currency),
        model=model, other_model_url=_other_model_url(shop.id, model), matrix=matrix(moves, model), window_weeks=MOVEMENT_WINDOW.days // 7,
        destinations=destinations, letters=letters[:DEAD_LETTERS_SHOWN], letters_total=len(letters),
        replayed=request.args.get("replayed", type=int), pinned=bool(request.args.get("at")),
        csrf=session.get("csrf", ""), unconverted=unconverted_note(unconverted),
        predictions=predictions, churn_bands=predictions.churn_bands(),
        value_at_risk=_value_at_risk(snap, predictions, shop), list_url=_list_url, intake=intake,
        data_requests=data_requests_card.requests_card(shop),
    )


def _predictions(store, shop: ShopSettings, now: datetime):
    """The shop's predictions at `now`, read-only (`?at=` replays a fit at that instant)."""
    from connector.services.predicting import predictions_at  # numpy: not on the webhook path's imports

    return predictions_at(store, shop, now, replay=bool(request.args.get("at")))


def _value_at_risk(snap: Snapshot, predictions, shop: ShopSettings) -> str:
    from connector.services.winback import value_at_risk

    value = value_at_risk(snap, predictions)
    return "-" if value is None else money_text(Decimal(f"{value:.2f}"), shop.currency)


def _list_url(shop_id: str, model: str, value: str, **extra) -> str:
    """The win-back list of one stage, phase or churn band, at the page's pinned instant if any."""
    pinned = {"at": request.args["at"]} if request.args.get("at") else {}
    return url_for("dashboard.customer_list", shop_id=shop_id, model=model, value=value, **pinned, **extra)


LIST_PAGE_SIZE = 50


@blueprint.get("/dashboard/<shop_id>/customers")
def customer_list(shop_id: str):
    """The win-back list: one stage's (or phase's, or churn band's) customers, most valuable first,
    a page at a time; `format=csv` downloads every row."""
    from connector.services.winback import csv_text, list_rows, row_refs, selection

    shop = _shop(shop_id)
    now = _now()
    chosen = selection(request.args.get("model"), request.args.get("value"))
    if chosen is None:
        abort(400, description="model and value must name a stage (rfm), a phase (phases) or a churn band "
                               "(churn_band: low, medium, high)")
    model, value = chosen
    store = get_store()
    snap = snapshot(store, shop, now)
    predictions = _predictions(store, shop, now)
    rows = list_rows(snap, predictions, model, value)
    if request.args.get("format") == "csv":
        name = f"{shop.id}-{model}-{value}-{now.strftime('%Y%m%d')}.csv"
        return current_app.response_class(csv_text(rows), mimetype="text/csv", headers={
            "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})
    pages = max(1, -(-len(rows) // LIST_PAGE_SIZE))
    page = min(max(request.args.get("page", 1, type=int) or 1, 1), pages)
    shown = rows[(page - 1) * LIST_PAGE_SIZE:page * LIST_PAGE_SIZE]
    refs = row_refs(store, shop.id, shown)
    pinned = {"at": request.args["at"]} if request.args.get("at") else {}
    return render_template(
        "dashboard/list.html", shop=shop, model=model, value=value, rows=shown, refs=refs, total=len(rows), page=page,
        pages=pages, first=(page - 1) * LIST_PAGE_SIZE + 1, list_url=_list_url, pinned=pinned,
        at=iso(now), at_text=now.strftime("%Y-%m-%d %H:%M:%S UTC"), predictions=predictions,
        label=shop.label(value) if model != "churn_band" else f"{value} churn risk",
    )


def _other_model_url(shop_id: str, model: str) -> str:
    other = "phases" if model == "rfm" else "rfm"
    pinned = {"at": request.args["at"]} if request.args.get("at") else {}
    return url_for("dashboard.shop_dashboard", shop_id=shop_id, model=other, **pinned) + "#movements"


@blueprint.get("/dashboard/<shop_id>/customer")
def customer_search(shop_id: str):
    return render_template("dashboard/customer.html", shop=_shop(shop_id), query="", view=None)


@blueprint.post("/dashboard/<shop_id>/customer")
def customer_find(shop_id: str):
    """The search form: an email or phone in the POST body (never in a URL) -> the customer's page,
    named by its ref."""
    shop = _shop(shop_id)
    query = request.form.get("q", "").strip()
    if not query:
        return customer_search(shop_id)
    ref = ref_of_key(get_store(), shop, identity_key(shop, query), current_app.extensions["stagesync"]["clock"]())
    if ref is None:
        return render_template("dashboard/customer.html", shop=shop, query=query, view=None), 404
    pinned = {"at": request.form["at"]} if request.form.get("at") else {}
    return redirect(url_for("dashboard.customer", shop_id=shop.id, ref=ref, **pinned), 303)


@blueprint.get("/dashboard/<shop_id>/customer/<ref>")
def customer(shop_id: str, ref: str):
    shop = _shop(shop_id)
    view = customer_by_ref(get_store(), shop, ref, _now(), replay=bool(request.args.get("at")))
    page = render_template("dashboard/customer.html", shop=shop, query=ref, view=view)
    return page, (200 if view is not None else 404)


@blueprint.post("/dashboard/<shop_id>/replay")
def replay(shop_id: str):
    """Re-queue the shop's dead letters (one, by `id`, or all) for an immediate new attempt."""

    shop = _shop(shop_id)
    ids = [int(request.form["id"])] if request.form.get("id", "").isdigit() else None
    with get_store().transaction() as conn:
        count = outbox.replay(conn, current_app.extensions["stagesync"]["clock"](), shop.id, ids)
    target = url_for("dashboard.shop_dashboard", shop_id=shop.id) + "?" + urlencode({"replayed": count})
    return redirect(target + "#sync", 303)


blueprint.add_app_template_filter(mask, "mask")
data_requests_card.register(blueprint, _shop)
blueprint.add_app_template_global(REASONS, "rejection_reasons")


@blueprint.app_template_filter("amount")
def _amount(value: str | None) -> str:
    """A stored amount ("12.500000") as money is written: 2 decimals."""
    return "-" if value is None else f"{Decimal(value):,.2f}"


@blueprint.app_template_filter("when")
def _when(value: str | None) -> str:
    """An ISO instant ("2026-06-01T12:00:00.123456Z") to the second, for reading."""
    return "-" if not value else value.replace("T", " ")[:19] + " UTC"


@blueprint.app_template_filter("stage_label")
def _stage_label(stage: str, shop: ShopSettings) -> str:
    return stage if stage == NEW else shop.label(stage)
