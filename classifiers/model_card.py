"""Model cards for trained ERC classifiers, and pushing a trained model folder to the Hub.

Why a card per model folder: a classifier pre-trained on synthetic dialogues is only interpretable with its
data (which real benchmark, which synthetic set), its regime and its scores on each test set; the card records
them in the Hub's ``model-index`` so they show on the model page, and in prose for people.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.dataset_scripts.core.registry import get_benchmark

from .paper_reference import BIBTEX, CITATION
from .provenance import is_hub_id

TRAINING_RECORD = "erc_synth_training.json"

REGIME_TEXT = {
    "org": "trained on the real train split only",
    "nat": "pre-trained on a synthetic set generated in natural mode, then fine-tuned on the real train split",
    "bal": "pre-trained on a synthetic set generated in balanced mode, then fine-tuned on the real train split",
    "syn": "trained on a synthetic set only (natural mode); it never saw the real train split",
}


def render_model_card(record: dict[str, Any]) -> str:
    """The README.md of a trained model folder, from its ``erc_synth_training.json`` record."""
    from huggingface_hub import ModelCard, ModelCardData
    from huggingface_hub.repocard_data import EvalResult

    benchmark = get_benchmark(record["benchmark"])
    training = record.get("training", {})
    data = record.get("data", {})
    datasets = [benchmark.source_dataset]
    if is_hub_id(data.get("pretrain")):
        datasets.append(str(data["pretrain"]))  # local folders are not Hub datasets
    eval_results = [
        EvalResult(task_type="text-classification", task_name="Emotion recognition in conversation",
                   dataset_type=benchmark.source_dataset if test_set == "real"
                   else str((data.get("test_sets") or {}).get(test_set, test_set)),
                   dataset_name=f"{benchmark.display_name} ({test_set} test)", dataset_split="test",
                   metric_type="f1", metric_name="weighted F1", metric_value=round(scores["weighted_f1"] * 100, 2))
        for test_set, scores in record["scores"].items()
    ]
    card_data = ModelCardData(
        library_name="transformers", pipeline_tag="text-classification", datasets=datasets,
        base_model=training.get("encoder") if is_hub_id(training.get("encoder")) else None,
        tags=["emotion-recognition-in-conversation", "erc-synth", "arxiv:2508.05474", record["architecture"],
              benchmark.name,
              f"regime-{record['regime']}"],
        model_name=f"erc-synth {record['architecture']} {benchmark.name} {record['regime']}",
        eval_results=eval_results,
    )
    rows = "\n".join(
        f"| {test_set} | {s['weighted_f1'] * 100:.2f} | {s['macro_f1'] * 100:.2f} | {s['accuracy'] * 100:.2f} |"
        for test_set, s in record["scores"].items()
    )
    settings = training.get("settings") or {}
    body = f"""
# erc-synth {record['architecture']} classifier for {benchmark.display_name} (regime `{record['regime']}`)

Emotion recognition in conversation: predicts one of {', '.join(benchmark.labels)} for an utterance in its
dialogue context. Trained with erc-synth on `transformers.Trainer`.

## Data and regime

- Regime `{record['regime']}`: {REGIME_TEXT[record['regime']]}.
- Real data: {benchmark.display_name} ({data.get('variant') or 'default variant'}), source `{data.get('real')}`.
- Synthetic pre-training set: {f"`{data['pretrain']}`" if data.get('pretrain') else 'none'}.
- Encoder: `{training.get('encoder')}`; architecture options: `{json.dumps(training.get('options', {}),
                                                                          sort_keys=True)}`.
- Fine-tuning: {settings.get('epochs')} epochs, learning rate {settings.get('learning_rate')}, batch size \
{settings.get('batch_size')}, seed {record.get('seed')}; best checkpoint by validation weighted F1.

## Scores (x100)

| test set | weighted F1 | macro F1 | accuracy |
|---|---:|---:|---:|
{rows}

## Licence of the data

{benchmark.license_note}

## Citation of the benchmark

```bibtex
{benchmark.citation}
```

## Citation of the reference study

The synthetic-then-real regimes reproduce the method of {CITATION}.

```bibtex
{BIBTEX}
```
"""
    # Not a Jinja template: BibTeX braces and JSON options would be read as template syntax.
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n{body}").content


def write_model_card(model_dir: str | Path) -> Path:
    """Render the card of a trained model folder into its README.md."""
    model_dir = Path(model_dir)
    record_path = model_dir / TRAINING_RECORD
    if not record_path.is_file():
        raise ErcSynthError(f"{model_dir}: no {TRAINING_RECORD}; is this a folder written by erc-synth train?")
    card = render_model_card(json.loads(record_path.read_text()))
    (model_dir / "README.md").write_text(card)
    return model_dir / "README.md"


def check_push_target(repo_id: str, flag: str = "--push-to-hub", token: str | None = None) -> None:
    """Refuse, before any training, a Hub repo id that is not valid or a token the Hub does not accept.

    Why up front: a training run can take hours, and a push that fails only at its end loses nothing but
    still makes the user train again to publish. The id is checked with huggingface_hub's own validator;
    the token with ``whoami`` against the endpoint the push will use (``HF_ENDPOINT``). The token is never
    printed.
    """
    import httpx2  # huggingface_hub's HTTP client: its transport errors are not OSErrors
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, OfflineModeIsEnabled
    from huggingface_hub.utils import get_token, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise ErcSynthError(f"{flag} {repo_id!r}: not a Hub repo id ({exc})") from None
    token = token or get_token()
    if not token:
        raise ErcSynthError(f"{flag} {repo_id}: no Hub token; set HF_TOKEN or run `hf auth login` (nothing was "
                            "trained)")
    endpoint = constants.ENDPOINT
    try:
        HfApi(token=token).whoami()
    except OfflineModeIsEnabled:
        raise ErcSynthError(f"{flag} {repo_id}: HF_HUB_OFFLINE is set, so nothing can be pushed; unset it or "
                            f"drop {flag} (nothing was trained)") from None
    except HfHubHTTPError as exc:
        status = getattr(exc.response, "status_code", None)
        reason = "refuses the token (HTTP 401)" if status == 401 else f"answered HTTP {status} to whoami"
        raise ErcSynthError(f"{flag} {repo_id}: the Hub at {endpoint} {reason}; check HF_TOKEN (nothing was "
                            "trained)") from None
    except (OSError, httpx2.TransportError) as exc:  # connection refused, DNS, timeout
        raise ErcSynthError(f"{flag} {repo_id}: cannot reach the Hub at {endpoint} ({type(exc).__name__}); check "
                            "the network and HF_ENDPOINT (nothing was trained)") from None


def push_model(model_dir: str | Path, repo_id: str, private: bool = False, token: str | None = None) -> str:
    """Upload a trained model folder (weights, tokenizer, card, training record) to a Hub model repo."""
    from huggingface_hub import HfApi

    model_dir = Path(model_dir)
    if not (model_dir / "README.md").is_file():
        write_model_card(model_dir)
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    commit = api.upload_folder(repo_id=repo_id, folder_path=str(model_dir), repo_type="model",
                               commit_message="Upload erc-synth classifier")
    return str(commit.commit_url if hasattr(commit, "commit_url") else commit)
