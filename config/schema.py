"""Typed settings. Every key here is documented in config/default.yaml (a test checks that).

Unknown keys, wrong types and contradictory values are rejected at load time. Secrets never live here:
they come from environment variables (see config.env).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from config.durations import Duration, parse_duration
from models.enums import Category, Severity

SEVERITIES = ("I", "II", "III", "IV")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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


# The officer's action that meets a deadline (a deadline is met by the matching action, never by silence).
MetBy = Literal["release", "press_conference", "update"]


class DeadlineKindSettings(Strict):
    label: str = Field(min_length=1)
    within: Duration
    reminders: list[Duration] = Field(default_factory=list)
    met_by: MetBy = "release"

    @model_validator(mode="after")
    def _reminders_inside(self) -> DeadlineKindSettings:
        if self.within.total_seconds() <= 0:
            raise ValueError("within: must be longer than 0s")
        for i, offset in enumerate(self.reminders):
            if offset.total_seconds() <= 0 or offset >= self.within:
                raise ValueError(
                    f"reminders[{i}]: a reminder must come between 0s and the deadline ({offset} vs {self.within})"
                )
        if len(set(self.reminders)) != len(self.reminders):
            raise ValueError("reminders: the same offset is listed twice")
        return self


def _default_kinds() -> dict[str, DeadlineKindSettings]:
    return {
        "release_5h": DeadlineKindSettings(
            label="权威信息发布", within=timedelta(hours=5), reminders=[timedelta(hours=1), timedelta(minutes=30)]
        ),
        "press_conference_24h": DeadlineKindSettings(
            label="新闻发布会", within=timedelta(hours=24), reminders=[timedelta(hours=4), timedelta(hours=1)],
            met_by="press_conference",
        ),
        "response_48h": DeadlineKindSettings(
            label="回应", within=timedelta(hours=48), reminders=[timedelta(hours=12), timedelta(hours=2)]
        ),
    }


def _default_by_severity() -> dict[str, list[str]]:
    return {
        "I": ["release_5h", "press_conference_24h"],
        "II": ["release_5h", "press_conference_24h"],
        "III": ["response_48h"],
        "IV": ["response_48h"],
    }


class UpdateSettings(Strict):
    """Continuous updates (持续发布): after the `after` deadline is met or missed, one update is due every
    `every` until the incident is closed. Severities not listed get none."""

    label: str = Field(default="持续发布", min_length=1)
    every: Duration = timedelta(hours=24)
    reminders: list[Duration] = Field(default_factory=lambda: [timedelta(hours=2)])
    after: str = "press_conference_24h"
    severities: list[Severity] = Field(default_factory=lambda: [Severity.I, Severity.II])

    @model_validator(mode="after")
    def _reminders_inside(self) -> UpdateSettings:
        if self.every.total_seconds() <= 0:
            raise ValueError("every: must be longer than 0s")
        for i, offset in enumerate(self.reminders):
            if offset.total_seconds() <= 0 or offset >= self.every:
                raise ValueError(f"reminders[{i}]: a reminder must come between 0s and the interval")
        return self


class ResponseSettings(Strict):
    deadlines: dict[str, DeadlineKindSettings] = Field(default_factory=_default_kinds)
    by_severity: dict[str, list[str]] = Field(default_factory=_default_by_severity)
    updates: UpdateSettings = Field(default_factory=UpdateSettings)

    @model_validator(mode="after")
    def _consistent(self) -> ResponseSettings:
        for sev in self.by_severity:
            if sev not in SEVERITIES:
                raise ValueError(f"by_severity.{sev}: unknown severity (use I, II, III or IV)")
        for sev in SEVERITIES:
            if sev not in self.by_severity:
                raise ValueError(f"by_severity.{sev}: missing; every severity needs a list (may be empty)")
            for kind in self.by_severity[sev]:
                if kind not in self.deadlines:
                    raise ValueError(f"by_severity.{sev}: deadline kind {kind!r} is not defined in deadlines")
        for kind in self.deadlines:
            if not re.fullmatch(r"[a-z0-9_]+", kind):
                raise ValueError(f"deadlines.{kind}: use lower-case letters, digits and '_' only")
            if kind == UPDATE_KIND:
                raise ValueError(f"deadlines.{kind}: reserved for continuous updates (configure response.updates)")
        if self.updates.after not in self.deadlines:
            raise ValueError(f"updates.after: deadline kind {self.updates.after!r} is not defined in deadlines")
        return self


UPDATE_KIND = "update"  # the deadline kind of continuous updates (seq 1, 2, …)


class TelegramSettings(Strict):
    enabled: bool = True
    chat_ids: list[int] = Field(default_factory=list)
    timeout: Duration = timedelta(seconds=15)


class RobotSettings(Strict):
    """A group-robot webhook (WeCom / DingTalk / Feishu). The webhook URL and signing secret are secrets:
    they come from the environment (see README), never from this file."""

    enabled: bool = True
    timeout: Duration = timedelta(seconds=10)


class EmailSettings(Strict):
    enabled: bool = True
    host: str = ""  # SMTP server; empty disables email
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    sender: str = ""  # From address
    to: list[str] = Field(default_factory=list)
    timeout: Duration = timedelta(seconds=20)


class WebhookSettings(Strict):
    enabled: bool = True
    url: str = ""  # receiver of JSON alerts signed with HMAC-SHA256 (secret: YUQING_WEBHOOK_SECRET); empty disables
    timeout: Duration = timedelta(seconds=10)


_RATE = re.compile(r"\s*(\d+)\s*/\s*(\S+)\s*")


def parse_rate(text: str) -> tuple[int, timedelta]:
    """ "20/1m" → (20, 1 minute): at most 20 messages in any sliding window of one minute."""
    match = _RATE.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r} is not a rate (use COUNT/DURATION, e.g. 20/1m or 30/1s)")
    window = parse_duration(match.group(2))
    if int(match.group(1)) < 1 or window.total_seconds() <= 0:
        raise ValueError(f"{text!r}: the count and the window must be positive")
    return int(match.group(1)), window


class RateLimitSettings(Strict):
    """Sliding-window send limits of one channel, each "COUNT/DURATION"; every listed window must have room."""

    overall: list[str] = Field(default_factory=list)  # the whole channel (one bot, one SMTP relay …)
    per_receiver: list[str] = Field(default_factory=list)  # one chat / robot webhook / address
    per_group: list[str] = Field(default_factory=list)  # additionally, one group chat (Telegram: negative id)

    @field_validator("overall", "per_receiver", "per_group")
    @classmethod
    def _rates(cls, value: list[str]) -> list[str]:
        for item in value:
            parse_rate(item)
        return value


class RateLimits(Strict):
    telegram: RateLimitSettings = Field(default_factory=lambda: RateLimitSettings(
        overall=["30/1s"], per_group=["20/1m"]))
    wecom: RateLimitSettings = Field(default_factory=lambda: RateLimitSettings(per_receiver=["20/1m"]))
    dingtalk: RateLimitSettings = Field(default_factory=lambda: RateLimitSettings(per_receiver=["20/1m"]))
    feishu: RateLimitSettings = Field(default_factory=lambda: RateLimitSettings(per_receiver=["100/1m", "5/1s"]))
    email: RateLimitSettings = Field(default_factory=lambda: RateLimitSettings(overall=["60/1m"]))
    webhook: RateLimitSettings = Field(default_factory=RateLimitSettings)


class AlertSettings(Strict):
    console: bool = True
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    wecom: RobotSettings = Field(default_factory=RobotSettings)
    dingtalk: RobotSettings = Field(default_factory=RobotSettings)
    feishu: RobotSettings = Field(default_factory=RobotSettings)
    email: EmailSettings = Field(default_factory=EmailSettings)
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)
    rate_limits: RateLimits = Field(default_factory=RateLimits)
    retry_for: Duration = timedelta(hours=6)  # transient failures are retried this long after queueing


class RuntimeSettings(Strict):
    batch_size: int = Field(default=500, ge=1, le=100_000)


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

    @model_validator(mode="after")
    def _unique_sources(self) -> Settings:
        seen: set[str] = set()
        for i, src in enumerate(self.sources):
            if src.name in seen:
                raise ValueError(f"sources[{i}].name: duplicate source name {src.name!r}")
            seen.add(src.name)
        return self
