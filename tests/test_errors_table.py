"""One error table: the enum, the table and docs/errors.md agree; codes sit in their family."""

from pathlib import Path

from sfu.errors import ERRORS, ErrorCode, render_markdown

DOC = Path(__file__).resolve().parent.parent / "docs" / "errors.md"


def test_enum_and_table_agree():
    assert {int(c) for c in ErrorCode} == set(ERRORS)
    for code in ErrorCode:
        assert ERRORS[code].name == code.name
        assert ERRORS[code].meaning and ERRORS[code].action


def test_families():
    for code in ErrorCode:
        assert int(code) // 1000 in (1000, 1002, 1003, 1004), code


def test_docs_mirror_the_table():
    assert DOC.read_text(encoding="utf-8") == render_markdown(), "run: python -m sfu.errors > docs/errors.md"


def test_every_code_the_node_raises_is_in_the_table():
    import re

    src = Path(__file__).resolve().parent.parent / "sfu"
    used = set()
    for f in src.rglob("*.py"):
        used.update(re.findall(r"ErrorCode\.([A-Z_]+)", f.read_text(encoding="utf-8")))
    assert used and used <= set(ErrorCode.__members__)
