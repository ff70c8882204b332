"""The webhook receiver: the notification as JSON, POSTed to a chat incoming webhook or any HTTP endpoint.

The body is ``render.webhook_payload`` (``text`` for Slack/Mattermost-style
chat, ``jukimon`` for machines); the ``Idempotency-Key`` header is the same for
every delivery of one notification. A webhook URL is a secret in most chat
tools (the path is the credential), so only its scheme and host appear in
errors, logs and ``repr``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from alerting.model import Notification
from alerting.notify.codec import delivery_key
from alerting.notify.receivers import DeliveryError, RejectedError
from alerting.notify.compose import webhook_payload

# Worth retrying: the server is busy, rate-limits us, or timed out; any other 4xx is about this message.
_RETRYABLE = {408, 425, 429}


class WebhookReceiver:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url
        self.timeout = timeout
        parts = urlsplit(url)
        self.endpoint = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")

    def __repr__(self) -> str:
        return f"WebhookReceiver({self.endpoint}/…)"

    async def deliver(self, n: Notification) -> None:
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.post(self.url, json=webhook_payload(n),
                                             headers={"Idempotency-Key": delivery_key(n)})
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook {self.endpoint}: {type(exc).__name__}: {exc}") from None
        if response.is_success:
            return
        status = response.status_code
        error = DeliveryError if status >= 500 or status in _RETRYABLE else RejectedError
        raise error(f"webhook {self.endpoint}: HTTP {status} {response.text[:200]}")
