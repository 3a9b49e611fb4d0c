"""Typed settings. Every key here is documented in config/default.yaml (a test checks that).

Unknown keys, wrong types and contradictory values are rejected at load time. Secrets never live here:
they come from environment variables (see config.env). The response engine's sections live in their own
modules — config/response.py (the clock rule pack), channels.py (alerts), duty.py (roster and escalation),
incidents.py (correlation and heat) — and are re-exported here; `Settings` puts them together.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from config.base import SEVERITIES as SEVERITIES
from config.base import Strict as Strict
from config.channels import AlertSettings as AlertSettings
from config.channels import RateLimits as RateLimits
from config.channels import RateLimitSettings as RateLimitSettings
from config.channels import RobotSettings as RobotSettings
from config.channels import TelegramSettings as TelegramSettings
from config.channels import parse_rate as parse_rate
from config.durations import Duration
from config.duty import EscalationSettings as EscalationSettings
from config.duty import QuietHoursSettings as QuietHoursSettings
from config.duty import RosterSettings as RosterSettings
from config.duty import ShiftSettings as ShiftSettings
from config.duty import parse_role as parse_role
from config.incidents import HeatSettings as HeatSettings
from config.incidents import IncidentSettings as IncidentSettings
from config.response import UPDATE_KIND as UPDATE_KIND
from config.response import ResponseSettings as ResponseSettings
from models.enums import Category


class AgencySettings(Strict):
    name: str = "某省林业厅"
    timezone: str = "Asia/Shanghai"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


Selector = str  # a CSS selector, or an XPath expression prefixed with "xpath:" (e.g. "xpath://h1/text()")


class SourceBase(Strict):
    """Keys every source kind has."""

    name: str = Field(min_length=1, max_length=100)
    interval: Duration = timedelta(minutes=10)
    enabled: bool = True
    # Health: the source is "silent" when it has produced nothing new for this long (None: 6 × interval,
    # at least a day).
    expected_period: Duration | None = None
    user_agent: str | None = None  # overrides fetch.user_agent for this source

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not re.fullmatch(r"[\w.\-]+", value):
            raise ValueError("use letters, digits, '-', '_' or '.' only")
        return value

    @field_validator("interval")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value.total_seconds() < 1:
            raise ValueError("must be at least 1s")
        return value

    @property
    def silent_after(self) -> timedelta:
        if self.expected_period is not None:
            return self.expected_period
        return max(self.interval * 6, timedelta(days=1))


class FeedSource(SourceBase):
    """RSS 0.9x/1.0/2.0, Atom or JSON Feed read with feedparser; conditional GET with ETag/Last-Modified."""

    kind: Literal["feed"] = "feed"
    url: str = Field(min_length=1)


class ArticleSelectors(Strict):
    title: Selector | None = None
    body: Selector | None = None
    published: Selector | None = None
    author: Selector | None = None


class ListSelectors(Strict):
    links: Selector  # article links on a list page (an <a> element or its @href)
    next_page: Selector | None = None  # the link to the next list page
    max_pages: int = Field(default=5, ge=1, le=1000)


class SiteSource(SourceBase):
    """A news or government site crawled with Scrapy: list pages, then article pages."""

    kind: Literal["site"] = "site"
    start_urls: list[str] = Field(min_length=1)
    list_page: ListSelectors
    article: ArticleSelectors | None = None  # None: automatic article extraction
    allowed_domains: list[str] = Field(default_factory=list)  # empty: the start URLs' hosts
    obey_robots: bool = True
    concurrency_per_domain: int = Field(default=2, ge=1, le=64)
    download_delay: Duration = timedelta(0)
    retries: int = Field(default=3, ge=0, le=20)


class Paging(Strict):
    mode: Literal["none", "page", "cursor"] = "none"
    param: str = "page"  # query parameter carrying the page number or cursor
    start: int = 1  # first page number (mode: page)
    max_pages: int = Field(default=5, ge=1, le=1000)
    cursor_path: str | None = None  # dot path of the next cursor in the response (mode: cursor)

    @model_validator(mode="after")
    def _cursor_needs_path(self) -> Paging:
        if self.mode == "cursor" and not self.cursor_path:
            raise ValueError("cursor_path: required when mode is cursor")
        return self


class JsonApiSource(SourceBase):
    """A JSON-over-HTTP API (Weibo-style APIs, RSSHub JSON routes, an agency's own systems)."""

    kind: Literal["json_api"] = "json_api"
    url: str = Field(min_length=1)
    method: Literal["GET", "POST"] = "GET"
    # Header and parameter values may name environment variables as ${NAME} (credentials stay out of config).
    headers: dict[str, str] = Field(default_factory=dict)
    params: dict[str, str] = Field(default_factory=dict)
    items_path: str = ""  # dot path of the list of items in the response ("" = the response is the list)
    fields: dict[str, str]  # post field → dot path inside one item
    paging: Paging = Field(default_factory=Paging)

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = set(value) - POST_FIELDS
        if unknown:
            raise ValueError(f"unknown post field(s) {sorted(unknown)}; use {sorted(POST_FIELDS)}")
        if "text" not in value and "title" not in value:
            raise ValueError("map at least one of 'text' or 'title'")
        return value


POST_FIELDS = frozenset(
    {"id", "url", "title", "text", "author", "published", "reposts", "comments", "likes", "author_followers"}
)

SOURCE_KINDS = ("feed", "site", "json_api")


def _source_kind(value: object) -> str:
    """The discriminator: a source without `kind` is a feed."""
    if isinstance(value, dict):
        return str(value.get("kind", "feed"))
    return str(getattr(value, "kind", "feed"))


SourceSettings = Annotated[
    Annotated[FeedSource, Tag("feed")] | Annotated[SiteSource, Tag("site")] | Annotated[JsonApiSource, Tag("json_api")],
    Discriminator(_source_kind),
]


class ImportMapping(Strict):
    """How to read one kind of export file (`yuqing import FILE --mapping NAME`)."""

    format: Literal["auto", "csv", "jsonl", "xlsx"] = "auto"
    source: str = Field(min_length=1, max_length=100)  # the source name the imported posts are recorded under
    columns: dict[str, str]  # file column (header) → post field
    encoding: str | None = None  # CSV encoding; None: detected
    sheet: str | None = None  # Excel sheet; None: the first

    @field_validator("columns")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = set(value.values()) - POST_FIELDS
        if unknown:
            raise ValueError(f"unknown post field(s) {sorted(unknown)}; use {sorted(POST_FIELDS)}")
        if "text" not in value.values() and "title" not in value.values():
            raise ValueError("map a column to 'text' or 'title'")
        return value


class DedupSettings(Strict):
    near_window: Duration = timedelta(days=7)
    near_threshold: float = Field(default=0.5, gt=0.0, le=1.0)
    near_containment: float = Field(default=0.8, gt=0.0, le=1.0)


class HealthSettings(Strict):
    failing_after: int = Field(default=3, ge=1)  # consecutive failed polls before a source is "failing"
    admin_chat_ids: list[int] = Field(default_factory=list)  # Telegram chats for health alerts (empty: all)


class FetchSettings(Strict):
    user_agent: str = "yuqing/0.1 (+public-opinion monitor)"
    timeout: Duration = timedelta(seconds=20)
    max_bytes: int = Field(default=10_000_000, ge=1024)
    max_redirects: int = Field(default=5, ge=0, le=30)


class TopicRule(Strict):
    """A topic rule (专题): an expression over keywords and word groups, and what a match does."""

    name: str = Field(min_length=1, max_length=100)
    expr: str = Field(min_length=1)
    action: Literal["relevant", "category", "boost", "suppress"] = "relevant"
    category: Category | None = None  # for action category / boost
    boost: float = Field(default=0.2, gt=0.0, le=1.0)  # added to the category's score (action boost)

    @model_validator(mode="after")
    def _category_when_needed(self) -> TopicRule:
        if self.action in ("category", "boost") and self.category is None:
            raise ValueError(f"category: required when action is {self.action}")
        return self


class TopicSettings(Strict):
    word_groups: dict[str, list[str]] = Field(default_factory=dict)  # named groups: {地域词}, {屏蔽词} …
    rules: list[TopicRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _rules_parse(self) -> TopicSettings:
        from classifier.rules import validate_topics  # the rule language lives with the classifier

        problems = validate_topics(self)
        if problems:
            key, reason = problems[0]
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise ValueError(f"{key}: {reason}{more}")
        return self


class ProfileSettings(Strict):
    """What "relevant" means for this agency: its domain and where it has jurisdiction."""

    domain_terms: list[str] = Field(default_factory=list)  # the agency's domain lexicon (森林火灾, 林长制 …)
    jurisdiction: list[str] = Field(default_factory=list)  # province / city / county names it answers for
    in_jurisdiction_boost: float = Field(default=0.15, ge=0.0, le=1.0)
    domain_boost: float = Field(default=0.1, ge=0.0, le=1.0)


class ClassifierSettings(Strict):
    model_dir: str = "var/models"
    relevance_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    secondary_threshold: float = Field(default=0.25, ge=0.0, le=1.0)  # other categories this likely are listed




class RuntimeSettings(Strict):
    batch_size: int = Field(default=500, ge=1, le=100_000)


class OpsSettings(Strict):
    """Operations: the audit job, the daily heartbeat and the single-active-scheduler lease."""

    audit_every: Duration = timedelta(minutes=1)
    audit_grace: Duration = timedelta(minutes=2)  # a notice this late without firing is flagged and re-fired
    heartbeat_at: str = "08:30"  # local time HH:MM, or "off"
    lease_ttl: Duration = timedelta(seconds=30)
    lease_renew: Duration = timedelta(seconds=10)
    schedule_horizon: Duration = timedelta(hours=6)  # triggers further out are made by a periodic sweep

    @field_validator("heartbeat_at", mode="before")
    @classmethod
    def _clock_time(cls, value: object) -> object:
        if value is False or value is None:  # YAML 1.1 reads an unquoted off as false
            return "off"
        if isinstance(value, int) and not isinstance(value, bool):
            raise ValueError('quote the time, e.g. "08:30" (unquoted, YAML reads 8:30 as a number)')
        if isinstance(value, str) and value != "off" and not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", value):
            raise ValueError(f'{value!r} is not a time of day: use "HH:MM" (e.g. "08:30") or "off"')
        return value

    @model_validator(mode="after")
    def _renew_before_expiry(self) -> OpsSettings:
        for key in ("audit_every", "audit_grace", "lease_ttl", "lease_renew", "schedule_horizon"):
            if getattr(self, key).total_seconds() <= 0:
                raise ValueError(f"{key}: must be longer than 0s")
        if self.lease_renew * 2 > self.lease_ttl:
            raise ValueError("lease_renew: renew at least twice per lease_ttl (lease_renew <= lease_ttl / 2)")
        if self.schedule_horizon < timedelta(minutes=1):
            raise ValueError("schedule_horizon: must be at least 1m")
        return self

    @property
    def heartbeat_time(self) -> tuple[int, int] | None:
        """(hour, minute) of the daily heartbeat in the agency's time zone; None when off."""
        if self.heartbeat_at == "off":
            return None
        hour, minute = self.heartbeat_at.split(":")
        return int(hour), int(minute)


class Settings(Strict):
    agency: AgencySettings = Field(default_factory=AgencySettings)
    sources: list[SourceSettings] = Field(default_factory=list)
    fetch: FetchSettings = Field(default_factory=FetchSettings)
    classifier: ClassifierSettings = Field(default_factory=ClassifierSettings)
    response: ResponseSettings = Field(default_factory=ResponseSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)
    imports: dict[str, ImportMapping] = Field(default_factory=dict)
    health: HealthSettings = Field(default_factory=HealthSettings)
    dedup: DedupSettings = Field(default_factory=DedupSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    profile: ProfileSettings = Field(default_factory=ProfileSettings)
    roster: RosterSettings = Field(default_factory=RosterSettings)
    escalation: EscalationSettings = Field(default_factory=EscalationSettings)
    incidents: IncidentSettings = Field(default_factory=IncidentSettings)
    ops: OpsSettings = Field(default_factory=OpsSettings)

    @model_validator(mode="after")
    def _unique_sources(self) -> Settings:
        seen: set[str] = set()
        for i, src in enumerate(self.sources):
            if src.name in seen:
                raise ValueError(f"sources[{i}].name: duplicate source name {src.name!r}")
            seen.add(src.name)
        return self

    @model_validator(mode="after")
    def _roster_consistent(self) -> Settings:
        from alerts.roster import check_shifts  # shift times are the roster's business

        problem = check_shifts(self.roster, self.agency.timezone)
        if problem:
            raise ValueError(f"roster.shifts[{problem[0]}].{problem[1]}: {problem[2]}")
        return self
