"""
What a message search matches, in one place for every store: how a search text splits into
words, the SQLite FTS5 query those words make, and the same match for a store without FTS.

A word is a run of letters, digits, private-use characters and combining marks (Unicode
categories L*, N*, Co, Mn); everything else (spaces, punctuation, symbols, emoji) separates
words and is never searched for. This is SQLite's C{unicode61} tokenizer's rule, plus the marks
it keeps inside a word. A message matches a search when each of its words begins one of the
message's words (all of them, in any order), compared without regard to case or accents.

Pure functions; no I/O.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

#: Unicode categories of the characters a word is made of; every other character separates words.
_WORD_CATEGORIES = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo", "Nd", "Nl", "No", "Co", "Mn"})


def search_words(text: str) -> list[str]:
    """Return the words of C{text}, lower-cased, in order, each once."""
    words: list[str] = []
    current: list[str] = []
    for char in text + " ":
        if unicodedata.category(char) in _WORD_CATEGORIES:
            current.append(char)
        elif current:
            word = "".join(current).lower()
            current = []
            if word not in words:
                words.append(word)
    return words


def fts_query(text: str) -> str | None:
    """
    Return the SQLite FTS5 query for searching C{text}, or None if it has no word to search for.

    Each word becomes a quoted phrase with a prefix star (C{"twist"*}); phrases side by side must
    all match. Inside the quotes nothing is FTS5 syntax, so no user input can make the query
    invalid; FTS5 folds the case and accents of each word itself, as it did the messages'.
    """
    words = search_words(text)
    if not words:
        return None
    return " ".join('"' + word.replace('"', '""') + '"*' for word in words)


def fold(word: str) -> str:
    """Return C{word} as searches compare it: lower case, without accents or other combining marks."""
    decomposed = unicodedata.normalize("NFD", word.lower())
    return "".join(char for char in decomposed if unicodedata.category(char) != "Mn")


def folded_words(text: str) -> list[str]:
    """The words of C{text} as searches compare them (L{fold}ed), leaving out any that fold to nothing."""
    return [folded for folded in (fold(word) for word in search_words(text)) if folded]


def text_matcher(text: str) -> Callable[[str], bool] | None:
    """
    Return a test of whether a message body matches a search for C{text}, for stores that search
    by reading every message; None if C{text} has no word to search for (nothing matches).
    """
    wanted = folded_words(text)
    if not wanted:
        return None

    def matches(body: str) -> bool:
        words = folded_words(body)
        return all(any(word.startswith(prefix) for word in words) for prefix in wanted)

    return matches
