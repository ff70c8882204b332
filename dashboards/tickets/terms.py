"""Search terms from Japanese text, for finding similar past tickets and answers without a morphological analyser.

Japanese has no spaces, and a trigram index only finds a term of three or more
characters as an exact substring. Callers phrase the same fault differently
("回線が切れた" / "回線断" / "専用回線の切断"), and most content words are two
kanji long (回線, 切断, 端末). So the text is cut where the script changes —
kanji, katakana, latin letters and digits, hiragana — which separates content
words from particles and okurigana (回線|が|切|れた), and:

- kanji runs of two or more are terms, and so is every two-kanji window of a
  longer run (回線断 → 回線断, 回線, 線断), because compounds are built of
  two-kanji words;
- katakana and latin/digit runs of two or more are terms as a whole (ログイン, cs);
- hiragana runs are grammar in most queries: they count only when the query
  has nothing else (a query typed all in kana);
- the whole query, if short, is a term too, so an exact phrase ranks first.

What this cannot do: find a synonym that shares no characters (つながらない vs
接続できない, 切れた vs 断), or a word written in kana in one place and kanji in
another. A match is a shared substring, nothing more.
"""

from __future__ import annotations

import re
import unicodedata

MAX_TERMS = 12  # each term is one index look-up (or one scan, for two characters)
MAX_PHRASE = 30  # a longer query is a description, not a phrase anyone will have typed before
MIN_INDEXED = 3  # a trigram index finds terms of at least three characters; shorter ones are a LIKE scan

_RUN = re.compile(
    r"(?P<kanji>[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff々〆ヶ]+)"
    r"|(?P<katakana>[\u30a1-\u30faー]+)"
    r"|(?P<hiragana>[\u3041-\u3096]+)"
    r"|(?P<latin>[0-9a-z]+)")


def normalise(text: str) -> str:
    """NFKC (full-width letters and digits, half-width katakana) and lower case: what is stored and searched."""
    return unicodedata.normalize("NFKC", text).lower()


def search_terms(text: str) -> list[str]:
    """Distinct terms of ``text``, longest (most telling) first, at most ``MAX_TERMS``."""
    query = normalise(text).strip()
    found: list[str] = []
    kana: list[str] = []
    for run in _RUN.finditer(query):
        script, word = run.lastgroup, run.group()
        if len(word) < 2:
            continue
        if script == "hiragana":
            kana.append(word)
            continue
        found.append(word)
        if script == "kanji" and len(word) > 2:
            found += [word[i:i + 2] for i in range(len(word) - 1)]
    if not found:
        found = [word for word in kana if len(word) >= MIN_INDEXED]
    phrase = re.sub(r"\s+", " ", query)
    if phrase and len(phrase) <= MAX_PHRASE and (len(phrase) >= MIN_INDEXED or not found):
        found.append(phrase)  # a one- or two-character query is still searched for, by itself
    distinct = list(dict.fromkeys(found))
    return sorted(distinct, key=len, reverse=True)[:MAX_TERMS]
