"""The benchmark registry: what each ERC benchmark is, in one entry.

Every ClassLabel in erc-synth takes its names from ``Benchmark.labels``, in this order, so that real and
synthetic datasets concatenate. Adding a fourth benchmark whose files use a format erc-synth already reads is
one more ``Benchmark(...)`` in ``BENCHMARKS``; a new file format adds one reader in
``dataset_scripts.readers`` and names it here.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from .errors import ErcSynthError, UnknownLabelError

SPLITS: tuple[str, ...] = ("train", "validation", "test")
#: The label index of an utterance without a gold label (kept as context); ``datasets`` uses -1 for a missing
#: ClassLabel. Collators turn it into -100 for the loss; metrics drop it (``ignore_index=-1``).
UNLABELLED: int = -1


@dataclass(frozen=True)
class Variant:
    """One published copy of a benchmark's text: a file format and a file per split.

    ``format`` names a reader in ``dataset_scripts.readers.READERS``; ``files`` maps each split to a path
    relative to the benchmark's folder inside the user's data directory.
    """

    format: str
    files: Mapping[str, str]
    description: str


@dataclass(frozen=True)
class DialogueLengths:
    """Turns per dialogue in a benchmark's real train split (default variant), computed once from its files.

    Why stored and not read at run time: generation must not need the licensed files, and a preset saying
    ``turns: benchmark`` must mean the same range on every machine. A ``needs_shared_data`` test recomputes them.
    """

    dialogues: int
    mean: float
    median: float
    q1: float
    q3: float
    min: int
    max: int

    @property
    def typical_range(self) -> tuple[int, int]:
        """The interquartile range, rounded: the turn counts of the middle half of the real dialogues."""
        return round(self.q1), round(self.q3)


def dialogue_lengths(turn_counts: Sequence[int]) -> DialogueLengths:
    """The statistics of a list of dialogue lengths (quartiles interpolated linearly, as numpy's default)."""
    q1, _, q3 = statistics.quantiles(turn_counts, n=4, method="inclusive")
    return DialogueLengths(dialogues=len(turn_counts), mean=round(statistics.fmean(turn_counts), 2),
                           median=float(statistics.median(turn_counts)), q1=round(q1, 2), q3=round(q3, 2),
                           min=min(turn_counts), max=max(turn_counts))


@dataclass(frozen=True)
class Benchmark:
    """A benchmark: labels in canonical order, their original spellings, and the generation setting."""

    name: str
    display_name: str
    labels: tuple[str, ...]
    #: Spellings found in the original files (and the canonical names themselves) -> canonical label.
    spellings: Mapping[str, str]
    #: Speakers the generator may use, spelled as in the benchmark's own files.
    speakers: tuple[str, ...]
    #: The scene the prompt describes.
    setting: str
    #: Folder name under the data directory.
    data_subdir: str
    variants: Mapping[str, Variant]
    default_variant: str
    #: Hub-style id of the real benchmark, for dataset cards' ``source_datasets``.
    source_dataset: str
    citation: str
    license_note: str
    #: Number of turns the generator asks for (min, max) by default: the project's choice, short for cost.
    turns: tuple[int, int] = (6, 12)
    #: The real train split's dialogue lengths; ``real_lengths.typical_range`` is what ``turns: benchmark`` asks.
    real_lengths: DialogueLengths | None = None
    extra: Mapping[str, object] = field(default_factory=dict)

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    def label_index(self, spelling: str) -> int:
        """Index of a label spelling in ``labels``; raises on anything unknown instead of guessing."""
        canonical = self.spellings.get(spelling)
        if canonical is None:
            known = ", ".join(sorted(self.spellings))
            raise UnknownLabelError(
                f"unknown {self.name} label spelling {spelling!r}; known spellings: {known}"
            )
        return self.labels.index(canonical)

    def variant(self, name: str | None = None) -> Variant:
        """The named variant, or the default one."""
        key = name or self.default_variant
        if key not in self.variants:
            raise ErcSynthError(
                f"{self.name} has no variant {key!r}; choose one of: {', '.join(self.variants)}"
            )
        return self.variants[key]


def _spellings(labels: tuple[str, ...], *aliases: Mapping[str, str]) -> Mapping[str, str]:
    table = {label: label for label in labels}
    for alias in aliases:
        for spelling, canonical in alias.items():
            if canonical not in labels:  # a typo in the registry itself is a bug, not user input
                raise ValueError(f"alias {spelling!r} points at unknown label {canonical!r}")
            table[spelling] = canonical
    return MappingProxyType(table)


_MELD_LABELS = ("neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear")
_EMORY_LABELS = ("neutral", "joyful", "peaceful", "powerful", "scared", "mad", "sad")
_IEMOCAP_LABELS = ("neutral", "happy", "sad", "angry", "excited", "frustrated")

MELD = Benchmark(
    name="meld",
    display_name="MELD",
    labels=_MELD_LABELS,
    spellings=_spellings(_MELD_LABELS),
    speakers=(
        "Rachel", "Ross", "Monica", "Chandler", "Joey", "Phoebe",
        "Janice", "Carol", "Emily", "Richard", "Mike", "Gunther",
    ),
    setting="a scene from the TV sitcom Friends, among its characters",
    data_subdir="meld",
    variants=MappingProxyType({
        "official": Variant(
            format="meld_csv",
            files=MappingProxyType({
                "train": "train_sent_emo.csv", "validation": "dev_sent_emo.csv", "test": "test_sent_emo.csv",
            }),
            description="official MELD text split (Poria et al., ACL 2019), UTF-8-corrected csv files",
        ),
    }),
    default_variant="official",
    source_dataset="declare-lab/MELD",
    citation=(
        "@inproceedings{poria-etal-2019-meld,\n  title = {{MELD}: A Multimodal Multi-Party Dataset for Emotion "
        "Recognition in Conversations},\n  author = {Poria, Soujanya and Hazarika, Devamanyu and Majumder, "
        "Navonil and Naik, Gautam and Cambria, Erik and Mihalcea, Rada},\n  booktitle = {ACL},\n  year = {2019}\n}"
    ),
    license_note="MELD text is made of Friends transcripts; the repository is GPL-3.0 for annotations and code.",
    real_lengths=DialogueLengths(dialogues=1038, mean=9.62, median=9.0, q1=5.0, q3=14.0, min=1, max=24),
)

EMORYNLP = Benchmark(
    name="emorynlp",
    display_name="EmoryNLP",
    labels=_EMORY_LABELS,
    spellings=_spellings(_EMORY_LABELS, {label.capitalize(): label for label in _EMORY_LABELS}),
    speakers=(
        "Rachel Green", "Ross Geller", "Monica Geller", "Chandler Bing", "Joey Tribbiani", "Phoebe Buffay",
        "Carol Willick", "Richard Burke", "Janice Litman Goralnik", "Emily Waltham", "Gunther",
    ),
    setting="a scene from the TV sitcom Friends, among its characters",
    data_subdir="emorynlp",
    variants=MappingProxyType({
        "compm": Variant(
            format="tsv_dialogues",
            files=MappingProxyType({
                "train": "EMORY_train.txt", "validation": "EMORY_dev.txt", "test": "EMORY_test.txt",
            }),
            description="full official split (713/99/85 scenes) as distributed by CoMPM, first speaker only",
        ),
        "dialogxl": Variant(
            format="dialogxl_json",
            files=MappingProxyType({
                "train": "train_data.json", "validation": "dev_data.json", "test": "test_data.json",
            }),
            description="full official split as distributed by DialogXL, multi-speaker names joined by spaces",
        ),
        "original": Variant(
            format="emorynlp_json",
            files=MappingProxyType({
                "validation": "emotion-detection-dev.json", "test": "emotion-detection-tst.json",
            }),
            description="original release format (episodes/scenes); its train file is not distributed here",
        ),
    }),
    default_variant="compm",
    source_dataset="emorynlp/emotion-detection",
    citation=(
        "@inproceedings{zahiri2018emotion,\n  title = {Emotion Detection on TV Show Transcripts with "
        "Sequence-based Convolutional Neural Networks},\n  author = {Zahiri, Sayyed M. and Choi, Jinho D.},\n"
        "  booktitle = {AAAI Workshop on Affective Content Analysis},\n  year = {2018}\n}"
    ),
    license_note="EmoryNLP text is made of Friends transcripts; the original repository is Apache-2.0.",
    real_lengths=DialogueLengths(dialogues=713, mean=13.93, median=14.0, q1=9.0, q3=18.0, min=5, max=25),
)

IEMOCAP = Benchmark(
    name="iemocap",
    display_name="IEMOCAP (6-way)",
    labels=_IEMOCAP_LABELS,
    spellings=_spellings(
        _IEMOCAP_LABELS,
        {"neu": "neutral", "hap": "happy", "sad": "sad", "ang": "angry", "exc": "excited", "fru": "frustrated"},
    ),
    speakers=("M", "F"),
    setting="a conversation between a male speaker (M) and a female speaker (F)",
    data_subdir="iemocap",
    variants=MappingProxyType({
        "compm": Variant(
            format="tsv_dialogues",
            files=MappingProxyType({
                "train": "iemocap_train.txt", "validation": "iemocap_dev.txt", "test": "iemocap_test.txt",
            }),
            description="COSMIC/CoMPM 6-way split (108/12/31 dialogues); ids recovered from sorted order",
        ),
        "dialogxl": Variant(
            format="dialogxl_json",
            files=MappingProxyType({
                "train": "train_data.json", "validation": "dev_data.json", "test": "test_data.json",
            }),
            description="DialogXL split (100/20/31) keeping unlabelled utterances as context (label -1)",
        ),
    }),
    default_variant="compm",
    source_dataset="IEMOCAP",
    citation=(
        "@article{busso2008iemocap,\n  title = {{IEMOCAP}: Interactive emotional dyadic motion capture "
        "database},\n  author = {Busso, Carlos and Bulut, Murtaza and Lee, Chi-Chun and Kazemzadeh, Abe and "
        "Mower, Emily and Kim, Samuel and Chang, Jeannette N. and Lee, Sungbok and Narayanan, Shrikanth S.},\n"
        "  journal = {Language Resources and Evaluation},\n  volume = {42},\n  pages = {335--359},\n"
        "  year = {2008}\n}"
    ),
    license_note="IEMOCAP is released by USC SAIL under its own data release form; do not redistribute its text.",
    real_lengths=DialogueLengths(dialogues=108, mean=47.81, median=47.0, q1=37.0, q3=57.25, min=8, max=94),
)

BENCHMARKS: Mapping[str, Benchmark] = MappingProxyType({b.name: b for b in (MELD, EMORYNLP, IEMOCAP)})

#: Generation modes: ``natural`` lets the LLM write freely, ``balanced`` asks for a target emotion per dialogue.
MODES: tuple[str, ...] = ("natural", "balanced")


def get_benchmark(name: str) -> Benchmark:
    """Look a benchmark up by name, with an error that lists the known ones."""
    try:
        return BENCHMARKS[name.lower()]
    except KeyError:
        raise ErcSynthError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}") from None
