"""Topic rules (classifier/rules.py): the expression language, its error messages, apply_rules outcomes,
config validation, and the example agency profiles under config/profiles/."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from classifier.rules import (
    MAX_DEPTH,
    RuleError,
    RuleOutcome,
    apply_rules,
    compile_rules,
    parse_rule,
    validate_topics,
)
from config.loader import parse_config
from config.schema import TopicRule, TopicSettings
from models.enums import Category

PROFILES = Path(__file__).resolve().parent.parent / "config" / "profiles"
GROUPS = {"地域词": ["昆明", "大理州", " 西双版纳 "], "伤亡词": ["死亡", "受伤"], "空组": ["", "  "], "英文": ["PM2.5"]}
FOREST_FIRE = "(森林|林区|林场) AND (火灾|起火|山火) NOT (演习|演练)"

# (expression, text, expected match)
MATCHES: list[tuple[str, str, bool]] = [
    (FOREST_FIRE, "某县林区发生山火", True),
    (FOREST_FIRE, "林区举行森林火灾应急演练", False),
    (FOREST_FIRE, "林场附近有人放风筝", False),
    # adjacency is AND
    ("森林 火灾", "森林发生火灾", True),
    ("森林 火灾", "森林防火宣传", False),
    # symbols and prefixes
    ("森林 & 火灾", "火灾森林", True),
    ("森林 | 草原", "草原", True),
    ("!演练 火灾", "火灾", True),
    ("!演练 火灾", "火灾演练", False),
    ("火灾 -演练", "火灾演练", False),
    ("火灾 -演练", "火灾", True),
    ("火灾 NOT 演练 NOT 演习", "火灾演习", False),
    # full-width operators as typed with a Chinese input method
    ("（森林｜林区）火灾", "林区火灾", True),
    ("（森林｜林区）！火灾", "林区火灾", False),
    # precedence NOT > AND > OR
    ("甲 OR 乙 AND 丙", "甲", True),
    ("甲 OR 乙 AND 丙", "乙", False),
    ("甲 OR 乙 AND 丙", "乙丙", True),
    ("(甲 OR 乙) AND 丙", "甲", False),
    ("NOT 甲 OR 乙", "甲乙", True),
    ("NOT 甲 OR 乙", "甲", False),
    ("NOT 甲 乙", "乙", True),
    ("NOT (甲 乙)", "甲", True),
    ("甲 | 乙 丙", "甲", True),
    # keywords are upper-case only: "and" is a word
    ("and", "bread and butter", True),
    ("and", "bread", False),
    # folding: NFKC and lower case on both sides
    ("PM2.5", "ｐｍ２．５浓度超标", True),
    ("ＣＯＶＩＤ-19", "covid-19 疫情", True),
    # quoted phrases keep spaces and operators
    ('"A OR B"', "it was a or b", True),
    ('"A OR B"', "a", False),
    ("“森林 火灾”", "森林 火灾", True),
    ("“森林 火灾”", "森林火灾", False),
    # word groups
    ("{地域词} 山火", "大理州宾川县发生山火", True),
    ("{地域词} 山火", "西双版纳发生山火", True),
    ("{地域词} 山火", "某县发生山火", False),
    ("{英文}", "pm2.5爆表", True),
    # regular expressions (Python re, case-insensitive, on the folded text)
    (r"/\d+人(死亡|遇难)/", "事故造成3人死亡", True),
    (r"/\d+人(死亡|遇难)/", "事故造成多人死亡", False),
    (r"/PM2\.5/", "pm2.5", True),
    (r"/a\/b/", "a/b", True),
    (r"/(化工|槽罐).{0,4}泄漏/ 疏散", "槽罐车侧翻泄漏，居民疏散", True),
    # proximity: the gap between the two matches, either order
    ("NEAR/4(森林, 火灾)", "森林里发生了火灾", True),
    ("NEAR/3(森林, 火灾)", "森林里发生了火灾", False),
    ("NEAR/4(森林, 火灾)", "火灾烧到了森林边", True),
    ("NEAR/0(森林, 火灾)", "森林火灾", True),
    ("NEAR/5(森林|林区, 火灾|山火)", "林区突发山火", True),
    ("NEAR/5(森林|林区, 火灾|山火)", "林区今天天气晴朗，傍晚另一地山火", False),
    ("NEAR/6({地域词}, 山火)", "昆明西山发生山火", True),
    ("NEAR/6({地域词}, 山火)", "昆明今天很热，好在没有什么山火", False),
    ("NEAR/3(/\\d+公顷/, 过火)", "过火面积30公顷", True),
    ("森林 W/4 火灾", "森林里发生了火灾", True),
    ("森林 W/2 火灾", "森林里发生了火灾", False),
    ("(森林|林区) W/2 (火灾|山火) NOT 演练", "林区的山火", True),
    ("(森林|林区) W/2 (火灾|山火) NOT 演练", "林区的山火演练", False),
    ("NOT 森林 W/2 火灾", "森林里很远很远有火灾", True),
    ("NEAR/3(森林, 火灾)", ("森林" + "一" * 10 + "火灾" + "二" * 10) * 300, False),
    ("NEAR/3(森林, 火灾)", ("森林" + "一" * 10 + "火灾" + "二" * 10) * 300 + "森林一火灾", True),
    ("NEAR/3(/森./, 火灾|二二二二二二二二二二森)", "二二二二二二二二二二森xxxx森林", True),  # overlap counts as near
    ("NEAR/3(/森./, 火灾|二二二二二二二二二二森)", "森林xxxx二二二二二二二二二二森", False),
    # depth is nesting, not a count: many groups side by side are fine
    (" ".join(["(森林)"] * (MAX_DEPTH + 5)) + " " + "!" * (MAX_DEPTH // 2 * 2) + "火灾", "森林火灾", True),
    ("(" * MAX_DEPTH + "森林" + ")" * MAX_DEPTH, "森林", True),
    ("NEAR/2(森林, 火灾) OR 山火", "山火", True),
    # hostile text never raises
    ("森林", "\x00\ud800森林\u200b", True),
]

# (expression, exact error line)
ERRORS: list[tuple[str, str]] = [
    ("", "col 1: empty expression"),
    ("   ", "col 1: empty expression"),
    ("(森林 火灾", "col 7: ')' expected"),
    ("((森林) 火灾", "col 9: ')' expected"),
    ("森林 AND", "col 7: term expected"),
    ("森林 OR OR 火灾", "col 7: term expected, found 'OR'"),
    ("森林 )", "col 4: unexpected ')'"),
    (")", "col 1: term expected, found ')'"),
    ("}", "col 1: unexpected '}'"),
    ("火灾 {地域}", "col 4: unknown word group {地域}"),
    ("{空组} 火灾", "col 1: word group {空组} is empty"),
    ("{ }", "col 1: empty word group name"),
    ("{地域词", "col 5: closing '}' expected"),
    ('"森林', "col 4: closing '\"' expected"),
    ('森林 ""', "col 4: empty phrase"),
    ("“森林", "col 4: closing '”' expected"),
    ("/森林(/", "col 4: bad regular expression: missing ), unterminated subpattern"),
    ("/a*/", "col 1: regular expression matches empty text"),
    ("//", "col 1: empty regex"),
    ("/森林", "col 4: closing '/' expected"),
    ("NEAR/5 森林", "col 8: '(' expected after NEAR/5"),
    ("NEAR/5(森林)", "col 10: ',' expected"),
    ("NEAR/5(森林, 火灾", "col 14: ')' expected"),
    ("NEAR/5(森林 火灾, 山)", "col 8: proximity takes terms, word groups or (A|B) lists of them"),
    ("NEAR/5(森林, NOT 火灾)", "col 12: proximity takes terms, word groups or (A|B) lists of them"),
    ("森林 W/3 (火灾 山火)", "col 8: proximity takes terms, word groups or (A|B) lists of them"),
    ("森林 W/3 火灾 W/3 山火", "col 11: unexpected 'W/3'"),
    ("森林 W/3", "col 7: term expected"),
    ("(" * (MAX_DEPTH + 1) + "森林" + ")" * (MAX_DEPTH + 1), f"col {MAX_DEPTH + 1}: nested too deeply"),
    ("!" * (MAX_DEPTH + 1) + "森林", f"col {MAX_DEPTH + 1}: nested too deeply"),
]


@pytest.mark.parametrize(("expr", "text", "expected"), MATCHES)
def test_matches(expr: str, text: str, expected: bool) -> None:
    assert parse_rule(expr, GROUPS).matches(text) is expected


@pytest.mark.parametrize(("expr", "message"), ERRORS)
def test_parse_errors_are_one_line_with_a_column(expr: str, message: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule(expr, GROUPS)
    assert str(caught.value) == message
    assert caught.value.position == int(message.split(":")[0].removeprefix("col ")) - 1


def test_hits_name_what_matched_under_positive_polarity() -> None:
    rule = parse_rule("{地域词} (森林|林区) (火灾|山火) NOT 演练 /\\d+公顷/", GROUPS)
    assert rule.hits("西双版纳林区山火，过火30公顷") == ["西双版纳", "林区", "山火", "30公顷"]
    assert rule.hits("西双版纳林区山火演练，30公顷") == []
    assert parse_rule("NEAR/2(森林, 火灾)", {}).hits("森林火灾与森林") == ["森林", "火灾"]
    assert parse_rule("{英文}", GROUPS).hits("ＰＭ２．５") == ["PM2.5"]  # as written in the group


def _settings(*rules: TopicRule) -> TopicSettings:
    # built without validation: some tests hand compile_rules/validate_topics what the schema would refuse
    return TopicSettings.model_construct(word_groups=GROUPS, rules=list(rules))


SUPPRESS = TopicRule(name="演练", expr="(演练|演习) NOT {伤亡词}", action="suppress")
RULES = _settings(
    TopicRule(
        name="火灾", expr=FOREST_FIRE.replace(" NOT (演习|演练)", ""), action="category", category=Category.EMERGENCY
    ),
    TopicRule(name="形象", expr="不作为", action="category", category=Category.GOV_IMAGE),
    TopicRule(name="伤亡", expr="{伤亡词}", action="boost", category=Category.EMERGENCY, boost=0.3),
    TopicRule(name="伤亡2", expr="/\\d+人/ {伤亡词}", action="boost", category=Category.EMERGENCY, boost=0.2),
    TopicRule(name="辖区", expr="{地域词}", action="relevant"),
    SUPPRESS,
)


def test_apply_rules_outcomes() -> None:
    rules = compile_rules(RULES)
    assert apply_rules(rules, "今天天气很好") == RuleOutcome()
    fire = apply_rules(rules, "昆明林区山火致2人死亡，林业局不作为")
    assert fire.relevant is True
    assert fire.category is Category.EMERGENCY  # the first category rule that fired
    assert fire.boosts == {Category.EMERGENCY: pytest.approx(0.5)}
    assert fire.fired == ["火灾", "形象", "伤亡", "伤亡2", "辖区"]
    assert fire.hits["伤亡2"] == ["2人", "死亡"]
    assert fire.hits["辖区"] == ["昆明"]


def test_suppress_wins_but_the_explanation_stays_complete() -> None:
    rules = compile_rules(RULES)
    drill = apply_rules(rules, "昆明林区举行山火扑救演练")
    assert drill.relevant is False
    assert drill.fired == ["火灾", "辖区", "演练"]
    assert drill.hits["演练"] == ["演练"]
    real = apply_rules(rules, "昆明林区山火扑救演练中1人受伤")  # the exception inside the suppress rule
    assert real.relevant is True and "演练" not in real.fired
    assert apply_rules(compile_rules(_settings(SUPPRESS)), "演习").relevant is False


def test_compile_rules_names_the_bad_rule() -> None:
    bad = _settings(TopicRule(name="好", expr="森林"), TopicRule(name="坏规则", expr="森林 AND"))
    with pytest.raises(RuleError, match=r"^rules\[1\] 坏规则: col 7: term expected$"):
        compile_rules(bad)


def test_validate_topics_lists_every_problem() -> None:
    settings = TopicSettings.model_construct(
        word_groups={"地域词": ["昆明", " "], "空": [], "a}b": ["x"]},
        rules=[
            TopicRule(name="一", expr="{地域词} 火灾"),
            TopicRule(name="二", expr="{地域} 火灾"),
            TopicRule(name="一", expr="{空} (火灾"),
            TopicRule(name="四", expr="火灾", action="suppress", category=Category.EMERGENCY),
        ],
    )
    assert validate_topics(settings) == [
        ("word_groups.地域词[1]", "empty word"),
        ("word_groups.空", "word group {空} is empty"),
        ("word_groups.a}b", "a group name may not be blank or contain '{' or '}'"),
        ("rules[1].expr", "col 1: unknown word group {地域}"),
        ("rules[2].name", "duplicate rule name '一' (as rules[0])"),
        ("rules[2].expr", "col 1: word group {空} is empty"),
        ("rules[3].category", "not used by action suppress (only category / boost)"),
    ]
    assert validate_topics(TopicSettings()) == []


@pytest.mark.parametrize("name", ["forestry", "environment"])
def test_example_profiles_are_valid_configs(name: str) -> None:
    path = PROFILES / f"{name}.yaml"
    text = path.read_text(encoding="utf-8")
    assert set(yaml.safe_load(text)) == {"profile", "topics"}
    settings = parse_config(text, path)
    assert validate_topics(settings.topics) == []
    assert settings.profile.domain_terms and settings.profile.jurisdiction
    assert compile_rules(settings.topics)


FORESTRY_CASES: list[tuple[str, bool | None, Category | None]] = [
    ("某县林区发生山火", True, Category.EMERGENCY),
    ("昆明市安宁市某林区发生山火，过火面积约30公顷", True, Category.EMERGENCY),
    ("林区举行森林火灾应急演练", False, None),
    ("网游《森林大火》今日公测", False, None),
    ("大理州宾川县有人盗伐天然林，林业局不作为", True, Category.GOV_IMAGE),
    ("今天的午饭很好吃", None, None),
]
ENVIRONMENT_CASES: list[tuple[str, bool | None, Category | None]] = [
    ("成都市金堂县一化工厂储罐发生泄漏，周边居民紧急疏散", True, Category.EMERGENCY),
    ("郫都区某小区居民反映附近工地噪音扰民，多次投诉没人管", True, Category.LIVELIHOOD),
    ("某企业私设暗管偷排污水，环保局不作为", True, Category.GOV_IMAGE),
    ("网传成都自来水有异味是谣言", True, None),
    ("成都空气净化器促销，空气质量差就用它", False, None),
]


@pytest.mark.parametrize(
    ("name", "text", "relevant", "category"),
    [("forestry", *case) for case in FORESTRY_CASES] + [("environment", *case) for case in ENVIRONMENT_CASES],
)
def test_example_profiles_classify_samples(
    name: str, text: str, relevant: bool | None, category: Category | None
) -> None:
    settings = parse_config((PROFILES / f"{name}.yaml").read_text(encoding="utf-8"))
    outcome = apply_rules(compile_rules(settings.topics), text)
    assert (outcome.relevant, outcome.category) == (relevant, category), outcome


def test_config_refuses_a_bad_rule_with_its_key_path() -> None:
    from config.loader import ConfigError, parse_config

    with pytest.raises(ConfigError) as info:
        parse_config("topics:\n  rules:\n    - {name: a, expr: '森林 AND'}\n")
    assert (info.value.key, info.value.reason) == ("topics.rules[0].expr", "col 7: term expected")
