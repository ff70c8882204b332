"""The console's server time at full scale: the NOC board over 1,741 municipalities, the alarm console with 2,000 alarms.

    .venv/bin/python bench/bench_console.py [--alarms 2000] [--repeat 15]

No simulation: the context is built from the full generated inventory with the
real StateEngine and AlertingService — every polled device answers one round of
polls (``engine.sink``) and is judged (``engine.evaluate``); then one more round
in which enough CSs stay silent (and the lines of a few municipalities are cut)
to hold ``--alarms`` open alarms, which reach the alarm book through
``AlertingService.on_changes`` as in the main job. The console app is driven in
process over ASGI (no sockets); a wrapper around the app measures the server
time of each request, from its arrival to the last byte of the response.

Prints a summary and writes bench/results/console.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._proc import machine, proc_rss_mb  # noqa: E402
from monitor.japan_time import JST  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "console.json"
PAGES = {
    "noc_board": "/",
    "prefecture_tokyo": "/prefectures/13",
    "alarms_first_page": "/alarms",
    "alarms_page_10": "/alarms?page=10",
    "alarms_filtered_prefecture": "/alarms?prefecture=13",
    "alarms_critical_or_worse": "/alarms?severity=critical",
}
CUT_SITES = 20  # municipalities with both lines cut: site_unreachable alarms, devices behind UNREACHABLE


class NullOutbox:
    async def enqueue(self, notification: Any) -> None:
        pass


class ServerTimer:
    """ASGI wrapper: seconds from a request's arrival to the end of its response body, by path."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.times: dict[str, list[float]] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()

        async def timed_send(message: Any) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                key = scope["path"] + ("?" + scope["query_string"].decode() if scope["query_string"] else "")
                self.times.setdefault(key, []).append(time.perf_counter() - began)
        await self.app(scope, receive, timed_send)


def build_context(store: Any, alarms_wanted: int) -> tuple[Any, dict[str, Any]]:
    from alerting.alarms import OPEN_STATUSES
    from alerting.service import AlertingService
    from collectors.history import History
    from dashboards.context import ConsoleContext
    from monitor.envelope import Sample, origin_of
    from monitor.inventory import default_inventory
    from monitor.inventory.model import Role, Tier
    from monitor.state.engine import StateEngine
    from monitor.state.health import HealthSettings
    from monitor.state.settings import MonitorSettings

    inventory = default_inventory()
    # Judged as on a weekday at 10:00 JST whatever the hour of the run: at night silent CSs are OFF-SCHEDULE, not alarms.
    business_hours = dt.datetime(2026, 12, 2, 10, 0, tzinfo=JST).timestamp() - time.time()
    engine = StateEngine(inventory, MonitorSettings(health=HealthSettings(down_after=1, up_after=1)),
                         calendar_clock=lambda: time.time() + business_hours)
    alerting = AlertingService(inventory, None, NullOutbox(), None)
    engine.listeners.append(alerting.on_changes)
    polled = [d for d in inventory.polled_devices()]

    def judge_round(failing: set[str]) -> float:
        ts = time.time()
        engine.sink([Sample("poll", ts, origin_of(inventory, d), {"ok": d.id not in failing}, {"probe": "snmp"})
                     for d in polled])
        began = time.perf_counter()
        engine.evaluate()
        return time.perf_counter() - began

    first = judge_round(set())
    municipalities = [s.id for s in inventory.sites_of_tier(Tier.MUNICIPALITY)]
    cut = municipalities[::len(municipalities) // CUT_SITES][:CUT_SITES]
    failing = {d.id for site in cut for d in inventory.devices_by_site[site] if d.role is Role.ROUTER}
    for site in cut:  # behind cut lines nothing answers
        failing |= {d.id for d in inventory.devices_by_site[site] if d.role.answers_snmp}
    spare = [d.id for d in polled if d.role is Role.CS and d.site not in set(cut)]
    failing |= set(spare[:max(0, alarms_wanted - len(cut))])
    second = judge_round(failing)
    open_alarms = len(alerting.open_alarms(statuses=OPEN_STATUSES))
    ctx = ConsoleContext(inventory, engine, store, alerting, History(), secret_key=b"bench-console-secret-key-32byte!")
    return ctx, {"devices": len(inventory.devices), "polled": len(polled),
                 "municipalities": len(municipalities), "open_alarms": open_alarms,
                 "engine_states": len(engine.states), "judgement_s": [round(first, 3), round(second, 3)]}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    from dashboards.app import create_app
    from dashboards.auth import UserRole
    from monitor.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        store = await Store.open(f"sqlite+aiosqlite:///{tmp}/console.db")
        began = time.perf_counter()
        ctx, scale = build_context(store, args.alarms)
        scale["context_build_s"] = round(time.perf_counter() - began, 2)
        app = create_app(ctx)
        timer = ServerTimer(app)
        async with app.router.lifespan_context(app):
            await app.state.console.users.add("bench", UserRole.NOC_OPERATOR, "bench-password-123")
            transport = httpx.ASGITransport(app=timer)
            async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
                page = await client.get("/login")
                token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
                await client.post("/login", data={"name": "bench", "password": "bench-password-123",
                                                  "csrf_token": token})
                sizes = {}
                for name, path in PAGES.items():
                    for _ in range(2):  # warm-up: templates compiled, layout built
                        response = await client.get(path)
                        assert response.status_code == 200, (path, response.status_code)
                    timer.times.pop(path, None)
                    for _ in range(args.repeat):
                        response = await client.get(path)
                    sizes[name] = len(response.content)
        await store.close()
    pages = {}
    for name, path in PAGES.items():
        samples = sorted(timer.times[path])
        pages[name] = {"path": path, "median_ms": round(1000 * statistics.median(samples), 1),
                       "p95_ms": round(1000 * samples[min(len(samples) - 1, int(0.95 * len(samples)))], 1),
                       "max_ms": round(1000 * samples[-1], 1), "bytes": sizes[name], "requests": len(samples)}
    return {"scale": scale, "pages": pages, "process": proc_rss_mb(), "machine": machine(),
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alarms", type=int, default=2000, help="open alarms to hold (default 2000)")
    parser.add_argument("--repeat", type=int, default=15, help="timed requests per page (default 15)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    scale = result["scale"]
    print(f"scale: {scale['municipalities']} municipalities, {scale['devices']} devices, "
          f"{scale['open_alarms']} open alarms (context built in {scale['context_build_s']} s)")
    for name, page in result["pages"].items():
        print(f"{name:28} median {page['median_ms']:7.1f} ms  p95 {page['p95_ms']:7.1f} ms  "
              f"max {page['max_ms']:7.1f} ms  {page['bytes'] / 1024:7.0f} KiB")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    print(f"written {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
