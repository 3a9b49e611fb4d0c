"""Typed settings. Every key here is documented in config/default.yaml (a test checks that).

Unknown keys, wrong types and contradictory values are rejected at load time. Secrets never live here:
they come from environment variables (see config.env).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from itertools import pairwise
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from config.durations import Duration, parse_duration
from models.enums import Category, DutyRole, Severity

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
    bot: bool = True  # answer the alert buttons and commands (polls getUpdates; run one instance per token)
    allowed_chat_ids: list[int] = Field(default_factory=list)  # chats the bot serves (empty: the alert chats)
    allowed_user_ids: list[int] = Field(default_factory=list)  # users who may act (empty: nobody)
    allow_private: bool = True  # an allowed user may also use the bot in a private chat


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


ROLE_LABELS = {r.label: r for r in DutyRole}


def parse_role(value: object) -> DutyRole:
    """A duty role by its value (duty_officer …) or its Chinese label (值班员 …); ValueError names both."""
    if isinstance(value, DutyRole):
        return value
    text = str(value).strip()
    if text in ROLE_LABELS:
        return ROLE_LABELS[text]
    try:
        return DutyRole(text.lower())
    except ValueError:
        known = ", ".join(f"{r.value} ({r.label})" for r in DutyRole)
        raise ValueError(f"unknown role {text!r} (use {known})") from None


Role = Annotated[DutyRole, BeforeValidator(parse_role)]


def _local_text(value: object) -> object:
    """YAML reads 22:00 as the sexagesimal number 1320 and 2026-10-01 as a date: give them back as text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and 0 <= value <= 24 * 60:
        return f"{value // 60:02d}:{value % 60:02d}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return value


LocalText = Annotated[str, BeforeValidator(_local_text)]  # a local date or time of day, as written
_HHMM = re.compile(r"^([01]?\d|2[0-3]):[0-5]\d$")


class PersonSettings(Strict):
    """One person of the duty roster and how to reach them directly."""

    role: Role
    department: str = ""  # "" = the whole agency
    telegram: int | None = None  # Telegram user or chat id (the bot must have been started by the person)
    email: str | None = None
    mobile: str | None = None  # for @-mentions by the WeCom / DingTalk group robots

    @field_validator("mobile")
    @classmethod
    def _digits(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"\+?\d{5,20}", value.strip()):
            raise ValueError("a mobile number is digits only (e.g. 13800000000)")
        return value.strip() if value else None


class ShiftSettings(Strict):
    """A dated duty shift in the agency's local time. `start`/`end` are HH:MM on `date` (end "次日HH:MM" or
    "24:00" for an overnight shift) or full "YYYY-MM-DD HH:MM"."""

    person: str = Field(min_length=1)
    date: LocalText | None = None
    start: LocalText
    end: LocalText
    role: Role | None = None  # default: the person's role
    department: str | None = None  # default: the person's department


class RosterSettings(Strict):
    people: dict[str, PersonSettings] = Field(default_factory=dict)
    shifts: list[ShiftSettings] = Field(default_factory=list)


def _default_chain() -> list[DutyRole]:
    return [DutyRole.DUTY_OFFICER, DutyRole.SECTION_CHIEF, DutyRole.DEPUTY_LEADER, DutyRole.PRINCIPAL_LEADER]


class QuietHoursSettings(Strict):
    """Local times; the period may cross midnight (22:00–07:30)."""

    start: LocalText
    end: LocalText

    @field_validator("start", "end")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        if not _HHMM.fullmatch(str(value).strip()):
            raise ValueError(f"{value!r} is not a time of day (use HH:MM, e.g. 22:00)")
        return str(value).strip()

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHoursSettings:
        if self.start == self.end:
            raise ValueError("end: must differ from start")
        return self


class EscalationSettings(Strict):
    enabled: bool = True
    wait: Duration = timedelta(minutes=15)
    repeat_every: Duration = timedelta(minutes=30)
    chain: list[Role] = Field(default_factory=_default_chain, min_length=1)
    chains: dict[str, list[Role]] = Field(default_factory=dict)  # department → its own chain
    missed_to: list[Role] = Field(default_factory=lambda: [DutyRole.DEPUTY_LEADER, DutyRole.PRINCIPAL_LEADER])
    quiet_hours: QuietHoursSettings | None = None

    @field_validator("wait", "repeat_every")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value.total_seconds() < 1:
            raise ValueError("must be at least 1s")
        return value

    @field_validator("chains")
    @classmethod
    def _chains_not_empty(cls, value: dict[str, list[DutyRole]]) -> dict[str, list[DutyRole]]:
        for dept, roles in value.items():
            if not roles:
                raise ValueError(f"{dept}: a chain needs at least one role")
        return value

    def chain_for(self, department: str | None) -> list[DutyRole]:
        return list(self.chains.get(department or "", self.chain))


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
