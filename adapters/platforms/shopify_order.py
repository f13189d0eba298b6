"""What is read of a Shopify GraphQL `Order`, and its rewrite into the REST shape of the orders/* webhooks.

Each GraphQL order is rewritten into the REST shape of the `orders/updated` webhook and mapped by
the webhook adapter itself (`adapters.platforms.shopify.parse`): backfill and webhooks store the
same canonical order for the same Shopify order. Only the last 60 days of orders are readable
unless the app has the `read_all_orders` scope
(https://shopify.dev/docs/api/admin-graphql/latest/objects/Order); older orders are simply absent.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, Mapping

# Objects cost 1 point, scalars and enums 0 (https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits):
# Order, totalPriceSet, shopMoney, totalRefundedSet, shopMoney, customer, defaultEmailAddress,
# defaultPhoneNumber, billingAddress = 9 per order.
ORDER_FIELDS = """
      id
      legacyResourceId
      test
      createdAt
      processedAt
      updatedAt
      cancelledAt
      displayFinancialStatus
      email
      phone
      currencyCode
      totalPriceSet { shopMoney { amount currencyCode } }
      totalRefundedSet { shopMoney { amount currencyCode } }
      customer {
        legacyResourceId
        defaultEmailAddress { emailAddress }
        defaultPhoneNumber { phoneNumber }
      }
      billingAddress { phone }
"""
COST_PER_ORDER = 9


def _amount(money: Mapping[str, Any] | None) -> Decimal:
    try:
        return Decimal(str((money or {}).get("amount") or "0"))
    except InvalidOperation:
        return Decimal(0)


def rest_order(node: Mapping[str, Any]) -> dict:
    """A GraphQL `Order` in the REST shape of the orders/* webhooks, with the fields the webhook
    adapter reads. The refunded amount becomes one successful refund transaction in the shop's money."""
    total = (node.get("totalPriceSet") or {}).get("shopMoney") or {}
    refunded = (node.get("totalRefundedSet") or {}).get("shopMoney") or {}
    customer = node.get("customer") or None
    billing = node.get("billingAddress") or None
    legacy_id = node.get("legacyResourceId")
    rest: dict[str, Any] = {
        "id": int(legacy_id) if str(legacy_id or "").isdigit() else (legacy_id or node.get("id")),
        "test": bool(node.get("test")),
        "created_at": node.get("createdAt"),
        "processed_at": node.get("processedAt"),
        "updated_at": node.get("updatedAt"),
        "cancelled_at": node.get("cancelledAt"),
        "financial_status": str(node["displayFinancialStatus"]).lower() if node.get("displayFinancialStatus") else None,
        "email": node.get("email"),
        "phone": node.get("phone"),
        "currency": node.get("currencyCode") or total.get("currencyCode"),
        "total_price": total.get("amount"),
        "total_price_set": {"shop_money": {"amount": total.get("amount"), "currency_code": total.get("currencyCode")}}
        if total else None,
        "refunds": [],
    }
    if customer is not None:
        customer_id = customer.get("legacyResourceId")
        rest["customer"] = {
            "id": int(customer_id) if str(customer_id or "").isdigit() else customer_id,
            "email": (customer.get("defaultEmailAddress") or {}).get("emailAddress"),
            "phone": (customer.get("defaultPhoneNumber") or {}).get("phoneNumber"),
        }
    if billing is not None:
        rest["billing_address"] = {"phone": billing.get("phone")}
    if _amount(refunded) > 0:
        rest["refunds"] = [{"transactions": [{
            "kind": "refund", "status": "success",
            "amount_set": {"shop_money": {"amount": refunded.get("amount"), "currency_code": refunded.get("currencyCode")}},
        }]}]
    return rest
