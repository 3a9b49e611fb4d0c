"""Incident correlation and heat (`incidents:`): which posts join one incident, and how hot it is."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

from pydantic import Field, field_validator

from config.base import Strict
from config.durations import Duration
from models.enums import Category

CENTRAL_MEDIA_DEFAULT = ["新华社", "新华网", "人民日报", "人民网", "央视", "中央电视台", "中国新闻网", "中新社", "央广",
                         "光明日报", "经济日报", "中国日报", "xinhuanet.com", "news.cn", "people.com.cn", "cctv.com",
                         "cctv.cn", "chinanews.com.cn", "chinanews.com", "cnr.cn", "gmw.cn", "ce.cn",
                         "chinadaily.com.cn"]
LOCAL_MEDIA_DEFAULT = ["日报", "晚报", "都市报", "电视台", "广播电视", "融媒体", "新闻网", "gov.cn"]


class HeatSettings(Strict):
    """Heat (热度) of an incident: volume, distinct sources, source authority and speed."""

    window: Duration = timedelta(minutes=10)  # speed: posts in the last window against the window before
    rising_ratio: float = Field(default=1.5, gt=1.0, le=100.0)  # trend rises/falls past this ratio
    bands: list[float] = Field(default_factory=lambda: [20.0, 40.0, 60.0, 80.0])  # heat 0..100 cut into bands
    # Who counts as central / local media: names matched in the source name or author, or domains (with a dot)
    # matched against the post's host; everyone else is self-media.
    central_media: list[str] = Field(default_factory=lambda: list(CENTRAL_MEDIA_DEFAULT))
    local_media: list[str] = Field(default_factory=lambda: list(LOCAL_MEDIA_DEFAULT))

    @field_validator("window")
    @classmethod
    def _positive_window(cls, value: timedelta) -> timedelta:
        if value.total_seconds() < 1:
            raise ValueError("must be at least 1s")
        return value

    @field_validator("bands")
    @classmethod
    def _increasing(cls, value: list[float]) -> list[float]:
        if any(not 0 < b < 100 for b in value):
            raise ValueError("every band limit must lie between 0 and 100")
        if any(a >= b for a, b in pairwise(value)):
            raise ValueError("band limits must be strictly increasing")
        return value


class IncidentSettings(Strict):
    """Correlation: which posts join one incident (one real-world event)."""

    window: Duration = timedelta(hours=48)  # a post joins only an incident whose last post is this recent
    min_topic: float = Field(default=0.2, gt=0.0, le=1.0)  # topical similarity needed in any case (>0)
    join_score: float = Field(default=0.45, gt=0.0, le=2.0)  # topic + place bonus needed to join
    place_bonus: float = Field(default=0.2, ge=0.0, le=1.0)  # per place post and incident share (at most two)
    # Categories that may share an incident besides the same category (pairs).
    compatible_categories: list[list[Category]] = Field(default_factory=lambda: [
        [Category.EMERGENCY, Category.FALSE_INFO], [Category.EMERGENCY, Category.GOV_IMAGE],
        [Category.LIVELIHOOD, Category.GOV_IMAGE],
    ])
    heat: HeatSettings = Field(default_factory=HeatSettings)

    @field_validator("window")
    @classmethod
    def _positive_window(cls, value: timedelta) -> timedelta:
        if value.total_seconds() < 60:
            raise ValueError("must be at least 1m")
        return value

    @field_validator("compatible_categories")
    @classmethod
    def _pairs(cls, value: list[list[Category]]) -> list[list[Category]]:
        for i, pair in enumerate(value):
            if len(pair) != 2:
                raise ValueError(f"[{i}]: give exactly two categories")
            if Category.IRRELEVANT in pair:
                raise ValueError(f"[{i}]: IRRELEVANT never opens or joins an incident")
        return value
