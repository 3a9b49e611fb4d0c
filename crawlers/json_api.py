"""JSON API source: a JSON-over-HTTP API (Weibo-style, RSSHub JSON routes, an agency's own systems) polled
into raw items.

`poll_json_api(src, fetch, *, now, state, environ, client) -> FetchResult` never raises for bad input:

- `${NAME}` in header and parameter values is replaced from `environ` (default os.environ; `NAME_FILE`, a
  file holding the value, also works). A missing variable is an error naming it; the literal placeholder is
  never sent, and substituted values are masked (`***`) in every message.
- GET sends the parameters as the query string; POST sends them as a JSON object body.
- Paging (`src.paging.mode`): `none` (one request); `page` (`param` = start, start+1, … up to `max_pages`,
  stopping early at an empty page or at a page that repeats the previous one); `cursor` (the first request
  carries no cursor, each later one sends the value found at `cursor_path` in the previous response; it
  stops when that value is missing, empty, 0, or already used).
- Cursor decision: every poll restarts from the newest page (a monitor wants what is new; the raw-post
  store drops what it has; resuming would walk into the past). `FetchState.cursor` stays empty; the state
  keeps the first page's ETag/Last-Modified, and a 304 to that conditional request means `not_modified`.
- Limits: `fetch.timeout` per request, `fetch.max_bytes` per response body (streamed and capped, after
  decompression), `fetch.max_redirects`. A failure on the first page is `error`; a failure on a later page
  is a warning and the items of the earlier pages are kept.
- Items: `items_path` must select a list (null counts as an empty page). An item with neither text nor
  title is skipped; counts that are not numbers are left out of the item; both are summed up in warnings.
  A page whose list had entries but yielded no item counts in `empty_pages` (a broken field mapping looks
  like a blocked source to the health check).

The record mapping it shares with file imports lives in crawlers.records.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import httpx

from config.schema import FetchSettings, JsonApiSource
from crawlers.encoding import decode_document
from crawlers.fetch import FetchError, read_capped
from crawlers.items import FetchResult, FetchState, RawItem
from crawlers.records import (
    ItemError,
    build_item,
    scalar_text,
    select_path,
)

log = logging.getLogger(__name__)

MISSING: Any = object()  # select_path's "no such key" marker, distinct from a JSON null
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _PageError(Exception):
    """One API page failed; the message says why (secrets already masked by the caller)."""


@dataclass(frozen=True)
class _Page:
    data: Any = None
    url: str = ""
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False


@dataclass
class _Tally:
    """What one poll collected so far (mutable accumulator, local to a poll)."""

    items: dict[str, RawItem] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    pages: int = 0
    empty_pages: int = 0
    skipped: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Request:
    src: JsonApiSource
    client: httpx.Client
    headers: dict[str, str]
    params: dict[str, str]
    max_bytes: int
    secrets: tuple[str, ...]
    now: datetime


class MissingVariable(LookupError):
    """A ${NAME} placeholder names an unset variable; args[0] is the name."""


def resolve_placeholders(values: Mapping[str, str], environ: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Replace ${NAME} from environ (or the file named by NAME_FILE); returns the values and the substituted
    secrets (to mask in messages). Raises MissingVariable."""
    secrets: list[str] = []

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        value = environ.get(name, "")
        if not value and environ.get(f"{name}_FILE"):
            try:
                value = Path(environ[f"{name}_FILE"]).read_text(encoding="utf-8").strip()
            except OSError:
                value = ""
        if not value:
            raise MissingVariable(name)
        secrets.append(value)
        return value

    return {key: _PLACEHOLDER.sub(lookup, raw) for key, raw in values.items()}, secrets


