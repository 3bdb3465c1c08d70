"""Every fixed sentence the app says, in the user's language (gettext catalogues read with Babel).

Code writes English message ids through `_()` / `ngettext()`, with `{name}` placeholders filled by
keyword: `_("Contract v{version}", version=3)`. A language is a folder of `.po` files under
`agent/locale/<code>/LC_MESSAGES/` (every `.po` file there is read, so a part of the app may keep its
own file); English needs none. A message with no translation is said in English.

The language is per conversation, not per process: `using("ro")` sets it for the code below it
(asyncio tasks and `asyncio.to_thread` calls started there inherit it), and `Conversation`
sets it from the settings, the browser's language or what the user writes (`pick`).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import gettext
from collections.abc import Iterator
from importlib import resources
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from agent.languages import guess_language, language_code

DEFAULT = "en"
NAMES = {"en": "English", "ro": "Română"}
"""The languages the app speaks (its own sentences), by code, in their own names."""

_current: contextvars.ContextVar[str] = contextvars.ContextVar("ui_language", default=DEFAULT)


@functools.cache
def catalogue(code: str) -> dict[str, Any]:
    """msgid → translation (a string, or a tuple of plural forms) for one language."""
    out: dict[str, Any] = {}
    folder = resources.files("agent") / "locale" / code / "LC_MESSAGES"
    if not folder.is_dir():
        return out
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".po"):
            continue
        with entry.open("rb") as fh:
            for message in read_po(fh, locale=code):
                if not message.id or message.fuzzy:
                    continue
                key = str(message.id[0] if isinstance(message.id, tuple | list) else message.id)
                value = message.string
                if (isinstance(value, tuple) and all(value)) or (isinstance(value, str) and value):
                    out[key] = value
    return out


def current() -> str:
    return _current.get()


def set_language(code: str | None) -> None:
    """Set the language for the code that runs after this in the same context."""
    _current.set(supported(code))


@contextlib.contextmanager
def using(code: str | None) -> Iterator[None]:
    token = _current.set(supported(code))
    try:
        yield
    finally:
        _current.reset(token)


def supported(code: str | None) -> str:
    """A language code the app speaks: "ro-RO" → "ro", "fr" → "en"."""
    base = (code or "").replace("_", "-").split("-")[0].strip().lower()
    return base if base in NAMES else DEFAULT


def pick(*, setting: str | None = None, text: str | None = None, browser: str | None = None) -> str:
    """The language to speak: the one chosen in the settings, else the one the user writes in (when
    the text says clearly), else the browser's."""
    if setting and setting != "auto":
        return supported(setting)
    if text:
        name = guess_language(text, default="")
        written = language_code(name) if name else None
        if written and supported(written) == written:
            return written
    return supported(browser)


def _fill(text: str, values: dict[str, Any]) -> str:
    return text.format(**values) if values else text


def _(msgid: str, /, **values: Any) -> str:
    """The sentence in the current language, its `{placeholders}` filled from `values`."""
    found = catalogue(_current.get()).get(msgid) if _current.get() != DEFAULT else None
    text = found if isinstance(found, str) else msgid
    return _fill(text, values)


def ngettext(singular: str, plural: str, n: int, /, **values: Any) -> str:
    """`singular` or `plural` by `n` (in Romanian: three forms), `{n}` filled too."""
    code = _current.get()
    forms = catalogue(code).get(singular) if code != DEFAULT else None
    if isinstance(forms, tuple):
        text = forms[_plural_index(code, n)] if _plural_index(code, n) < len(forms) else plural
    else:
        text = singular if n == 1 else plural
    return _fill(text, {"n": n, **values})


@functools.cache
def _plural_rule(code: str) -> Any:
    """CLDR's plural rule for the language as gettext's `plural=` expression (Romanian has three
    forms: 1 | 0, 2–19 | 20 and more, "20 de rânduri")."""
    return gettext.c2py(Catalog(locale=code).plural_expr)


def _plural_index(code: str, n: int) -> int:
    return int(_plural_rule(code)(n))


class Lazy(str):
    """A sentence decided now and said later, in the language of whoever reads it then (e.g. the
    app's start-up notice, shown to each session in its own language). `str(lazy)` and f-strings
    give the current language; it compares and hashes as its English text."""

    msgid: str
    values: dict[str, Any]

    def __new__(cls, msgid: str, /, **values: Any) -> Lazy:
        obj = super().__new__(cls, _fill(msgid, values))
        obj.msgid, obj.values = msgid, values
        return obj

    def __str__(self) -> str:
        return _(self.msgid, **self.values)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def lazy(msgid: str, /, **values: Any) -> Lazy:
    """Mark a sentence for translation where it is said, not where it is made."""
    return Lazy(msgid, **values)


def language_name(name: str) -> str:
    """A data language's name ("Romanian", canonical English) as the reader says it ("română"),
    from CLDR via Babel; the name itself when CLDR has none."""
    code = language_code(name)
    if not code or current() == DEFAULT:
        return name
    from babel import Locale

    return str(Locale.parse(current()).languages.get(code) or name)
