"""Reading a source's bytes from a file path, file:// URL or http(s):// URL, with size and time limits.

`fetch_bytes` raises FetchError with a one-line reason. Over http(s) it sends the extra request `headers`
it is given (e.g. If-None-Match / If-Modified-Since), follows at most `max_redirects` redirects, and returns
the status and the response headers (lower-case names); a 304 Not Modified comes back with an empty body.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx


class FetchError(Exception):
    """A source could not be read; the message says why in one line."""


@dataclass(frozen=True)
class Fetched:
    body: bytes
    content_type: str | None
    url: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)  # response headers, lower-case names (http only)


def resolve_location(location: str, base_dir: Path) -> str:
    """An http(s) URL stays as it is; a file:// URL or a path (relative to base_dir) becomes an absolute path."""
    parsed = urlparse(location)
    if parsed.scheme in ("http", "https"):
        return location
    if parsed.scheme == "file":
        return unquote(parsed.path)
    if parsed.scheme and len(parsed.scheme) > 1:
        raise FetchError(f"unsupported URL scheme {parsed.scheme!r} in {location!r}")
    path = Path(location)
    return str(path if path.is_absolute() else (base_dir / path).resolve())


def fetch_bytes(
    location: str, *, timeout: float, max_bytes: int, user_agent: str, headers: Mapping[str, str] | None = None,
    max_redirects: int = 5,
) -> Fetched:
    """Read a resolved location (see resolve_location). Raises FetchError."""
    if location.startswith(("http://", "https://")):
        return _fetch_http(location, timeout=timeout, max_bytes=max_bytes, user_agent=user_agent,
                           extra_headers=headers or {}, max_redirects=max_redirects)
    path = Path(location)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise FetchError(f"{path}: {size} bytes is over the {max_bytes}-byte limit")
        return Fetched(body=path.read_bytes(), content_type=None, url=path.as_uri())
    except OSError as exc:
        raise FetchError(f"{path}: {exc.strerror or exc}") from None


def _fetch_http(
    url: str, *, timeout: float, max_bytes: int, user_agent: str, extra_headers: Mapping[str, str],
    max_redirects: int,
) -> Fetched:
    headers = {"User-Agent": user_agent, "Accept": "*/*", **extra_headers}
    try:
        with (
            httpx.Client(
                timeout=timeout, follow_redirects=True, max_redirects=max_redirects, headers=headers
            ) as client,
            client.stream("GET", url) as resp,
        ):
            if resp.status_code >= 400:
                raise FetchError(f"{url}: HTTP {resp.status_code}")
            got_headers = {name.lower(): value for name, value in resp.headers.items()}
            if resp.status_code == 304:
                return Fetched(b"", resp.headers.get("content-type"), str(resp.url), 304, got_headers)
            body = read_capped(resp, max_bytes, url)
            return Fetched(body, resp.headers.get("content-type"), str(resp.url), resp.status_code, got_headers)
    except httpx.HTTPError as exc:
        raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from None


def read_capped(resp: httpx.Response, max_bytes: int, url: str) -> bytes:
    """A streamed response body, refused (FetchError) once it is over `max_bytes`, or at once when its
    Content-Length says it will be."""
    declared = resp.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(f"{url}: body of {declared} bytes is over the {max_bytes}-byte limit")
    chunks: list[bytes] = []
    total = 0
    for chunk in resp.iter_bytes():
        total += len(chunk)
        if total > max_bytes:
            raise FetchError(f"{url}: body is over the {max_bytes}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)
