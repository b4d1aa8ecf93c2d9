"""The words of a text as search sees them: one analysis for the catalogue's
titles, tags and descriptions and for what a person types.

Japanese goes through Sudachi (SudachiPy with its core dictionary), which cuts
text into words and gives each its dictionary's normalised form and its groups
in the Sudachi synonym dictionary (compiled into the core dictionary):

    問合せ, 問い合わせ, お問合せ     → 問い合わせ
    ｍａｉｌ, ﾒｰﾙ, めーる, メール     → メール           (e-mail, Eメール: the same group)
    謝罪, お詫び                     → one synonym group
    会議, 打ち合わせ, ミーティング    → one synonym group
    アポ, アポイント · インスタ, Instagram · スマホ, スマートフォン → a group each

Full- and half-width forms are made one first (NFKC: ＬＰ → LP, ﾌﾟﾚｽﾘﾘｰｽ →
プレスリリース). A long word also stands for its shorter parts (プレスリリース:
プレス, リリース), so a part finds it. A word typed in kana is also looked for
in the readings (おわび finds お詫び, ぎじろく 議事録).

English is lower-cased, British and American spellings are made one
(-ize/-ise, color/colour), stemmed with Snowball's English stemmer (meetings →
meet), and the obvious synonyms and abbreviations (`ENGLISH_SYNONYMS`:
sorry/apology, LP/landing page, NDA/non-disclosure agreement, …) are one group
each. A Latin word inside Japanese text (SNS, LINE, Amazon) gets both.

A term is a string: a normalised form or a stem (`メール`, `meet`), a Sudachi
synonym group (`~8632`) or an English synonym group (`=apology`).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import lru_cache

import Stemmer
from sudachipy import Dictionary, Morpheme, SplitMode

# What a match through each kind of term is worth, against the word itself.
SYNONYM = 0.8  # another word of the same synonym group
PART = 0.7  # a part of a longer word (リリース in プレスリリース)
READING = 0.8  # the same reading, for a word typed in kana
SUBSTRING = 0.5  # found inside the text: a word no term knows (a name, a word not finished)

# A query is cut at this length and this many words: nobody types more into a
# search box, and the time a search takes stays bounded whatever is sent.
MAX_QUERY_CHARACTERS = 200
MAX_QUERY_WORDS = 12

ENGLISH_SYNONYMS: tuple[tuple[str, ...], ...] = (
    # The first of each group names it; a phrase is matched word by word.
    ("email", "e-mail", "mail"),
    ("apology", "apologies", "apologise", "sorry"),
    ("thank you", "thanks", "thankyou", "gratitude"),
    ("follow up", "followup"),
    ("landing page", "lp"),
    ("press release", "news release"),
    ("faq", "frequently asked questions"),
    ("terms of service", "terms and conditions", "terms of use", "tos", "t&c", "t&cs"),
    ("nda", "non-disclosure agreement", "confidentiality agreement"),
    ("job posting", "job ad", "job advert", "job listing", "vacancy", "job opening"),
    ("quotation", "quote", "estimate", "rfq"),
    ("invoice", "bill"),
    ("inquiry", "enquiry"),
    ("meeting", "mtg"),
    ("one on one", "1on1", "1:1"),
    ("out of office", "ooo", "away message"),
    ("auto reply", "autoreply", "autoresponder"),
    ("newsletter", "e-newsletter", "mail magazine"),
    ("summary", "summarise", "recap", "tl;dr"),
    ("complaint", "grievance"),
    ("customer", "client"),
    ("recruiting", "recruitment", "hiring"),
    ("advertisement", "ad", "advert", "advertising"),
    ("headline", "heading"),
    ("photo", "photograph", "picture", "pic"),
    ("presentation", "deck", "slides"),
    ("survey", "questionnaire"),
    ("manual", "handbook"),
    ("social media", "sns", "social"),
    ("instagram", "insta", "ig"),
    ("youtube", "yt"),
    ("e-commerce", "ecommerce", "ec", "online shop", "online store", "webshop"),
    ("price increase", "price rise", "price hike"),
    ("cold email", "cold outreach", "prospecting email"),
    ("minutes", "meeting notes"),
    ("resignation", "farewell"),
)

_STOP = frozenset(
    re.findall(
        r"\w+",
        """a an the and or of to for in on at by with from after before about into onto
        my your our their his her its it is are be been was were as that this these those
        i we you he she they me us them how what when which who whom do does can could
        would should will shall may might please some any""",
    )
)
# The catalogue writes British English; people also type American.
_BRITISH = {
    "color": "colour",
    "favor": "favour",
    "behavior": "behaviour",
    "honor": "honour",
    "flavor": "flavour",
    "labor": "labour",
    "catalog": "catalogue",
    "program": "programme",
    "center": "centre",
    "license": "licence",
    "canceled": "cancelled",
    "canceling": "cancelling",
    "traveled": "travelled",
    "modeling": "modelling",
    "labeled": "labelled",
}
_IZE = re.compile(r"(?<=[a-z]{2})([iy])z(e|es|ed|ing|ation|ations|er|ers)$")
_ENGLISH_WORD = re.compile(r"[a-z0-9]+(?:[&:;][a-z0-9]+)*")
# English phrases do not run across punctuation (tags are separated by commas).
_SEGMENT = re.compile(r"[,.!?()\[\]{}/|\"“”、。・]+")

# Sudachi's parts of speech that mean nothing of their own to search.
_SKIPPED = frozenset({"助詞", "助動詞", "補助記号", "空白", "記号", "接頭辞", "接続詞"})
_UNREAD = frozenset({"補助記号", "空白", "記号"})
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KANA = re.compile(r"[\u3041-\u3096\u30a1-\u30fa\u30fc]+")
# Control and format characters, lone surrogates, private use, unassigned.
_UNSEARCHABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
# Characters Sudachi is given at once: 4 bytes each in UTF-8 at most, under its limit.
_PIECE = 10_000


def searchable(text: str) -> str:
    """`text` as search compares it: full- and half-width forms made one
    (NFKC), lower case, and only visible characters and spaces."""
    text = unicodedata.normalize("NFKC", text).casefold()
    if text.isprintable():
        return text
    return "".join(
        " " if char.isspace() else char
        for char in text
        if char.isspace() or unicodedata.category(char) not in _UNSEARCHABLE
    )


def is_japanese(text: str) -> bool:
    return _CJK.search(text) is not None


def katakana(text: str) -> str:
    return "".join(chr(ord(c) + 0x60) if "\u3041" <= c <= "\u3096" else c for c in text)


@dataclass(frozen=True)
class QueryWord:
    """One word of a query and the terms that find it, with what each is worth."""

    text: str  # as typed (searchable): looked for inside the text if no term is known
    terms: dict[str, float]
    reading: str = ""  # katakana, for a word typed in kana: looked for in readings
    parts: tuple[QueryWord, ...] = ()  # its shorter parts: where all of them are counts too


@dataclass(frozen=True, slots=True)
class JapaneseText:
    """A Japanese field's terms, with what each is worth, and its reading
    (katakana; a space where a symbol stood)."""

    terms: dict[str, float]
    reading: str


# ---------------------------------------------------------------- English

_STEMMER = Stemmer.Stemmer("english")


@lru_cache(maxsize=16384)
def _stem(word: str) -> str:
    word = _BRITISH.get(word, word)
    if "z" in word:
        word = _IZE.sub(r"\1s\2", word)
    return _STEMMER.stemWord(word)


def _english_words(text: str) -> list[str]:
    return _ENGLISH_WORD.findall(text.replace("'s", "").replace("’s", ""))


def _synonym_phrases() -> dict[str, list[tuple[tuple[str, ...], str]]]:
    """The synonyms as stems, by their first stem, longest first."""
    phrases: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    for group in ENGLISH_SYNONYMS:
        for member in group:
            stems = tuple(_stem(word) for word in _english_words(member))
            phrases.setdefault(stems[0], []).append((stems, "=" + group[0]))
    for candidates in phrases.values():
        candidates.sort(key=lambda pair: -len(pair[0]))
    return phrases


_PHRASES = _synonym_phrases()


def _english_groups(stems: list[str]) -> dict[int, tuple[int, str]]:
    """The synonym groups that a run of stems names: start → (end, group), the
    longest phrase first and none overlapping."""
    found = {}
    start = 0
    while start < len(stems):
        end = start + 1
        for words, name in _PHRASES.get(stems[start], ()):
            if tuple(stems[start : start + len(words)]) == words:
                end = start + len(words)
                found[start] = (end, name)
                break
        start = end
    return found


@lru_cache(maxsize=8192)
def english_terms(text: str) -> dict[str, float]:
    """The terms of English text (already `searchable`): stems and synonym groups."""
    terms: dict[str, float] = {}
    for segment in _SEGMENT.split(text):
        words = _english_words(segment)
        stems = [_stem(word) for word in words]
        terms.update(
            (stem, 1.0) for word, stem in zip(words, stems, strict=True) if word not in _STOP
        )
        terms.update((name, 1.0) for _end, name in _english_groups(stems).values())
    return terms


def _english_query_words(text: str) -> list[QueryWord]:
    words = _english_words(text)
    stems = [_stem(word) for word in words]
    groups = _english_groups(stems)
    found = []
    position = 0
    while position < len(words):
        end, name = groups.get(position, (position + 1, ""))
        if end - position > 1:  # a phrase: landing page, terms and conditions
            found.append(QueryWord(" ".join(words[position:end]), {name: 1.0}))
        elif words[position] not in _STOP or len(words) == 1:
            terms = {stems[position]: 1.0}
            if name:
                terms.setdefault(name, SYNONYM)
            for term, worth in _as_japanese(words[position]).items():
                terms.setdefault(term, worth * SYNONYM)
            found.append(QueryWord(words[position], terms))
        position = end
    return found


# ---------------------------------------------------------------- Japanese

_local = threading.local()
_dictionary_lock = threading.Lock()
_dictionary: list[Dictionary] = []


def _tokenizer():
    """This thread's Sudachi tokenizer: the dictionary is memory-mapped once and
    shared; a tokenizer is used by one thread at a time."""
    tokenizer = getattr(_local, "tokenizer", None)
    if tokenizer is None:
        with _dictionary_lock:
            if not _dictionary:
                _dictionary.append(Dictionary(dict="core"))
        tokenizer = _local.tokenizer = _dictionary[0].tokenizer(mode=SplitMode.C)
    return tokenizer


@dataclass(frozen=True, slots=True)
class _Word:
    """A Japanese word as Sudachi read it."""

    surface: str
    reading: str
    meaningful: bool  # not a particle, a symbol, a prefix…
    terms: dict[str, float]
    parts: tuple[tuple[str, dict[str, float]], ...]  # its shorter parts, if it has parts


def _terms(morpheme: Morpheme) -> dict[str, float]:
    # The surface too: Sudachi reads お詫び as a noun in one place and as the
    # verb 詫びる in another, and the same characters should meet.
    surface = morpheme.surface()
    terms = {morpheme.normalized_form().casefold(): 1.0, surface: 1.0}
    if surface.isascii() and surface.isalnum():
        terms.update(english_terms(surface))
    for group in morpheme.synonym_group_ids():
        terms.setdefault(f"~{group}", SYNONYM)
    return terms


# Each dictionary word's analysis, done once: the catalogue repeats its words.
_words: dict[tuple[int, str], _Word] = {}
_WORDS_KEPT = 50_000


def _word(morpheme: Morpheme) -> _Word:
    key = (morpheme.word_id(), morpheme.surface())
    word = _words.get(key)
    if word is None:
        kind = morpheme.part_of_speech()[0]
        split = morpheme.split(SplitMode.A) if kind not in _SKIPPED else ()
        word = _Word(
            surface=key[1],
            reading=" " if kind in _UNREAD else morpheme.reading_form(),
            meaningful=kind not in _SKIPPED,
            terms=_terms(morpheme),
            parts=tuple((part.surface(), _terms(part)) for part in split) if len(split) > 1 else (),
        )
        if len(_words) < _WORDS_KEPT:
            _words[key] = word
    return word


def _japanese_words(text: str) -> tuple[list[_Word], str]:
    """The meaningful words of `text` (already `searchable`) and its reading."""
    tokenizer = _tokenizer()
    words = [_word(morpheme) for piece in _pieces(text) for morpheme in tokenizer.tokenize(piece)]
    return [word for word in words if word.meaningful], "".join(word.reading for word in words)


def _pieces(text: str) -> Iterator[str]:
    """`text` in pieces that Sudachi takes (it refuses more than 48 KiB at once),
    cut after a sentence or a space where there is one near the end of a piece."""
    while len(text) > _PIECE:
        cut = max(text.rfind(mark, _PIECE - 1000, _PIECE) for mark in "。．.!?！？\n ")
        cut = cut + 1 if cut > 0 else _PIECE
        yield text[:cut]
        text = text[cut:]
    yield text


@lru_cache(maxsize=8192)
def japanese_text(text: str) -> JapaneseText:
    """The terms of Japanese text (already `searchable`)."""
    words, reading = _japanese_words(text)
    terms: dict[str, float] = {}
    for word in words:
        for _surface, part in word.parts:
            for term, worth in part.items():
                terms[term] = max(terms.get(term, 0.0), worth * PART)
        for term, worth in word.terms.items():
            terms[term] = max(terms.get(term, 0.0), worth)
    return JapaneseText(terms, reading)


def _as_japanese(word: str) -> dict[str, float]:
    """What Sudachi knows of an English word (mail: メール, meeting: 会議),
    so that it finds Japanese text too."""
    found, _reading = _japanese_words(word)
    return found[0].terms if len(found) == 1 else {}


def _japanese_query_words(chunk: str) -> list[QueryWord]:
    found, _reading = _japanese_words(chunk)
    words = [
        QueryWord(
            word.surface,
            word.terms,
            parts=tuple(QueryWord(surface, part) for surface, part in word.parts),
        )
        for word in found
    ]
    if _KANA.fullmatch(chunk) and words:
        # Kana, perhaps left unconverted (ぎじろく): one word, also found by its
        # reading, or where all the words Sudachi read in it are.
        if len(words) == 1:
            return [replace(words[0], text=chunk, reading=katakana(chunk))]
        return [QueryWord(chunk, {}, reading=katakana(chunk), parts=tuple(words))]
    return words


# ---------------------------------------------------------------- queries


def query_words(query: str) -> list[QueryWord]:
    """The words of what a person typed, each with the terms that find it;
    one word of the whole text if it has no word search knows."""
    text = searchable(query[: MAX_QUERY_CHARACTERS * 2])[:MAX_QUERY_CHARACTERS]
    words: list[QueryWord] = []
    english: list[str] = []  # a run of English words: its phrases are looked for together
    for chunk in text.split():
        if is_japanese(chunk):
            words += _english_query_words(" ".join(english)) + _japanese_query_words(chunk)
            english = []
        else:
            english.append(chunk)
    words += _english_query_words(" ".join(english))
    if not words and text.strip():
        return [QueryWord(" ".join(text.split()), {})]
    unique: dict[str, QueryWord] = {}
    for word in words:
        unique.setdefault(word.text, word)
    return list(unique.values())[:MAX_QUERY_WORDS]
