"""Turning a fetched document's bytes into text: the character encoding, found the way browsers do, plus
the repairs Chinese sites need.

`decode_document(body, content_type=..., kind=...)` never raises. Order of evidence:

1. a byte-order mark (UTF-8, UTF-16 LE/BE, UTF-32 LE/BE) decides;
2. UTF-16/UTF-32 without a BOM is recognised by its NUL-byte pattern;
3. a declared charset (the HTTP Content-Type header, the XML declaration, <meta charset> or
   <meta http-equiv="Content-Type">) is a *hint*, verified by strict decoding. GBK/GB2312/cp936 labels decode
   as GB18030 (a superset that real "GBK" pages need); Big5 tries big5hkscs, then cp950, then big5;
   Latin-1 labels decode as windows-1252, as browsers do;
4. bytes that are valid UTF-8 are UTF-8 whatever the declaration says (pages declaring gb2312 but written
   in UTF-8 are common); a single-byte Western declaration loses to a confident Chinese sniff
   (misconfigured servers send ISO-8859-1);
5. a declared codec that fails on only a few bytes (a truncated download) is kept, with U+FFFD for them;
   otherwise charset-normalizer guesses; last, the declared (or UTF-8) codec with errors="replace".
GB18030 decodes Big5 bytes without error, as kana and Cyrillic; such a result is re-read as Big5.
EUC-TW has no Python codec and comes out lossy.

`Decoded.how` says which rule decided: "bom", "declared", "sniffed" or "fallback" (lossy).
`nfkc_key(text)` is a folded form for matching only; callers keep the original text.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from charset_normalizer import from_bytes

Kind = Literal["html", "xml", "auto"]

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Labels Python does not know, or that must decode with a wider codec (WHATWG-style replacement).
_CHINESE_SIMPLIFIED = ("gb2312", "gbk", "cp936", "x-gbk", "gb_2312-80", "gb_2312", "gb2312-80", "euc-cn",
                       "csgb2312", "chinese", "iso-ir-58", "csiso58gb231280", "gb18030")
_LABELS: dict[str, str] = {label: "gb18030" for label in _CHINESE_SIMPLIFIED} | {
    "big5": "big5", "big5-hkscs": "big5", "big5hkscs": "big5", "cn-big5": "big5", "x-x-big5": "big5",
    "csbig5": "big5", "cp950": "big5",
    "iso-8859-1": "cp1252", "iso8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "l1": "cp1252",
    "us-ascii": "cp1252", "ascii": "cp1252", "windows-1252": "cp1252", "cp1252": "cp1252",
    "utf8": "utf-8", "utf-8": "utf-8", "unicode-1-1-utf-8": "utf-8",
}
_BIG5_CHAIN = ("big5hkscs", "cp950", "big5")
_MULTIBYTE = frozenset({"gb18030", "big5hkscs", "cp950", "big5", "euc_jp", "shift_jis", "euc_kr", "cp949",
                        "utf-8", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be",
                        "iso2022_jp", "hz"})
_SCAN_BYTES = 65536
_XML_DECL = re.compile(rb"^\s*<\?xml[^>]{0,200}?encoding\s*=\s*[\"']([A-Za-z0-9._:-]{1,40})[\"']")
_META_TAG = re.compile(rb"<meta\s[^>]{0,500}>", re.IGNORECASE)
_META_CHARSET = re.compile(rb"charset\s*=\s*[\"']?\s*([A-Za-z0-9._:-]{1,40})", re.IGNORECASE)
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?\s*([A-Za-z0-9._:-]{1,40})", re.IGNORECASE)
_TOLERATED_ERRORS = 0.002  # share of U+FFFD a declared codec may produce before we sniff instead


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str  # the codec actually used (Python's normalized name, e.g. "utf-8", "gb18030", "big5hkscs")
    declared: str | None  # what the BOM, header, XML declaration or <meta> claimed (as written, lower case)
    how: str  # "bom" | "declared" | "sniffed" | "fallback"


def decode_document(body: bytes, *, content_type: str | None = None, kind: Kind = "auto") -> Decoded:
    """Decode a fetched HTML/XML document; never raises (see the module docstring for the rules)."""
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return Decoded(body[len(bom):].decode(codec, errors="replace"), codec, codec, "bom")
    declared = _declarations(body, content_type, kind)
    first = declared[0] if declared else None
    wide = _wide_unicode(body)
    if wide is not None:
        return Decoded(body.decode(wide, errors="replace"), wide, first, "sniffed")
    if body.isascii():
        codec = _ascii_codec(declared)
        return Decoded(body.decode(codec, errors="replace"), codec, first, "declared" if first else "sniffed")
    if _strict(body, "utf-8") is not None:
        utf8_declared = any(_codec_family(label) == "utf-8" for label in declared)
        return Decoded(body.decode("utf-8"), "utf-8", first, "declared" if utf8_declared else "sniffed")
    return _decode_legacy(body, declared)


def _decode_legacy(body: bytes, declared: list[str]) -> Decoded:
    first = declared[0] if declared else None
    verified = [hit for label in declared if (hit := _try_label(body, label)) is not None]
    multibyte = [hit for hit in verified if hit[1] in _MULTIBYTE]
    if len({codec for _, codec in multibyte}) > 1:  # e.g. header gb2312, <meta> big5: both decode strictly
        chosen = _sniff(body, among=[codec for _, codec in multibyte])
        return Decoded(*(chosen or multibyte[0]), first, "declared")
    if multibyte:
        text, codec = multibyte[0]
        if codec == "gb18030" and _misread(text) and (big5 := _try_label(body, "big5")) and not _misread(big5[0]):
            return Decoded(*big5, first, "sniffed")  # GB18030 accepts Big5 bytes, as kana and Cyrillic
        return Decoded(text, codec, first, "declared")
    if verified:  # single-byte codecs decode anything: a confident Chinese sniff beats them
        sniffed = _sniff(body)
        if sniffed is not None and sniffed[1] in _MULTIBYTE:  # "ISO-8859-1" from a misconfigured server
            return Decoded(*sniffed, first, "sniffed")
        return Decoded(*verified[0], first, "declared")
    for label in declared:  # a few broken bytes (e.g. a truncated download) do not discredit a declaration
        for codec in _codecs_for(label):
            text = body.decode(codec, errors="replace")
            if text.count("\ufffd") <= max(2, len(text) * _TOLERATED_ERRORS):
                return Decoded(text, codec, first, "fallback")
    if (sniffed := _sniff(body)) is not None:
        return Decoded(*sniffed, first, "sniffed")
    codec = next(iter(_codecs_for(first)), "utf-8") if first else "utf-8"
    return Decoded(body.decode(codec, errors="replace"), codec, first, "fallback")


def declared_charsets(body: bytes, content_type: str | None = None, kind: Kind = "auto") -> list[str]:
    """Charset labels the header and the document declare, in order of authority, lower case, no repeats."""
    return _declarations(body, content_type, kind)


def _declarations(body: bytes, content_type: str | None, kind: Kind) -> list[str]:
    labels: list[str] = []
    if content_type and (header := _HEADER_CHARSET.search(content_type)):
        labels.append(header.group(1))
    head = body[:_SCAN_BYTES]
    if kind != "html" and (decl := _XML_DECL.match(head)):
        labels.append(decl.group(1).decode("ascii"))
    if kind != "xml":
        for tag in _META_TAG.finditer(head):
            if found := _META_CHARSET.search(tag.group(0)):
                labels.append(found.group(1).decode("ascii"))
                break
    seen: list[str] = []
    for label in labels:
        label = label.strip().lower()
        if label and label not in seen:
            seen.append(label)
    return seen


def _codec_family(label: str) -> str | None:
    label = label.lower().strip()
    if label in _LABELS:
        return _LABELS[label]
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    if name.startswith(("utf-16", "utf-32")):
        return "utf-8"  # a declaration readable as ASCII is not in UTF-16/32 (BOM-less UTF-16 is found by NULs)
    return _LABELS.get(name, name)


def _codecs_for(label: str) -> tuple[str, ...]:
    family = _codec_family(label)
    if family is None:
        return ()
    return _BIG5_CHAIN if family == "big5" else (family,)


def _try_label(body: bytes, label: str) -> tuple[str, str] | None:
    for codec in _codecs_for(label):
        text = _strict(body, codec)
        if text is not None:
            return text, codec
    return None


def _strict(body: bytes, codec: str) -> str | None:
    try:
        return body.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def _ascii_codec(declared: list[str]) -> str:
    return next((codecs_[0] for label in declared if (codecs_ := _codecs_for(label))), "utf-8")


def _wide_unicode(body: bytes) -> str | None:
    """UTF-16/32 without a BOM: markup is mostly ASCII, so every 2nd (4th) byte is NUL in a fixed phase."""
    sample = body[:4096]
    if len(sample) < 8 or sample.count(0) < len(sample) // 4:
        return None
    quads = [sum(1 for i in range(phase, len(sample), 4) if sample[i] == 0) for phase in range(4)]
    per_slot = len(sample) // 4
    if quads[1] + quads[2] + quads[3] > 2.4 * per_slot and quads[0] < per_slot // 4:
        return "utf-32-le"
    if quads[0] + quads[1] + quads[2] > 2.4 * per_slot and quads[3] < per_slot // 4:
        return "utf-32-be"
    even, odd = quads[0] + quads[2], quads[1] + quads[3]
    if odd > 0.6 * len(sample) / 2 and even < odd / 4:
        return "utf-16-le"
    if even > 0.6 * len(sample) / 2 and odd < even / 4:
        return "utf-16-be"
    return None


def _misread(text: str) -> bool:
    """Many kana, Greek, Cyrillic, box-drawing or private-use characters: the bytes were read with the
    wrong Chinese codec (Big5 read as GBK lands in those GBK rows)."""
    wide = [ch for ch in text if ord(ch) > 0x7F]
    odd = sum(1 for ch in wide if 0x370 <= ord(ch) <= 0x4FF or 0x2500 <= ord(ch) <= 0x257F
              or 0x3040 <= ord(ch) <= 0x30FF or 0xE000 <= ord(ch) <= 0xF8FF)
    return len(wide) >= 20 and odd > 0.05 * len(wide)


def _sniff(body: bytes, among: list[str] | None = None) -> tuple[str, str] | None:
    """charset-normalizer's best guess (optionally among given codecs), widened: GB2312/GBK → GB18030,
    Big5 → the Big5 chain."""
    try:
        best = from_bytes(body[:200_000], cp_isolation=among).best()
    except Exception:  # a third-party detector must not break decoding
        return None
    if best is None or not best.encoding:
        return None
    for codec in _codecs_for(best.encoding) or (best.encoding,):
        text = _strict(body, codec)
        if text is not None:
            return text, codec
    return body.decode(best.encoding, errors="replace"), best.encoding


def nfkc_key(text: str) -> str:
    """NFKC + case folding + collapsed whitespace: full-width ＡＢＣ１２３ and ABC123 match. For comparing only."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return " ".join(folded.split())
