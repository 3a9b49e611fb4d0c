"""Topic rules (专题): a small, safe expression language over keywords, word groups, regexes and proximity.

Contract
- `parse_rule(expr, groups)` turns one expression into a `Rule`, or raises `RuleError` whose `str()` is one
  line "col N: reason" (N is the 1-based column in `expr`). Nothing is ever eval'd; regexes compile here.
- Text and terms are both NFKC-folded and lower-cased (`fold`); terms match as substrings (Chinese has no
  word boundaries); regexes search the folded text, case-insensitively. `Rule.matches` / `Rule.hits` never
  raise, whatever the text.
- `validate_topics(settings)` returns every problem of a TopicSettings as (key path, one-line reason) and
  never raises; `compile_rules(settings)` compiles it (a bad rule raises RuleError naming the rule).
- `apply_rules(rules, text)` folds the text once, evaluates every rule with short-circuiting, and returns a
  RuleOutcome: suppress wins over relevant/category/boost; the first category rule sets the category.

Grammar (precedence NOT > AND > OR; W/N binds tightest; keywords are upper-case only):
    expr      = and_expr { ("OR" | "|") and_expr } ;
    and_expr  = unary { ["AND" | "&"] unary } ;          (* adjacency is AND; "A NOT B" is A AND NOT B *)
    unary     = ("NOT" | "!" | "-") unary | proximity ;
    proximity = primary [ "W/" digits primary ] ;       (* both sides: terms or (A|B|…) lists of terms *)
    primary   = term | "(" expr ")" | "NEAR/" digits "(" expr "," expr ")" ;
    term      = word | '"' phrase '"' | "{" group "}" | "/" regex "/" ;
Full-width （ ） ， ｜ ！ and “…” are accepted too. Proximity: some match of one side lies within N
characters (the gap between the two matches) of some match of the other side, in either order.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from models.enums import Category

if TYPE_CHECKING:
    from config.schema import TopicSettings

Action = Literal["relevant", "category", "boost", "suppress"]
MAX_DEPTH = 100

_PUNCT = {"(": "(", "（": "(", ")": ")", "）": ")", ",": ",", "，": ",", "&": "and", "|": "or", "｜": "or",
          "!": "not", "！": "not", "-": "not"}  # fmt: skip
_LEX = re.compile(
    r'(?P<space>\s+)|(?P<punct>[()（）,，&|｜!！-])|"(?P<phrase>[^"]*)"|“(?P<quote>[^”]*)”|\{(?P<group>[^{}]*)\}'
    r'|/(?P<regex>(?:\\.|[^/\\])*)/|(?P<word>[^\s()（）,，&|｜!！"“”{}/][^\s()（）,，&|｜!！"“”{}]*)'
)
_UNCLOSED = {'"': '"', "“": "”", "{": "}", "/": "/"}
_PROX = re.compile(r"(NEAR|W)/(\d{1,4})")
_KEYWORDS = {"AND": "and", "OR": "or", "NOT": "not"}
_TERM_KINDS = frozenset({"word", "phrase", "group", "regex"})
_STARTS = _TERM_KINDS | {"(", "not", "near"}


def fold(text: str) -> str:
    """The form both texts and terms are matched in: NFKC, lower case."""
    return unicodedata.normalize("NFKC", text).lower()


class RuleError(ValueError):
    """An expression cannot be parsed. `position` is the 0-based offset in the expression."""

    def __init__(self, message: str, position: int, where: str = "") -> None:
        self.message, self.position, self.where = message, position, where
        line = f"col {position + 1}: {message}"
        super().__init__(f"{where}: {line}" if where else line)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    pos: int
    num: int = 0


def _tokens(expr: str) -> list[_Token]:
    out: list[_Token] = []
    i = 0
    while i < len(expr):
        match = _LEX.match(expr, i)
        if match is None:
            closer = _UNCLOSED.get(expr[i])
            raise (
                RuleError(f"closing {closer!r} expected", len(expr))
                if closer
                else RuleError(f"unexpected {expr[i]!r}", i)
            )
        kind, body, i = match.lastgroup or "", match.group(match.lastgroup or 0), match.end()
        if kind == "punct":
            out.append(_Token(_PUNCT[body], body, match.start()))
        elif kind != "space":
            out.append(_token(kind, body, match.start()))
    out.append(_Token("end", "end of expression", len(expr)))
    return out


def _token(kind: str, body: str, pos: int) -> _Token:
    prox = _PROX.fullmatch(body) if kind == "word" else None
    if kind == "word" and body in _KEYWORDS:
        return _Token(_KEYWORDS[body], body, pos)
    if prox:
        return _Token("near" if prox.group(1) == "NEAR" else "within", body, pos, int(prox.group(2)))
    if kind != "word" and not body.strip():
        raise RuleError(f"empty {'word group name' if kind == 'group' else 'phrase' if kind == 'quote' else kind}", pos)
    return _Token("phrase" if kind == "quote" else kind, body.strip() if kind == "group" else body, pos)


class _Node:
    """test: does the folded text match; collect: append the terms that matched under positive polarity."""

    def test(self, text: str) -> bool:
        raise NotImplementedError

    def collect(self, text: str, out: list[str]) -> None:
        return None


class _Term(_Node):
    """A word, a phrase, a word group (any of its `words`: folded → as written) or a regex."""

    def __init__(self, pattern: re.Pattern[str], words: Mapping[str, str] | None = None) -> None:
        self.pattern, self.words = pattern, dict(words or {})

    def test(self, text: str) -> bool:
        return any(w in text for w in self.words) if self.words else self.pattern.search(text) is not None

    def collect(self, text: str, out: list[str]) -> None:
        out.extend(self.words.get(m.group(), m.group()) for m in self.pattern.finditer(text) if m.group())

    def spans(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in self.pattern.finditer(text) if m.group()]


class _And(_Node):
    def __init__(self, items: Sequence[_Node]) -> None:
        self.items = tuple(items)

    def test(self, text: str) -> bool:
        return all(item.test(text) for item in self.items)

    def collect(self, text: str, out: list[str]) -> None:
        for item in self.items:
            item.collect(text, out)


class _Or(_And):
    def test(self, text: str) -> bool:
        return any(item.test(text) for item in self.items)

    def collect(self, text: str, out: list[str]) -> None:
        for item in self.items:
            if item.test(text):
                item.collect(text, out)


class _Not(_Node):
    def __init__(self, item: _Node) -> None:
        self.item = item

    def test(self, text: str) -> bool:
        return not self.item.test(text)


class _Near(_Node):
    def __init__(self, left: Sequence[_Term], right: Sequence[_Term], distance: int) -> None:
        self.left, self.right, self.distance = tuple(left), tuple(right), distance

    def test(self, text: str) -> bool:
        if not (any(t.test(text) for t in self.left) and any(t.test(text) for t in self.right)):
            return False
        rights = sorted(s for t in self.right for s in t.spans(text))
        starts, width, d = [b[0] for b in rights], max(b[1] - b[0] for b in rights), self.distance
        for a_start, a_end in (s for t in self.left for s in t.spans(text)):  # candidates by start: O(n log n)
            lo, hi = bisect_left(starts, a_start - d - width), bisect_right(starts, a_end + d)
            if any(b_end >= a_start - d for _, b_end in rights[lo:hi]):
                return True
        return False

    def collect(self, text: str, out: list[str]) -> None:
        if self.test(text):
            for term in (*self.left, *self.right):
                term.collect(text, out)


class _Parser:
    def __init__(self, expr: str, groups: Mapping[str, Sequence[str]]) -> None:
        self.tokens, self.groups, self.i, self.depth = _tokens(expr), groups, 0, 0

    @property
    def peek(self) -> _Token:
        return self.tokens[self.i]

    def advance(self) -> _Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def expect(self, kind: str) -> None:
        if self.peek.kind != kind:
            raise RuleError(f"{kind!r} expected", self.peek.pos)
        self.advance()

    def parse(self) -> _Node:
        if self.peek.kind == "end":
            raise RuleError("empty expression", 0)
        node = self.or_expr()
        if self.peek.kind != "end":
            raise RuleError(f"unexpected {self.peek.text!r}", self.peek.pos)
        return node

    def or_expr(self) -> _Node:
        items = [self.and_expr()]
        while self.peek.kind == "or":
            self.advance()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else _Or(items)

    def and_expr(self) -> _Node:
        items = [self.unary()]
        while self.peek.kind == "and" or self.peek.kind in _STARTS:
            if self.peek.kind == "and":
                self.advance()
            items.append(self.unary())  # adjacency is AND; a NOT here makes "A NOT B" = A AND NOT B
        return items[0] if len(items) == 1 else _And(items)

    def unary(self) -> _Node:
        if self.peek.kind == "not":
            self.deeper(self.advance())
            node: _Node = _Not(self.unary())
            self.depth -= 1
            return node
        left_token = self.peek
        node = self.primary()
        if self.peek.kind != "within":
            return node
        op = self.advance()
        right_token = self.peek
        right = self.primary()
        return _Near(self.operand(node, left_token), self.operand(right, right_token), op.num)

    def primary(self) -> _Node:
        token = self.peek
        if token.kind in _TERM_KINDS:
            return self.term(self.advance())
        if token.kind == "near":
            return self.near()
        if token.kind != "(":
            found = "" if token.kind == "end" else f", found {token.text!r}"
            raise RuleError(f"term expected{found}", token.pos)
        self.deeper(self.advance())
        node = self.or_expr()
        self.expect(")")
        self.depth -= 1
        return node

    def deeper(self, token: _Token) -> None:
        """Bounds the recursion: parentheses and NOT nest at most MAX_DEPTH levels."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise RuleError("nested too deeply", token.pos)

    def near(self) -> _Node:
        op = self.advance()
        if self.peek.kind != "(":
            raise RuleError(f"'(' expected after {op.text}", self.peek.pos)
        self.advance()
        sides: list[Sequence[_Term]] = []
        for closer in (",", ")"):
            token = self.peek
            sides.append(self.operand(self.or_expr(), token))
            self.expect(closer)
        return _Near(sides[0], sides[1], op.num)

    def operand(self, node: _Node, token: _Token) -> Sequence[_Term]:
        if isinstance(node, _Term):
            return (node,)
        if isinstance(node, _Or) and all(isinstance(item, _Term) for item in node.items):
            return [item for item in node.items if isinstance(item, _Term)]
        raise RuleError("proximity takes terms, word groups or (A|B) lists of them", token.pos)

    def term(self, token: _Token) -> _Term:
        if token.kind == "regex":
            return _Term(_compile_regex(token))
        words = _group_words(token, self.groups) if token.kind == "group" else {fold(token.text): token.text}
        return _Term(re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))), words)


