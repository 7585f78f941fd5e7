"""The incident the demo shop carries, in one place for the builder, the tests and the README.

Since the spring sale, prod's ``config/app.yaml`` has ``pricing.discount_mode: stacked``:
a discount code counts from the full price, beside the sale markdowns, instead of from
what the markdowns leave. Everyday codes (10-30 %) only undercharge a little. The staff
code STAFF70 on items marked down 40 % takes 110 % off: the total goes negative and
``GET /orders/ID`` answers HTTP 500 (``ValueError: amount must not be negative``).

The fix is one setting: ``pricing.discount_mode: sequential``.
"""

from __future__ import annotations

from typing import Any

DEMO_PORT = 18080

DEMO_BUG: dict[str, Any] = {
    "order_id": 1042,                          # the order in the support ticket and the README
    "order_ids": [318, 1042, 7315, 13808],     # every order that fails (those <= the number of orders built)
    "discount_code": "STAFF70",
    "markdown_pct": 40,
    "config_file": "config/app.yaml",
    "setting": "pricing.discount_mode",
    "buggy_value": "stacked",                  # what prod runs with
    "fixed_value": "sequential",
    "env_var": "DISCOUNT_MODE",                # overrides the setting when set
    "status": 500,
    "symptom": "GET /orders/ID answers HTTP 500: the order's total comes out negative",
    "refund_order_id": 2001,                   # a paid order, healthy in both modes: refund it to change data
    "check": "order-1042",                     # repro.yaml's check: GET /orders/1042 answers 200
}
