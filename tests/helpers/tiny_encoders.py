"""Tiny encoders built in-process for classifier tests: a word-level tokenizer and a 2-layer random model.

Why word-level: every word is one token, so tests can check input construction token by token by decoding.
Two flavours mirror the two special-token layouts the classifiers must handle: RoBERTa (``<s> A </s></s> B
</s>``) and BERT (``[CLS] A [SEP] B [SEP]``). Both are saved to a folder, which is what ``--encoder`` accepts.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

ROBERTA_SPECIALS = {"bos": "<s>", "eos": "</s>", "pad": "<pad>", "unk": "<unk>", "mask": "<mask>"}
BERT_SPECIALS = {"cls": "[CLS]", "sep": "[SEP]", "pad": "[PAD]", "unk": "[UNK]", "mask": "[MASK]"}


def build_tokenizer(words: Iterable[str], style: str = "roberta"):
    """A word-level fast tokenizer (whitespace and punctuation split, lower-casing) with the style's template."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ROBERTA_SPECIALS if style == "roberta" else BERT_SPECIALS
    vocab: dict[str, int] = {}
    for token in specials.values():
        vocab.setdefault(token, len(vocab))
    for word in sorted({w.lower() for w in words}):
        vocab.setdefault(word, len(vocab))
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token=specials["unk"]))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace()])
    if style == "roberta":  # <s> A </s></s> B </s>; RoBERTa names its start/end tokens bos/eos as well
        start, sep = specials["bos"], specials["eos"]
        pair = f"{start} $A {sep} {sep} $B {sep}"
        names = {"bos_token": start, "eos_token": sep}
    else:  # [CLS] A [SEP] B [SEP], with token type 1 for the second segment
        start, sep = specials["cls"], specials["sep"]
        pair = f"{start} $A {sep} $B:1 {sep}:1"
        names = {}
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{start} $A {sep}", pair=pair, special_tokens=[(start, vocab[start]), (sep, vocab[sep])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, **names, cls_token=start, sep_token=sep, pad_token=specials["pad"],
        unk_token=specials["unk"], mask_token=specials["mask"],
    )


def build_encoder(folder: str | Path, words: Iterable[str], style: str = "roberta", hidden: int = 32,
                  layers: int = 2, seed: int = 0) -> Path:
    """Save a tiny random encoder (config, weights, tokenizer) to ``folder`` and return it."""
    import torch
    from transformers import AutoModel, BertConfig, RobertaConfig

    folder = Path(folder)
    tokenizer = build_tokenizer(words, style)
    common = dict(
        vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
        intermediate_size=hidden * 2, max_position_embeddings=256, pad_token_id=tokenizer.pad_token_id,
    )
    if style == "roberta":
        config = RobertaConfig(**common, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    else:
        config = BertConfig(**common)
    torch.manual_seed(seed)
    model = AutoModel.from_config(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


#: Words used by the toy dialogues of the classifier tests.
_TOY_TEXT = (
    "a b c d e f g h i j k l m n o p q r s t u v w x y z : . , ! ? "
    "ann bob cat dan great happy love wonderful awful hate terrible angry sad cry okay fine table chair "
    "today yesterday the is was it so very not i you we they"
)
TOY_WORDS: tuple[str, ...] = tuple(_TOY_TEXT.split())


#: Toy emotion words: the label of a toy utterance is given by its emotion word (MELD label indices).
TOY_EMOTION_WORDS = {1: ("happy", "love", "great"), 3: ("hate", "angry", "awful"), 4: ("sad", "cry", "terrible"),
                     0: ("okay", "table", "chair")}


def toy_dialogues(benchmark, count: int, seed: int, unlabelled_every: int = 0, one_emotion: bool = False):
    """A learnable toy split in the dialogues schema: each utterance's emotion word gives its label.

    ``unlabelled_every=k`` marks every k-th utterance as unlabelled (-1), as IEMOCAP's DialogXL files do.
    ``one_emotion=True`` gives every utterance of a dialogue the same emotion, so any emotion word in the input
    tells the label: a tiny random encoder learns that in a few dozen steps (the per-utterance version also
    needs it to locate the current utterance, which takes far longer).
    """
    import random

    from erc_synth.dataset_scripts.schema import dialogues_dataset

    rng = random.Random(seed)
    rows = []
    position = 0
    for index in range(count):
        speakers, utterances, emotions = [], [], []
        dialogue_label = rng.choice(sorted(TOY_EMOTION_WORDS))
        for _ in range(rng.randint(2, 5)):
            label = dialogue_label if one_emotion else rng.choice(sorted(TOY_EMOTION_WORDS))
            speakers.append(rng.choice(["ann", "bob", "cat"]))
            utterances.append(f"{rng.choice(['i', 'you', 'we'])} {rng.choice(TOY_EMOTION_WORDS[label])} it")
            position += 1
            emotions.append(-1 if unlabelled_every and position % unlabelled_every == 0 else label)
        rows.append({"dialogue_id": f"s{seed}-d{index}", "speakers": speakers, "utterances": utterances,
                     "emotions": emotions})
    return dialogues_dataset(benchmark, rows)


def write_built_folder(dialogues, folder) -> Path:
    """Write a DatasetDict the way the dataset builder lays out a built folder (data/dialogues/<split>-*.parquet)."""
    folder = Path(folder)
    target = folder / "data" / "dialogues"
    target.mkdir(parents=True, exist_ok=True)
    for split, dataset in dialogues.items():
        dataset.to_parquet(str(target / f"{split}-00000-of-00001.parquet"))
    return folder