def _compile_regex(token: _Token) -> re.Pattern[str]:
    try:
        pattern = re.compile(token.text, re.IGNORECASE)
    except re.error as exc:
        raise RuleError(f"bad regular expression: {exc.msg}", token.pos + 1 + (exc.pos or 0)) from None
    if pattern.search("") is not None:
        raise RuleError("regular expression matches empty text", token.pos)
    return pattern


def _group_words(token: _Token, groups: Mapping[str, Sequence[str]]) -> dict[str, str]:
    if token.text not in groups:
        raise RuleError(f"unknown word group {{{token.text}}}", token.pos)
    words = {fold(w).strip(): w.strip() for w in groups[token.text] if fold(w).strip()}
    if not words:
        raise RuleError(f"word group {{{token.text}}} is empty", token.pos)
    return words


@dataclass(frozen=True)
class Rule:
    """A parsed expression."""

    expr: str
    root: _Node = field(repr=False, compare=False)

    def matches(self, text: str) -> bool:
        return self.root.test(fold(text))

    def hits(self, text: str) -> list[str]:
        """The terms that made the rule match (words, group members, regex matches); [] when it does not."""
        return self.hits_folded(fold(text))

    def hits_folded(self, folded: str) -> list[str]:
        if not self.root.test(folded):
            return []
        out: list[str] = []
        self.root.collect(folded, out)
        return list(dict.fromkeys(out))