def poll_json_api(
    src: JsonApiSource, fetch: FetchSettings, *, now: datetime, state: FetchState | None = None,
    environ: Mapping[str, str] | None = None, client: httpx.Client | None = None,
) -> FetchResult:
    """Fetch one JSON API source (all its pages for this poll); never raises for bad input."""
    env = os.environ if environ is None else environ
    try:
        headers, head_secrets = resolve_placeholders(src.headers, env)
        params, param_secrets = resolve_placeholders(src.params, env)
    except MissingVariable as exc:
        missing = f"environment variable {exc.args[0]} is not set (used in headers/params of {src.name})"
        return FetchResult(source=src.name, items=[], error=missing)
    if not src.url.startswith(("http://", "https://")):
        return FetchResult(source=src.name, items=[], error=f"{src.url}: a JSON API source needs an http(s) URL")
    headers = {"User-Agent": src.user_agent or fetch.user_agent, "Accept": "application/json, */*;q=0.5"} | headers
    own = client is None
    http = client or httpx.Client(timeout=fetch.timeout.total_seconds(), follow_redirects=True,
                                  max_redirects=fetch.max_redirects)
    secrets = tuple(s for s in head_secrets + param_secrets if s)
    try:
        req = _Request(src, http, headers, params, fetch.max_bytes, secrets, now)
        return _walk(req, state)
    finally:
        if own:
            http.close()


def _walk(req: _Request, state: FetchState | None) -> FetchResult:
    paging, name = req.src.paging, req.src.name
    tally = _Tally()
    cursors: set[str] = set()
    cursor: str | None = None
    previous: list[str] | None = None
    new_state: FetchState | None = None
    for n in range(1 if paging.mode == "none" else paging.max_pages):
        params = dict(req.params)
        if paging.mode == "page":
            params[paging.param] = str(paging.start + n)
        elif paging.mode == "cursor" and cursor is not None:
            params[paging.param] = cursor
        try:
            page = _fetch_page(req, params, state if n == 0 else None)
            tally.pages += 1
            if page.not_modified:
                return FetchResult(source=name, items=[], pages=1, not_modified=True, state=state)
            if n == 0:
                new_state = FetchState(etag=page.etag, last_modified=page.last_modified)
            listed, keys = _collect(req, page, n + 1, tally)
        except _PageError as exc:
            message = _mask(str(exc), req.secrets)
            if n == 0:
                return FetchResult(source=name, items=[], error=message, pages=tally.pages)
            tally.warnings.append(f"page {n + 1}: {message}; stopped paging, items of earlier pages kept")
            break
        if not listed:
            break
        if keys and keys == previous:
            tally.warnings.append(f"page {n + 1} repeats page {n}: does the API ignore {paging.param!r}?")
            break
        previous = keys
        if paging.mode == "cursor":
            cursor = _next_cursor(page.data, paging.cursor_path or "", cursors, tally, n + 1)
            if cursor is None:
                break
    return _result(name, tally, new_state)


def _result(name: str, tally: _Tally, state: FetchState | None) -> FetchResult:
    warnings = list(tally.warnings)
    if tally.skipped:
        warnings.append(f"{len(tally.skipped)} item(s) without text or title skipped (first: {tally.skipped[0]})")
    if tally.problems:
        warnings.append(f"{len(tally.problems)} field value(s) unusable and left out (first: {tally.problems[0]})")
    return FetchResult(source=name, items=list(tally.items.values()), warnings=warnings, pages=tally.pages,
                       empty_pages=tally.empty_pages, state=state)


def _next_cursor(data: Any, path: str, seen: set[str], tally: _Tally, page_no: int) -> str | None:
    value = select_path(data, path)
    if isinstance(value, dict | list):
        tally.warnings.append(f"page {page_no}: cursor_path {path!r} is not a single value; stopped paging")
        return None
    cursor = None if isinstance(value, bool) else scalar_text(value)
    if cursor is None or cursor == "0" or cursor in seen:  # Twitter-style APIs say 0 for "no more"
        return None
    seen.add(cursor)
    return cursor


