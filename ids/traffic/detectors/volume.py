"""Volume anomaly: a link's bytes in one minute far above its learned peak for that hour of week."""

from __future__ import annotations

from ids.traffic.baseline import Baseline, hour_of_week
from ids.traffic.config import IdsConfig
from ids.traffic.decode import Packet
from ids.traffic.detectors.sink import AlertSink
from ids.traffic.eve import AlertType, make_alert


class VolumeDetector:
    def __init__(self, baseline: Baseline, config: IdsConfig, sink: AlertSink):
        self.baseline = baseline
        self.factor = config.volume_factor
        self.floor = config.volume_floor
        self.sink = sink
        self.minutes: dict[tuple[str, str], list] = {}  # link → [minute, bytes, threshold, peak]

    def packet(self, pkt: Packet) -> None:
        link = (pkt.src, pkt.dst)
        minute = int(pkt.ts // 60)
        state = self.minutes.get(link)
        if state is None or state[0] != minute:
            peak = self.baseline.peak(link, hour_of_week(pkt.ts))
            self.minutes[link] = state = [minute, 0, max(self.factor * peak, self.floor), peak]
        state[1] += pkt.length
        if state[1] > state[2]:
            state[2] = float("inf")  # once per minute at most
            key = (AlertType.VOLUME_ANOMALY, *link)
            if self.sink.due(key, pkt.ts):
                self.sink.emit(key, pkt.ts, make_alert(
                    AlertType.VOLUME_ANOMALY, pkt, "JUKIMON link volume far above baseline",
                    f"volume: bytes per minute > max({self.factor:g} × learned peak for the hour of week, "
                    f"{self.floor} B)",
                    {"bytes_this_minute": state[1], "learned_peak_bytes_per_minute": state[3],
                     "hour_of_week": hour_of_week(pkt.ts)}))
