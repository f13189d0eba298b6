"""The `predicted` model: what a shop's order history says comes next for each customer.

BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way") for how many orders a
customer will place and whether they are still a customer; Gamma-Gamma (Fader, Hardie & Lee
2005, "RFM and CLV: using iso-value curves") for what their orders will be worth. The rules,
inputs and fields are documented in docs/rules.md, "Predictions".

Pure: numpy only (no scipy: the Lambda bundle's size), no clock, no I/O. `now` is passed.

Inputs are whole UTC days. d_now is the UTC date of the last instant before `now` (an order at
exactly `now` falls on the next day, so it is not counted). For a customer: x = number of distinct
order dates after their first, t_x = (last - first date) / 7 and T = (d_now - first date) / 7 in
weeks, m = the mean over the repeat dates of each date's amount total.

How it is used (the wiring):

    d_now = prediction_day(now)
    one = customer_inputs([(placed_at, amount), ...], now)          # one customer's valid orders
    shop = ShopInputs.from_customers([one, ...], d_now)               # or, for a whole shop at once:
    shop = shop_inputs_from_orders(customer_index, placed_us, amounts, now_us)
    result = predict_shop(shop)            # fit both models, check them, predict every customer
    result.status, result.reason, result.bgnbd, result.gamma_gamma, result.churn_bands()
    result.customer(i)                     # CustomerPrediction, every field None when not `ok`
    predict_customers(result.bgnbd, result.gamma_gamma, shop)  # stored parameters, other inputs
    predict_one(bgnbd, gamma_gamma, one, d_now)                # one customer (explain)

One module a job: `inputs` (the inputs, and customers grouped by identical inputs), `optimise`
(the optimiser both fits share), `bgnbd` and `gamma_gamma` (each model's fit), `customers` (each
customer's fields from the parameters), `shop` (the minimum-data rule, `predict_shop` and its
summary). The names below are the model's public ones, importable from here.
"""

from connector.domain.predictions.bgnbd import A_NEAR_ONE, BgNbdParams, fit_bgnbd
from connector.domain.predictions.customers import (
    CHURN_BANDS, CHURN_DAYS, HORIZON_90, HORIZON_365, NEXT_ORDER_LIMIT, UNKNOWN, CustomerArrays, CustomerPrediction,
    churn_band, customer_prediction, expected_orders, next_order_days, no_order_probability, p_alive,
    predict_customers, predict_one,
)
from connector.domain.predictions.gamma_gamma import GammaGammaParams, expected_order_value, fit_gamma_gamma
from connector.domain.predictions.inputs import (
    DAY_MICROS, CustomerInputs, ShopInputs, customer_inputs, has_orders, prediction_day, shop_inputs_from_orders,
)
from connector.domain.predictions.shop import (
    MIN_CUSTOMERS, MIN_HISTORY_DAYS, MIN_REPEATERS, MIN_THREE_DATES, RECENT_ORDER_DAYS, STATUS_INSUFFICIENT,
    STATUS_OK, ShopPredictions, data_problem, predict_shop,
)

__all__ = [
    "A_NEAR_ONE", "BgNbdParams", "fit_bgnbd",
    "CHURN_BANDS", "CHURN_DAYS", "HORIZON_90", "HORIZON_365", "NEXT_ORDER_LIMIT", "UNKNOWN", "CustomerArrays",
    "CustomerPrediction", "churn_band", "customer_prediction", "expected_orders", "next_order_days",
    "no_order_probability", "p_alive", "predict_customers", "predict_one",
    "GammaGammaParams", "expected_order_value", "fit_gamma_gamma",
    "DAY_MICROS", "CustomerInputs", "ShopInputs", "customer_inputs", "has_orders", "prediction_day",
    "shop_inputs_from_orders",
    "MIN_CUSTOMERS", "MIN_HISTORY_DAYS", "MIN_REPEATERS", "MIN_THREE_DATES", "RECENT_ORDER_DAYS",
    "STATUS_INSUFFICIENT", "STATUS_OK", "ShopPredictions", "data_problem", "predict_shop",
]