def _collect(req: _Request, page: _Page, page_no: int, tally: _Tally) -> tuple[int, list[str]]:
    """Add one page's items to the tally; return how many entries the page listed and the URLs of the
    items made from them (to spot a repeated page)."""
    path = req.src.items_path
    entries = select_path(page.data, path, MISSING)
    if entries is MISSING:
        raise _PageError(f"items_path {path!r} not found in the response{_keys_hint(page.data)}")
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise _PageError(f"items_path {path!r} is {_json_type(entries)}, not a list")
    keys: list[str] = []
    for index, entry in enumerate(entries, 1):
        values = {name: select_path(entry, p) for name, p in req.src.fields.items()}
        try:
            item, problems = build_item(values, source=req.src.name, fetched_at=req.now, base_url=page.url)
        except ItemError:
            if not tally.skipped:
                log.info("source %s: page %d item %d has neither text nor title; skipped", req.src.name, page_no, index)
            tally.skipped.append(f"page {page_no} item {index}")
            continue
        tally.problems.extend(f"page {page_no} item {index}: {p}" for p in problems)
        tally.items.setdefault(item.url, item)
        keys.append(item.url)
    if entries and not keys:
        tally.empty_pages += 1
    return len(entries), keys


def _fetch_page(req: _Request, params: dict[str, str], state: FetchState | None) -> _Page:
    headers = dict(req.headers)
    if state is not None and state.etag:
        headers["If-None-Match"] = state.etag
    if state is not None and state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    url = req.src.url
    payload = params if req.src.method == "POST" else None
    try:
        # httpx's params= replaces a query string already in the URL; merge so "…/search?type=1" keeps type=1.
        target = httpx.URL(url).copy_merge_params(params) if req.src.method == "GET" else httpx.URL(url)
        with req.client.stream(req.src.method, target, headers=headers, json=payload, follow_redirects=True) as resp:
            if resp.status_code == 304:
                return _Page(not_modified=True)
            if resp.status_code >= 400:
                raise _PageError(f"{resp.url}: HTTP {resp.status_code}")
            content = _read_capped(resp, req.max_bytes, url)
            ctype = resp.headers.get("content-type")
            page_url = str(resp.url)
            etag, modified = resp.headers.get("etag"), resp.headers.get("last-modified")
    except httpx.TooManyRedirects:
        raise _PageError(f"{url}: too many redirects") from None
    except httpx.TimeoutException as exc:
        raise _PageError(f"{url}: timed out ({type(exc).__name__})") from None
    except httpx.HTTPError as exc:
        raise _PageError(f"{url}: {type(exc).__name__}: {exc}") from None
    except UnicodeEncodeError:
        raise _PageError(f"{url}: header values must be ASCII (percent-encode other text)") from None
    except (httpx.InvalidURL, ValueError) as exc:
        raise _PageError(f"{url}: unusable request: {type(exc).__name__}: {exc}") from None
    return _Page(data=_parse_json(content, ctype, url), url=page_url, etag=etag, last_modified=modified)


def _read_capped(resp: httpx.Response, max_bytes: int, url: str) -> bytes:
    try:
        return read_capped(resp, max_bytes, url)
    except FetchError as exc:
        raise _PageError(str(exc)) from None


def _parse_json(body: bytes, content_type: str | None, url: str) -> Any:
    text = decode_document(body, content_type=content_type, kind="auto").text.lstrip("\ufeff")
    try:
        return json.loads(text)
    except RecursionError:
        raise _PageError(f"{url}: JSON nested too deeply to read") from None
    except json.JSONDecodeError as exc:
        start = text.lstrip()[:1]
        kind = "malformed JSON" if start in ("{", "[") else "not JSON"
        snippet = re.sub(r"\s+", " ", text.strip()[:60])
        raise _PageError(f"{url}: {kind} (content-type {content_type or 'none'}): {exc.msg} at line {exc.lineno} "
                         f"column {exc.colno}; body starts {snippet!r}") from None


def _keys_hint(data: Any) -> str:
    if isinstance(data, dict) and data:
        return f" (top-level keys: {', '.join(list(map(str, data))[:8])})"
    return f" (the response is {'an empty object' if isinstance(data, dict) else _json_type(data)})"


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _mask(message: str, secrets: tuple[str, ...]) -> str:
    """Replace each secret, as written and as percent-encoded in a URL, with ***."""
    forms = {form for secret in secrets for form in (secret, quote(secret, safe=""), quote_plus(secret)) if form}
    for form in sorted(forms, key=len, reverse=True):
        message = message.replace(form, "***")
    return message
