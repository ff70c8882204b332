"""The console's words and times: a message catalogue per language, JST and Japanese era dates.

Templates never hold prose: they call ``t("key")`` and the catalogue of the
session's language answers (``dashboards/messages/<lang>/<area>.json``, one
file per area of the console; the key sets of the languages must match — a test
checks). Japanese is the default; the language
switch (``POST /lang``) stores the choice in the session. Placeholders use
``str.format`` names: ``t("alarms.count", count=3)``.

Times are shown in Japan time whatever the server's zone; in Japanese with the
era date the municipalities use (令和8年12月2日 10:05:00), in English as ISO-like
text with "JST".
"""

from __future__ import annotations

import json
import logging
from functools import cache
from pathlib import Path
from typing import Any, Callable

from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from alerting.notify.jpdate import jst, wareki
from monitor.logs import fields

log = logging.getLogger("dashboards.i18n")

MESSAGES_DIR = Path(__file__).parent / "messages"
LANGUAGES = ("ja", "en")
DEFAULT_LANG = "ja"

Translate = Callable[..., str]


@cache
def catalogue(lang: str) -> dict[str, str]:
    """Every ``messages/<lang>/*.json`` merged (one file per area, so areas are edited apart); a key twice is an error."""
    merged: dict[str, str] = {}
    for path in sorted((MESSAGES_DIR / lang).glob("*.json")):
        part = json.loads(path.read_text(encoding="utf-8"))
        clash = merged.keys() & part.keys()
        if clash:
            raise ValueError(f"{path}: keys already defined in another {lang} catalogue: {sorted(clash)[:5]}")
        merged.update(part)
    return merged


def lang_of(request: Request) -> str:
    lang = request.session.get("lang")
    return lang if lang in LANGUAGES else DEFAULT_LANG


def translate(lang: str, key: str, **values: Any) -> str:
    """The message for ``key`` in ``lang`` (Japanese if that language lacks it; the key itself if both do)."""
    text = catalogue(lang).get(key)
    if text is None:
        text = catalogue(DEFAULT_LANG).get(key)
        if text is None:
            log.warning("message missing", extra=fields(key=key, lang=lang))
            return key
    return text.format(**values) if values else text


def label(prefix: str, value: str, lang: str) -> str:
    """``prefix.value`` from the catalogue if it has it, else the value as it is (codes from other sources)."""
    key = f"{prefix}.{value}"
    return translate(lang, key) if key in catalogue(lang) or key in catalogue(DEFAULT_LANG) else value


def translator(lang: str) -> Translate:
    def t(key: str, **values: Any) -> str:
        return translate(lang, key, **values)
    return t


def when(ts: float | None, lang: str) -> str:
    """A moment for people: 令和8年12月2日 10:05:00 / 2026-12-02 10:05:00 JST."""
    if ts is None:
        return "—"
    moment = jst(ts)
    if lang == "ja":
        return f"{wareki(moment.date())} {moment:%H:%M:%S}"
    return f"{moment:%Y-%m-%d %H:%M:%S} JST"


def clock_time(ts: float) -> str:
    """Hours and minutes in JST, for graph axes."""
    return f"{jst(ts):%H:%M}"


def duration(seconds: float, lang: str) -> str:
    """How long, to the minute: 2時間5分 / 2 h 5 min (seconds under a minute)."""
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    units = ("日", "時間", "分", "秒") if lang == "ja" else (" d", " h", " min", " s")
    parts = [(days, units[0]), (hours, units[1]), (minutes, units[2])]
    shown = [f"{n}{unit}" for n, unit in parts if n][:2] or [f"{secs}{units[3]}"]
    return ("" if lang == "ja" else " ").join(shown)


async def switch_language(request: Request) -> RedirectResponse:
    """``POST /lang`` (lang, next): keep the choice in the session and go back to the page."""
    form = await request.form()
    lang = str(form.get("lang", ""))
    if lang in LANGUAGES:
        request.session["lang"] = lang
    target = str(form.get("next", "/"))
    if not target.startswith("/") or target.startswith("//"):  # only back into the console
        target = "/"
    return RedirectResponse(target, status_code=303)


def routes() -> list[Route]:
    return [Route("/lang", switch_language, methods=["POST"])]