def parse_rule(expr: str, groups: Mapping[str, Sequence[str]]) -> Rule:
    return Rule(expr, _Parser(expr, groups).parse())


@dataclass(frozen=True)
class CompiledRule:
    name: str
    action: Action
    category: Category | None
    boost: float
    rule: Rule


@dataclass(frozen=True)
class RuleOutcome:
    """What the topic rules say about one text. relevant: None when no rule fired."""

    relevant: bool | None = None
    category: Category | None = None
    boosts: dict[str, float] = field(default_factory=dict)  # category → summed boost
    fired: list[str] = field(default_factory=list)  # rule names, in rule order
    hits: dict[str, list[str]] = field(default_factory=dict)  # rule name → terms that matched


def compile_rules(settings: TopicSettings) -> list[CompiledRule]:
    """Every rule of `settings`, parsed. Raises RuleError ("rules[i] NAME: col N: …"); validate first."""
    out = []
    for i, rule in enumerate(settings.rules):
        try:
            parsed = parse_rule(rule.expr, settings.word_groups)
        except RuleError as exc:
            raise RuleError(exc.message, exc.position, where=f"rules[{i}] {rule.name}") from None
        out.append(CompiledRule(rule.name, rule.action, rule.category, rule.boost, parsed))
    return out


def apply_rules(rules: Sequence[CompiledRule], text: str) -> RuleOutcome:
    folded = fold(text)
    positive = suppressed = False
    category: Category | None = None
    boosts: dict[str, float] = {}
    hits: dict[str, list[str]] = {}
    for rule in rules:
        if not rule.rule.root.test(folded):
            continue
        hits[rule.name] = rule.rule.hits_folded(folded)
        suppressed = suppressed or rule.action == "suppress"
        positive = positive or rule.action != "suppress"
        if rule.action == "category" and category is None:
            category = rule.category
        elif rule.action == "boost" and rule.category is not None:
            boosts[rule.category] = boosts.get(rule.category, 0.0) + rule.boost
    relevant = False if suppressed else (True if positive else None)
    return RuleOutcome(relevant, category, boosts, list(hits), hits)


