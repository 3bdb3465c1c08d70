"""Refresh the message catalogues: every `_()` / `ngettext()` text in agent/ and app.py lands in
agent/locale/messages.pot and, untranslated, in each language's app.po (translations kept).

    .venv/bin/python scripts/catalogue.py      # then fill the empty msgstr "" entries
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "agent" / "locale"
KEYWORDS = {"_": None, "ngettext": (1, 2), "lazy": None}


def sources() -> list[Path]:
    return [*sorted((ROOT / "agent").rglob("*.py")), ROOT / "app.py"]


def extract() -> Catalog:
    """The messages the code says, with where each is said."""
    template = Catalog(project="dataset-agent", charset="utf-8")
    for path in sources():
        name = str(path.relative_to(ROOT))
        for line, message, comments, _context in extract_from_file(
            "python", str(path), keywords=KEYWORDS, comment_tags=("i18n:",)
        ):
            template.add(message, locations=[(name, line)], auto_comments=comments)
    return template


def main() -> int:
    template = extract()
    with open(LOCALE / "messages.pot", "wb") as fh:
        write_po(fh, template, omit_header=False, sort_output=True, include_lineno=False)
    for folder in sorted(p for p in LOCALE.iterdir() if p.is_dir()):
        po = folder / "LC_MESSAGES" / "app.po"
        if po.exists():
            with open(po, "rb") as fh:
                catalog = read_po(fh, locale=folder.name)
        else:
            catalog = Catalog(locale=folder.name, project="dataset-agent", charset="utf-8")
        catalog.update(template, no_fuzzy_matching=True)
        # a message kept in another catalogue of this language (serve.po, history.po, …) stays there
        for other in sorted((folder / "LC_MESSAGES").glob("*.po")):
            if other.name == "app.po":
                continue
            with open(other, "rb") as fh:
                for m in read_po(fh, locale=folder.name):
                    if m.id and m.id in catalog:
                        catalog.delete(m.id)
        with open(po, "wb") as fh:
            write_po(fh, catalog, sort_output=True, include_lineno=False, ignore_obsolete=True)
        missing = sum(
            1
            for m in catalog
            if m.id and not (all(m.string) if isinstance(m.string, tuple) else m.string)
        )
        print(f"{po.relative_to(ROOT)}: {len(catalog)} messages, {missing} without a translation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
