"""Request bodies for the micro benchmarks, shaped like what providers send.

Bodies are compact JSON, without spaces. Sizes are exact, so "1 KB" in a group
name is 1024 bytes of body.
"""

from __future__ import annotations

import base64
import json
from typing import Any

SECRET = b"\x8f\x1d\xc2\x07hookgate-bench-key\x00\xff"
MSG_ID = "msg_2bXyK1Qp0mRZ6sJ9dTfWvN3h"
CLIENT_STATE = "bench-client-state"


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def standard_event(size: int) -> bytes:
    """Return a Standard Webhooks ``invoice.paid`` event of exactly ``size`` bytes.

    Invoice lines fill the body, so a decoder meets many small objects rather than
    one long string, and a ``memo`` string pads it to the exact size.
    """
    lines: list[dict[str, Any]] = []
    data: dict[str, Any] = {
        "id": "inv_1Qx8LpT4",
        "currency": "eur",
        "lines": lines,
        "memo": "",
    }
    event = {"type": "invoice.paid", "timestamp": "2026-12-04T18:00:00Z", "data": data}
    line_length = len(_compact(_line(0))) + 1  # one comma between lines
    while len(_compact(event)) + line_length <= size:
        lines.append(_line(len(lines)))
    padding = size - len(_compact(event))
    if padding < 0:
        raise ValueError(f"size {size} is below the smallest event")
    data["memo"] = "m" * padding
    body = _compact(event)
    assert len(body) == size
    return body


def _line(index: int) -> dict[str, Any]:
    # Fixed-width values, so every line encodes to the same length.
    return {"sku": f"sku_{index:06d}", "quantity": 1, "amount": 4200}


def graph_collection(items: int) -> bytes:
    """Return a Microsoft Graph change notification collection of ``items`` items."""
    value = []
    for index in range(items):
        message_id = f"AAMkAGI2TG93AAA{index:06d}"
        value.append(
            {
                "subscriptionId": "7f105c7d-2dc5-4530-97cd-4e7ae6534c07",
                "subscriptionExpirationDateTime": "2026-12-05T18:23:45.9356913Z",
                "changeType": "created",
                "resource": f"Users/a1b2c3d4-e5f6/Messages/{message_id}",
                "resourceData": {
                    "@odata.type": "#Microsoft.Graph.Message",
                    "@odata.id": f"Users/a1b2c3d4-e5f6/Messages/{message_id}",
                    "@odata.etag": 'W/"CQAAABYAAACQ2fKdhq8oSKEDSVrdi3lRAAAAAAAA"',
                    "id": message_id,
                },
                "clientState": CLIENT_STATE,
                "tenantId": "84bd8158-6d4d-4958-8b9f-9d6445542f95",
            }
        )
    return _compact({"value": value})


def pubsub_push() -> bytes:
    """Return a Pub/Sub push envelope carrying a Gmail mailbox notification."""
    data = base64.b64encode(
        _compact({"emailAddress": "user@example.com", "historyId": 9876543})
    ).decode()
    return _compact(
        {
            "message": {
                "attributes": {},
                "data": data,
                "messageId": "2070443601311540",
                "publishTime": "2026-12-04T18:00:00.123Z",
            },
            "subscription": "projects/bench-project/subscriptions/gmail-push",
        }
    )