def validate_topics(settings: TopicSettings) -> list[tuple[str, str]]:
    """Every problem in `settings` as (key path, one-line reason); [] when all is well. Never raises."""
    problems: list[tuple[str, str]] = []
    for name, words in settings.word_groups.items():
        if not name.strip() or any(ch in name for ch in "{}"):
            problems.append((f"word_groups.{name}", "a group name may not be blank or contain '{' or '}'"))
        for j, word in enumerate(words):
            if not fold(word).strip():
                problems.append((f"word_groups.{name}[{j}]", "empty word"))
        if not any(fold(word).strip() for word in words):
            problems.append((f"word_groups.{name}", f"word group {{{name}}} is empty"))
    seen: dict[str, int] = {}
    for i, rule in enumerate(settings.rules):
        if rule.name in seen:
            problems.append((f"rules[{i}].name", f"duplicate rule name {rule.name!r} (as rules[{seen[rule.name]}])"))
        seen.setdefault(rule.name, i)
        if rule.category is not None and rule.action in ("relevant", "suppress"):
            problems.append((f"rules[{i}].category", f"not used by action {rule.action} (only category / boost)"))
        try:
            parse_rule(rule.expr, settings.word_groups)
        except RuleError as exc:
            problems.append((f"rules[{i}].expr", str(exc)))
        except Exception as exc:  # a parser bug must not crash config loading
            problems.append((f"rules[{i}].expr", f"cannot parse: {exc}"))
    return problems
