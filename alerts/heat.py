"""Heat (热度) of an incident (pure): how much is being said about it, by whom, and how fast.

`measure(mentions, now=…, params=…)` reads every mention of an incident — each post and each copy of it
(a repost, the same article on another site), with the source, author, host and the time yuqing saw it —
and gives a `HeatReading`:

- volume: mentions in all; sources: distinct outlets (a source's author or, without one, the URL host);
- authority: the most authoritative outlet: central media (新华社, 人民日报 …) > local media > self-media,
  from small configurable lists of names and domains;
- speed: mentions in the last `window` against the window before it, which gives the trend
  (rising ↑ / steady → / falling ↓);
- score 0..100 = 30 % volume + 25 % sources + 20 % authority + 25 % speed, each on a log scale saturating at
  `VOLUME_FULL`, `SOURCES_FULL` and `SPEED_FULL`; the score falls into a band (limits in config).

`changed(old, new)` says when the timeline records HEAT_CHANGED: only when the trend changes or the score
crosses a band limit, never on every post. Alerts show it as "热度：↑ 37条/10分钟，来源 9 个" (alerts/render.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum, StrEnum
from typing import Any

from config.schema import HeatSettings

VOLUME_FULL = 500  # mentions at which the volume part is full
SOURCES_FULL = 50  # distinct outlets at which the sources part is full
SPEED_FULL = 100  # mentions in one window at which the speed part is full
WEIGHTS = {"volume": 0.30, "sources": 0.25, "authority": 0.20, "speed": 0.25}


class Trend(StrEnum):
    RISING = "rising"
    STEADY = "steady"
    FALLING = "falling"

    @property
    def arrow(self) -> str:
        return {"rising": "↑", "steady": "→", "falling": "↓"}[self.value]


class Authority(IntEnum):
    SELF_MEDIA = 0
    LOCAL = 1
    CENTRAL = 2

    @property
    def weight(self) -> float:
        return (0.3, 0.6, 1.0)[self.value]

    @property
    def label(self) -> str:
        return ("自媒体", "地方媒体", "中央媒体")[self.value]


@dataclass(frozen=True)
class Mention:
    """One post or copy of one: where it was seen and when."""

    at: datetime
    source: str
    host: str = ""
    author: str | None = None

    @property
    def outlet(self) -> str:
        """Who said it: the author on a platform, else the site (host), else the configured source."""
        return f"{self.source}|{(self.author or '').strip() or self.host}"


@dataclass(frozen=True)
class HeatParams:
    window: timedelta
    rising_ratio: float
    bands: tuple[float, ...]
    central: tuple[str, ...]
    local: tuple[str, ...]

    @classmethod
    def from_settings(cls, settings: HeatSettings) -> HeatParams:
        return cls(settings.window, settings.rising_ratio, tuple(settings.bands),
                   tuple(_key(x) for x in settings.central_media if x.strip()),
                   tuple(_key(x) for x in settings.local_media if x.strip()))


@dataclass(frozen=True)
class HeatReading:
    score: float
    trend: Trend
    band: int
    volume: int
    sources: int
    authority: Authority
    recent: int  # mentions in the last window
    previous: int  # mentions in the window before
    window_s: float

    def detail(self) -> dict[str, Any]:
        """JSON for `Incident.features["heat"]` and the HEAT_CHANGED event."""
        return {"score": self.score, "trend": self.trend.value, "band": self.band, "volume": self.volume,
                "sources": self.sources, "authority": self.authority.name.lower(), "recent": self.recent,
                "previous": self.previous, "window_s": self.window_s}


def _key(text: str) -> str:
    return text.strip().lower()


def authority_of(m: Mention, params: HeatParams) -> Authority:
    names = f"{m.source} {m.author or ''}".lower()
    host = m.host.lower()
    for level, entries in ((Authority.CENTRAL, params.central), (Authority.LOCAL, params.local)):
        for entry in entries:
            if "." in entry and host and (host == entry or host.endswith("." + entry)):
                return level
            if "." not in entry and entry in names:
                return level
    return Authority.SELF_MEDIA


def trend_of(recent: int, previous: int, ratio: float) -> Trend:
    if recent > previous and recent >= previous * ratio:
        return Trend.RISING
    if previous > recent and previous >= recent * ratio:
        return Trend.FALLING
    return Trend.STEADY


def band_of(score: float, bands: Iterable[float]) -> int:
    """0 below the first limit, 1 from the first limit on, …"""
    return sum(1 for limit in bands if score >= limit)


def _part(value: int, full: int) -> float:
    return min(1.0, math.log1p(max(value, 0)) / math.log1p(full))


def measure(mentions: Iterable[Mention], *, now: datetime, params: HeatParams) -> HeatReading:
    items = list(mentions)
    w = params.window
    recent = sum(1 for m in items if now - w < m.at <= now)
    previous = sum(1 for m in items if now - 2 * w < m.at <= now - w)
    outlets = {m.outlet for m in items}
    authority = max((authority_of(m, params) for m in items), default=Authority.SELF_MEDIA)
    raw = (WEIGHTS["volume"] * _part(len(items), VOLUME_FULL) + WEIGHTS["sources"] * _part(len(outlets), SOURCES_FULL)
           + WEIGHTS["authority"] * (authority.weight if items else 0.0)
           + WEIGHTS["speed"] * _part(recent, SPEED_FULL))
    score = round(100 * raw, 1)
    return HeatReading(score=score, trend=trend_of(recent, previous, params.rising_ratio),
                       band=band_of(score, params.bands), volume=len(items), sources=len(outlets),
                       authority=authority, recent=recent, previous=previous, window_s=w.total_seconds())


def changed(old_score: float, old_trend: str, new: HeatReading, bands: Iterable[float]) -> bool:
    """Worth a timeline entry: the trend changed, or the score crossed a band limit."""
    return old_trend != new.trend.value or band_of(old_score, bands) != new.band


def view_fields(*, heat: float, trend: str, source_count: int, features: Mapping[str, Any]) -> dict[str, Any]:
    """The `IncidentView` heat fields of an incident row (empty when it has never been measured)."""
    reading = features.get("heat") if isinstance(features, Mapping) else None
    if not isinstance(reading, Mapping):
        return {}
    return {"heat": heat, "heat_trend": trend, "heat_recent": int(reading.get("recent", 0)),
            "heat_window_s": float(reading.get("window_s", 600.0)), "source_count": source_count}
