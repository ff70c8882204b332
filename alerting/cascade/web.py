"""The one-click confirm link's page: ``GET /cascade/confirm?token=…`` records the receipt and says so in Japanese.

``confirm_routes(tracker, links)`` gives Starlette routes the console mounts;
``confirm_app`` wraps them in an app of their own (tests, a stand-alone process).
Pages are jinja2 with autoescape: titles and names come from configuration and
operators, never trusted as HTML. Answers: 200 confirmed (or already confirmed,
with the first confirmation's time), 400 for a broken or forged link, 410 for an
expired one, 404 for a report that was not sent to the organisation.
"""

from __future__ import annotations

import logging

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from alerting.cascade.links import CONFIRM_PATH, LinkError, LinkSigner
from alerting.cascade.model import Channel, jst_text
from alerting.cascade.tracker import ConfirmOutcome, Tracker
from monitor.logs import fields as log_fields

log = logging.getLogger("alerting.cascade.web")

_VIA = {Channel.LINK.value: "メールのリンク", Channel.CONSOLE.value: "コンソール", Channel.MQTT.value: "MQTT"}
_ERROR_STATUS = {"malformed": 400, "tampered": 400, "expired": 410}

_PAGE = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string("""\
<!doctype html>
<html lang="ja">
<head><meta charset="utf-8"><meta name="robots" content="noindex">
<title>{{ heading }} — 住基ネット 障害連絡</title>
<style>body{font-family:sans-serif;max-width:40em;margin:2em auto}.drill{background:#fd0;padding:.5em;font-weight:bold}
.error{color:#b00}</style></head>
<body>
{% if drill %}<p class="drill">【訓練】これは訓練です。実際の障害ではありません。</p>{% endif %}
<h1 class="{{ kind }}">{{ heading }}</h1>
{% for line in lines %}<p>{{ line }}</p>
{% endfor %}
</body>
</html>
""")


def _page(status: int, heading: str, lines: list[str], *, kind: str = "ok", drill: bool = False) -> HTMLResponse:
    return HTMLResponse(_PAGE.render(heading=heading, lines=lines, kind=kind, drill=drill), status_code=status,
                        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


def confirm_routes(tracker: Tracker, links: LinkSigner) -> list[Route]:
    async def confirm(request: Request) -> HTMLResponse:
        try:
            claim = links.verify(request.query_params.get("token", ""))
        except LinkError as exc:
            log.info("cascade confirm link refused", extra=log_fields(
                reason=exc.reason, client=request.client.host if request.client else None))
            return _page(_ERROR_STATUS[exc.reason], "受信確認できませんでした",
                         [str(exc), "お手数ですが、コンソールまたは電話で受信をご連絡ください。"], kind="error")
        org = tracker.directory.organisations.get(claim.org)
        result = await tracker.confirm(claim.report, claim.org, Channel.LINK, org.address if org else claim.org)
        if result is None:
            return _page(404, "受信確認できませんでした", ["この報告は貴団体あてに送信されていません。"], kind="error")
        name = result.org.name if result.org else claim.org
        subject = f"「{result.incident.title}」の{result.report.label}"
        if result.outcome is ConfirmOutcome.ALREADY:
            via = result.delivery.confirmed_via or ""
            return _page(200, "受信確認済みです", [
                f"{name} 様：{subject}は、{jst_text(result.at)}に受信確認済みです（{_VIA.get(via, via)}）。"],
                drill=result.incident.drill)
        log.info("cascade receipt confirmed", extra=log_fields(report=result.report.id, org=claim.org, via="link"))
        return _page(200, "受信確認を受け付けました", [
            f"{name} 様：{subject}の受信確認を{jst_text(result.at)}に受け付けました。",
            "ご協力ありがとうございました。このページは閉じてかまいません。"], drill=result.incident.drill)

    return [Route(CONFIRM_PATH, confirm, methods=["GET"])]


def confirm_app(tracker: Tracker, links: LinkSigner) -> Starlette:
    return Starlette(routes=confirm_routes(tracker, links))
