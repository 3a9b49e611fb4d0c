"""De-duplication keys (pure). Exact duplicates share a fingerprint; near-duplicates: crawlers/neardup.py."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_NOISE = re.compile(r"[\W_]+", re.UNICODE)


def fingerprint(title: str, text: str) -> str:
    """SHA-256 of the NFKC-folded, lower-cased title and text with white space and punctuation removed.

    Two entries that differ only in spacing, full-width forms or punctuation get the same fingerprint.
    """
    folded = unicodedata.normalize("NFKC", f"{title}\n{text}").lower()
    return hashlib.sha256(_NOISE.sub("", folded).encode("utf-8")).hexdigest()
