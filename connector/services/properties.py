"""What a destination should hold for a contact: its configured properties, from the stored state.

Pure: a stored state (or None for a redacted customer) and the destination's mapping in, the
property values out, with the shop's labels applied to stage values (docs/rules.md, 'Fields a destination can write').
"""

from __future__ import annotations

from decimal import Decimal

from connector.config import DestinationSettings, ShopSettings
from connector.domain.ports import PropertyValue
from connector.domain.stages import day, money
from connector.storage.values import from_micros, micros_to_money, StoredState

STAGE_FIELDS = ("rfm", "phases")
# The predicted fields in the order `connector.storage.predictions` stores them (docs/rules.md, 'Predictions').
PREDICTED_FIELDS = ("p_alive", "churn_risk", "churn_band", "expected_orders_90d", "expected_orders_365d",
                    "predicted_clv_365d", "next_order_date")


def predicted_values(predicted: tuple | None) -> dict[str, PropertyValue]:
    """The stored predicted fields as written: numbers with 2 decimals ("0.87"), all None when the
    customer has no prediction (the shop's status is not `ok`, or no order before the last fit)."""
    if predicted is None:
        return dict.fromkeys(PREDICTED_FIELDS)
    return {name: f"{value:.2f}" if isinstance(value, float) else value
            for name, value in zip(PREDICTED_FIELDS, predicted)}


def field_values(state: StoredState, shop: ShopSettings, predicted: tuple | None = None) -> dict[str, PropertyValue]:
    """Every field of docs/rules.md, 'Fields a destination can write', for one customer, stage values
    as labelled for the shop; `predicted`: the customer's stored predicted fields, if any."""
    # the AOV divides by the window orders with a known amount (docs/rules.md, 'Amounts and currencies')
    aov = micros_to_money(state.amount_365d) / state.known_orders_365d if state.known_orders_365d else None
    return {
        **predicted_values(predicted),
        "rfm": shop.label(state.rfm),
        "phases": shop.label(state.phases),
        "orders_365d": state.orders_365d,
        "orders_total": state.orders_total,
        "aov_365d": money(aov),
        "total_spent": money(micros_to_money(state.total_spent) if state.total_spent else Decimal(0)),
        "first_order_date": day(from_micros(state.first_order_at)),
        "last_order_date": day(from_micros(state.last_order_at)),
        "rfm_since": state.rfm_since,
    }


def desired_properties(state: StoredState | None, shop: ShopSettings,
                       destination: DestinationSettings, predicted: tuple | None = None) -> dict[str, PropertyValue]:
    """Property name in the tool -> value; all None when the customer is gone (clears them)."""
    if state is None:
        return dict.fromkeys(destination.properties)
    values = field_values(state, shop, predicted)
    return {name: values[source] for name, source in destination.properties.items()}


def identity(customer_key: str) -> tuple[str | None, str | None]:
    """(email, phone) of a customer key: an email contains '@', otherwise it is an E.164 phone."""
    return (customer_key, None) if "@" in customer_key else (None, customer_key)
