"""The `yuqing classify` contract over JSON lines: one output object per non-blank input line, in order —
the input fields plus the verdict, or `{"error": …, "line": N}` for a malformed line."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from classifier.classify import Classifier, PostInput


def classify_lines(
    classifier: Classifier, lines: list[tuple[int, str]], *, explain: bool = False
) -> list[dict[str, Any]]:
    """One output object per non-blank input line: the input plus the verdict, or an error object."""
    parsed: list[dict[str, Any]] = []
    for lineno, raw in lines:
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            parsed.append({"error": f"invalid JSON: {exc.msg}", "line": lineno})
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            parsed.append({"error": "expected an object with a string 'text'", "line": lineno})
        elif "title" in obj and obj["title"] is not None and not isinstance(obj["title"], str):
            parsed.append({"error": "'title' must be a string", "line": lineno})
        else:
            parsed.append({"input": obj})
    todo = [p for p in parsed if "input" in p]
    texts = [_joined(p["input"]) for p in todo]
    posts = [PostInput(text, source=str(p["input"].get("source") or ""), author=p["input"].get("author"),
                       url=str(p["input"].get("url") or ""), metrics=_metrics(p["input"]))
             for text, p in zip(texts, todo, strict=True)]
    for item, verdict in zip(todo, classifier.classify(posts, explain=explain), strict=True):
        item.update({**item.pop("input"), **verdict.as_json()})
    return parsed


def _joined(obj: dict[str, Any]) -> str:
    title = (obj.get("title") or "").strip()
    return f"{title}\n{obj['text']}" if title else str(obj["text"])


def chunks(items: Iterable[tuple[int, str]], size: int) -> Iterator[list[tuple[int, str]]]:
    chunk: list[tuple[int, str]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _metrics(obj: dict[str, Any]) -> dict[str, Any]:
    """Optional spread figures on an input line (reposts, comments, likes) feed the severity cues."""
    return {k: obj[k] for k in ("reposts", "comments", "likes") if isinstance(obj.get(k), int | float)}
