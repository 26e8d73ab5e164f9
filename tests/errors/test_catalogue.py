"""docs/ERRORS.md's catalogue of spec errors is generated from the fixtures: it must be up
to date, and every message a fixture expects must have a fix written for it."""
from tests.errors.catalogue import DOC, entries, fix_for, render


def test_every_expected_message_has_a_fix():
    missing = [f"tests/errors/{stem}.nn:{n}: {message}" for stem, _, message, _, n in entries()
               if fix_for(message) is None]
    assert not missing, "add a row to FIXES in tests/errors/catalogue.py for:\n" + "\n".join(missing)


def test_the_catalogue_in_the_docs_is_up_to_date():
    assert render() in DOC.read_text(encoding="utf-8"), \
        "docs/ERRORS.md is out of date: run .venv/bin/python -m tests.errors.catalogue --write"


def test_every_fixture_is_in_the_catalogue():
    from pathlib import Path

    from tests.errors.catalogue import SECTIONS
    fixtures = {p.stem for p in Path(__file__).parent.glob("*.nn") if not p.name.startswith("lib_")}
    assert fixtures == set(SECTIONS), "name the new fixture's section in SECTIONS (tests/errors/catalogue.py)"
