"""Names of languages, as people write them, mapped to one canonical English name.

The data language is something users state in their own words ("in Romanian", "în limba română",
"en français"); a model's reading of it is not trusted ("Roman", "Romania"). `find_language` reads a
stated language from a message; `normalise_language` turns any spelling of a name into the canonical
one. The table is data: a language is one line.
"""

from __future__ import annotations

import re
import unicodedata

# canonical name → ISO 639-1 code and the words that name it (lower case, accents optional:
# matching is done on accent-free text, so "română" and "romana" are one entry).
LANGUAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "English": ("en", ("english", "engleza", "englez", "anglais", "ingles", "englisch")),
    "Romanian": ("ro", ("romanian", "romana", "romaneste", "roumain", "rumano", "rumanisch")),
    "French": ("fr", ("french", "franceza", "francais", "frances", "franzosisch")),
    "German": ("de", ("german", "germana", "allemand", "aleman", "deutsch")),
    "Spanish": ("es", ("spanish", "spaniola", "espanol", "espagnol", "spanisch")),
    "Italian": ("it", ("italian", "italiana", "italien", "italiano", "italienisch")),
    "Portuguese": ("pt", ("portuguese", "portugheza", "portugais", "portugues")),
    "Dutch": ("nl", ("dutch", "olandeza", "neerlandais", "nederlands")),
    "Polish": ("pl", ("polish", "poloneza", "polonais", "polski")),
    "Russian": ("ru", ("russian", "rusa", "russe", "ruso")),
    "Ukrainian": ("uk", ("ukrainian", "ucraineana", "ukrainien")),
    "Hungarian": ("hu", ("hungarian", "maghiara", "hongrois", "magyar")),
    "Bulgarian": ("bg", ("bulgarian", "bulgara", "bulgare")),
    "Greek": ("el", ("greek", "greaca", "grec", "griego")),
    "Turkish": ("tr", ("turkish", "turca", "turc", "turco")),
    "Czech": ("cs", ("czech", "ceha", "tcheque")),
    "Swedish": ("sv", ("swedish", "suedeza", "suedois")),
    "Chinese": ("zh", ("chinese", "chineza", "chinois", "mandarin")),
    "Japanese": ("ja", ("japanese", "japoneza", "japonais")),
    "Korean": ("ko", ("korean", "coreeana", "coreen")),
    "Arabic": ("ar", ("arabic", "araba", "arabe")),
    "Hindi": ("hi", ("hindi",)),
}

_WORDS: dict[str, str] = {w: name for name, (_, words) in LANGUAGES.items() for w in words}
_CODES: dict[str, str] = {code: name for name, (code, _) in LANGUAGES.items()}

# "in Romanian", "în (limba) română", "en français", "auf Deutsch", "Romanian data", "data in ro"
_STATED = re.compile(
    r"\b(?:in|into|to|en|auf|pe|limba|language|lang|language:|limba:)\s+(?:limba\s+)?(?P<w>[a-z]+)\b"
)


def fold(text: str) -> str:
    """Lower case without accents or cedillas: "Română" → "romana", "ș" → "s"."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def normalise_language(name: str | None, default: str = "English") -> str:
    """The canonical English name for a language however it was written ("Roman", "română", "ro",
    "Romanian language"); an unknown name is kept, title-cased; empty gives `default`."""
    raw = fold(name or "").strip()
    if not raw:
        return default
    if raw in _CODES:
        return _CODES[raw]
    for word in re.findall(r"[a-z]+", raw):
        if word in _WORDS:
            return _WORDS[word]
    # a model's cut-off or odd spelling ("Roman", "Romanain"): a unique long-enough prefix match
    head = re.sub(r"[^a-z]", "", raw)
    if len(head) >= 4:
        hits = {n for w, n in _WORDS.items() if w.startswith(head[:5]) or head.startswith(w)}
        if len(hits) == 1:
            return hits.pop()
    return (name or default).strip().title()[:40]


def find_language(text: str) -> str | None:
    """The data language a message states ("… in Romanian", "în limba română"), or None."""
    folded = fold(text)
    for m in _STATED.finditer(folded):
        if m.group("w") in _WORDS:
            return _WORDS[m.group("w")]
    # "recenzii românești", "text românesc": the adjective alone also states it (other language
    # words alone do not: "reviews of German cars" is English data about cars)
    for word in re.findall(r"[a-z]+", folded):
        if word.startswith("romanes") and word in (
            "romanesc",
            "romanesti",
            "romaneste",
            "romaneasca",
        ):
            return "Romanian"
    return None


# Short words frequent in one language and rare in the others: enough to tell which of the
# catalogue's languages a message is written in.
_STOPWORDS: dict[str, frozenset[str]] = {
    "English": frozenset(
        "the a an and of for with to is are i want need make more less please some about".split()
    ),
    "Romanian": frozenset(
        "si sa un o cu de pentru vreau am nevoie mai care este sunt din la pe ale al ai fi".split()
        + "niste doar te rog".split()
    ),
}


def guess_language(text: str, default: str = "English") -> str:
    """Which language a message is written in (of those with stop words above), by counting them;
    Romanian letters (ă, â, î, ș, ț) count double."""
    words = re.findall(r"[a-z]+", fold(text))
    scores = {name: sum(w in stop for w in words) for name, stop in _STOPWORDS.items()}
    scores["Romanian"] += 2 * len(re.findall(r"[ăâîșşțţ]", text.lower()))
    best = max(scores, key=lambda n: scores[n])
    return best if scores[best] > 0 else default


def language_code(name: str) -> str | None:
    """ISO 639-1 code of a canonical name (for the dataset card), or None."""
    entry = LANGUAGES.get(normalise_language(name))
    return entry[0] if entry else None
