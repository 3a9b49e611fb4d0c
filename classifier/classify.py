"""The classification stage: the trained model's verdict adjusted by the agency's topic rules (专题) and
profile, with severity from the stated figures, the model, spread, source authority and official
involvement — each with its reason.

Relevance means "relevant to this agency": the model's probability that a post is a public-affairs matter,
raised when the post uses the agency's domain lexicon or names a place in its jurisdiction, forced up by a
matching relevant/category/boost rule and down by a suppress rule (suppress wins).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from classifier.model import TextModel, Verdict
from classifier.rules import CompiledRule, RuleOutcome, apply_rules, compile_rules
from classifier.severity import SeverityCue, authority_cue, involvement_cue, spread_cue
from config.schema import Settings
from crawlers.encoding import nfkc_key
from models.enums import Category, Severity


@dataclass(frozen=True)
class PostInput:
    text: str
    source: str = ""
    author: str | None = None
    url: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)


class Classifier:
    """Model + rules + profile. Build once per process; `classify` is pure given the inputs."""

    def __init__(self, model: TextModel, settings: Settings) -> None:
        self.model = model
        self.rules: list[CompiledRule] = compile_rules(settings.topics)
        self.profile = settings.profile
        self.domain_terms = [nfkc_key(t) for t in settings.profile.domain_terms if t.strip()]
        self.places = [nfkc_key(t) for t in settings.profile.jurisdiction if t.strip()]
        self.threshold = settings.classifier.relevance_threshold
        self.secondary_threshold = settings.classifier.secondary_threshold

    @property
    def version(self) -> str:
        return self.model.version

    def classify(self, posts: Sequence[PostInput], *, explain: bool = False) -> list[Verdict]:
        # threshold 0: the model names its best relevant category and severity for every post; relevance
        # is decided here, after rules and profile
        raw = self.model.predict([p.text for p in posts], threshold=0.0, explain=explain)
        return [self._adjust(p, v, explain) for p, v in zip(posts, raw, strict=True)]

    def _adjust(self, post: PostInput, v: Verdict, explain: bool) -> Verdict:
        folded = nfkc_key(post.text)
        outcome = apply_rules(self.rules, post.text)
        relevance, profile_hits = self._profile(folded, v.relevance)
        scores = dict(v.category_scores)
        for name, boost in outcome.boosts.items():
            scores[name] = min(1.0, scores.get(name, 0.0) + boost)
        if outcome.relevant is True:
            relevance = max(relevance, self.threshold)
        if outcome.relevant is False:
            relevance = min(relevance, self.threshold / 2)
        details = _explain(v, outcome, profile_hits) if explain else {}
        if relevance < self.threshold:
            return replace(v, relevance=relevance, category=Category.IRRELEVANT, category_scores=scores,
                           severity=None, severity_reasons=[], secondary=[], explain=details)
        category = outcome.category or _best(scores)
        level, reasons = self._severity(post, v, category)
        secondary = [c for c in sorted(scores, key=lambda c: -scores[c])
                     if c not in (category.value, Category.IRRELEVANT.value) and scores[c] >= self.secondary_threshold]
        return replace(v, relevance=relevance, category=category, category_scores=scores, severity=level,
                       severity_reasons=reasons, secondary=secondary, explain=details)

    def _profile(self, folded: str, relevance: float) -> tuple[float, dict[str, list[str]]]:
        domain = [t for t in self.domain_terms if t in folded]
        places = [t for t in self.places if t in folded]
        if domain:
            relevance += self.profile.domain_boost
        if places:
            relevance += self.profile.in_jurisdiction_boost
        return min(relevance, 1.0), {"domain_terms": domain, "jurisdiction": places}

    def _severity(self, post: PostInput, v: Verdict, category: Category) -> tuple[Severity, list[str]]:
        level, reasons = v.severity or Severity.IV, list(v.severity_reasons)
        cues: list[SeverityCue | None] = [
            spread_cue(post.metrics),
            authority_cue(source=post.source, author=post.author, url=post.url),
            involvement_cue(post.text, category.value),
        ]
        for cue in cues:
            if cue is not None and cue.severity.rank < level.rank:
                level = cue.severity
                reasons.append(cue.reason)
        return level, reasons


def _best(scores: dict[str, float]) -> Category:
    relevant = {c: p for c, p in scores.items() if c != Category.IRRELEVANT.value}
    return Category(max(relevant, key=lambda c: relevant[c]))


def _explain(v: Verdict, outcome: RuleOutcome, profile_hits: dict[str, list[str]]) -> dict[str, Any]:
    return {**v.explain, "rules": {name: outcome.hits.get(name, []) for name in outcome.fired}, **profile_hits}
