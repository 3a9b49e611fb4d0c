"""crawlers.encoding: BOMs, BOM-less UTF-16, declared charsets as verified hints, GB18030/Big5 widening,
wrong declarations, feeds' XML declarations, and never raising. Fixtures in tests/fixtures/encoding are the
same invented news page (and two feeds) saved in each encoding."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from crawlers.encoding import declared_charsets, decode_document, nfkc_key

FIXTURES = Path(__file__).parent / "fixtures" / "encoding"
SIMPLIFIED = "省林业厅部署秋冬季森林防火工作"
TRADITIONAL = "林務局部署秋冬季森林防火工作"


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.mark.parametrize(
    ("name", "encoding", "declared", "how", "marker"),
    [
        ("news_gbk_declares_gb2312.html", "gb18030", "gb2312", "declared", SIMPLIFIED),
        ("news_gb18030_undeclared.html", "gb18030", None, "sniffed", SIMPLIFIED),
        ("news_utf8_declares_gb2312.html", "utf-8", "gb2312", "sniffed", SIMPLIFIED),
        ("news_big5.html", "big5hkscs", "big5", "declared", TRADITIONAL),
        ("news_utf16le_bom.html", "utf-16-le", "utf-16-le", "bom", SIMPLIFIED),
        ("news_utf16le_nobom.html", "utf-16-le", None, "sniffed", SIMPLIFIED),
        ("news_utf16be_nobom.html", "utf-16-be", None, "sniffed", SIMPLIFIED),
    ],
)
def test_each_saved_encoding_decodes_to_the_same_chinese_page(
    name: str, encoding: str, declared: str | None, how: str, marker: str
) -> None:
    got = decode_document(load(name))
    assert (got.encoding, got.declared, got.how) == (encoding, declared, how)
    assert marker in got.text
    assert "\ufffd" not in got.text
    assert not got.text.startswith("\ufeff")


def test_gbk_labels_decode_as_gb18030_because_real_pages_exceed_gbk() -> None:
    body = load("news_gbk_declares_gb2312.html")
    with pytest.raises(UnicodeDecodeError):
        body.decode("gbk")  # the reporter's name 王䶮 exists only in GB18030
    assert "记者 王䶮" in decode_document(body).text
    for label in ("GBK", "gb2312", "GB_2312-80", "x-gbk", "cp936", "GB18030"):
        assert decode_document(body, content_type=f"text/html; charset={label}").encoding == "gb18030"


@pytest.mark.parametrize(
    ("name", "header", "marker"),
    [
        ("news_gbk_declares_gb2312.html", "text/html; charset=ISO-8859-1", SIMPLIFIED),  # Tomcat's default
        ("news_gbk_declares_gb2312.html", "text/html; charset=big5", SIMPLIFIED),
        ("news_gbk_declares_gb2312.html", "text/html; charset=utf-8", SIMPLIFIED),
        ("news_gb18030_undeclared.html", "text/html; charset=iso-8859-1", SIMPLIFIED),
        ("news_big5.html", "text/html; charset=gbk", TRADITIONAL),
        ("news_utf8_declares_gb2312.html", "text/html; charset=gbk", SIMPLIFIED),
    ],
)
def test_a_wrong_header_charset_is_only_a_hint(name: str, header: str, marker: str) -> None:
    got = decode_document(load(name), content_type=header)
    assert marker in got.text
    assert got.declared == header.split("=")[1].lower()


def test_big5_bytes_declared_as_gbk_are_recognised() -> None:
    """GB18030 decodes Big5 bytes without error (as kana and Cyrillic); the result must be noticed."""
    body = load("news_big5.html").replace(b'<meta charset="big5">\n', b"")
    got = decode_document(body, content_type="text/html; charset=gbk")
    assert got.encoding in ("big5hkscs", "cp950", "big5")
    assert TRADITIONAL in got.text


@pytest.mark.parametrize(
    ("name", "encoding", "marker"),
    [("feed_gb2312.xml", "gb18030", "关于加强秋冬季森林防火工作的通知"), ("feed_big5.xml", "big5hkscs", TRADITIONAL)],
)
def test_feeds_follow_their_xml_declaration(name: str, encoding: str, marker: str) -> None:
    got = decode_document(load(name), kind="xml")
    assert (got.encoding, got.how) == (encoding, "declared")
    assert marker in got.text


def test_kind_selects_which_in_document_declarations_count() -> None:
    doc = b'<?xml version="1.0" encoding="big5"?><html><head><meta charset="gbk"></head></html>'
    assert declared_charsets(doc, None, "xml") == ["big5"]
    assert declared_charsets(doc, None, "html") == ["gbk"]
    assert declared_charsets(doc, 'text/html; charset="UTF-8"', "auto") == ["utf-8", "big5", "gbk"]


@pytest.mark.parametrize(
    ("bom", "codec"),
    [(codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"),
     (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be")],
)
def test_a_byte_order_mark_decides_over_any_declaration(bom: bytes, codec: str) -> None:
    text = '<meta charset="gb2312"><p>舆情监测</p>'
    got = decode_document(bom + text.encode(codec), content_type="text/html; charset=big5")
    assert (got.text, got.encoding, got.how) == (text, codec, "bom")


@pytest.mark.parametrize(
    "body",
    [b"", b"\x00", b"\xff" * 7, bytes(range(256)) * 3, "舆情".encode("gb18030")[:-1], b"\xe8\x88\x86\xe6",
     b"<meta charset=no-such-codec><p>\xd3\xdf\xc7\xe9</p>", b'<?xml version="1.0" encoding="x-unknown"?><a/>'],
)
def test_never_raises_on_bad_bytes_or_labels(body: bytes) -> None:
    got = decode_document(body, content_type="text/html; charset=bogus")
    assert isinstance(got.text, str)
    assert got.how in ("bom", "declared", "sniffed", "fallback")


def test_a_truncated_download_keeps_its_declared_codec() -> None:
    body = load("news_gbk_declares_gb2312.html")
    cut = body[: body.index(SIMPLIFIED.encode("gb18030")) + 5]  # ends inside a two-byte character
    got = decode_document(cut)
    assert got.encoding == "gb18030"
    assert "\ufffd" in got.text[-2:]


def test_nfkc_key_folds_width_case_and_spaces_for_matching_only() -> None:
    assert nfkc_key("ＡＢＣ　１２３  舆情") == nfkc_key("abc 123 舆情") == "abc 123 舆情"
    assert nfkc_key("Ⅻ号文件") == "xii号文件"


def test_real_pages_declaring_gb2312_but_written_in_utf8(shared_data: Path) -> None:
    """The three GNE pages whose <meta> says gb2312 while every byte is UTF-8."""
    root = shared_data / "gne_news_html" / "tests"
    for page in ("people/1.html", "qq/2.html", "163/9.html"):
        got = decode_document((root / page).read_bytes())
        assert (got.encoding, got.declared, got.how) == ("utf-8", "gb2312", "sniffed"), page


def test_real_gb2312_and_big5_feeds(shared_data: Path) -> None:
    """chardet's real Chinese feeds and pages, filed by encoding: GB2312 ones must come out as GB18030, Big5
    ones through the Big5 chain, none lossily (a few declare nothing and are sniffed)."""
    folder = shared_data / "chardet_gb2312_big5_feeds"
    checked = 0
    for family, expected in (("GB2312", ("gb18030",)), ("Big5", ("big5hkscs", "cp950", "big5"))):
        for path in sorted((folder / family).iterdir()):
            got = decode_document(path.read_bytes(), kind="xml" if path.suffix == ".xml" else "auto")
            assert got.encoding in expected, path.name
            assert "\ufffd" not in got.text, path.name
            checked += 1
    assert checked >= 40
