"""``erc-synth review export|import``: a seeded sample of a set's utterances to Label Studio, and the labels back.

Heavy libraries (datasets, pyarrow, scikit-learn) are imported inside the handlers so ``erc-synth --help`` stays
fast. The token comes from ``--token`` or ``$LABEL_STUDIO_API_KEY``, never from the Hub token.
"""

from __future__ import annotations

import argparse
import json
import secrets
from pathlib import Path

from erc_synth.dataset_scripts.core.environment import LABEL_STUDIO_TOKEN_ENV
from erc_synth.dataset_scripts.core.errors import ErcSynthError, SettingError

DEFAULT_SAMPLE = 100


def _source_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", metavar="DATASET", nargs="?", default=None,
                        help="a built dataset folder or a Hub id (or give --real-data instead)")
    parser.add_argument("--real-data", default=None, help="review a real benchmark split instead: the folder with "
                                                          "its original files (the human ceiling)")
    parser.add_argument("--split", default=None, help="the split to review (default: every split of DATASET; "
                                                      "test with --real-data)")
    parser.add_argument("--benchmark", required=True, help="meld, emorynlp or iemocap")
    parser.add_argument("--url", required=True, help="the Label Studio server, e.g. http://127.0.0.1:8080")
    parser.add_argument("--project", required=True, metavar="NAME", help="the Label Studio project's title")
    parser.add_argument("--token", default=None, help=f"Label Studio token (default: ${LABEL_STUDIO_TOKEN_ENV})")


def register(subparsers) -> None:
    review = subparsers.add_parser(
        "review", help="human review of a set's labels through a Label Studio server",
        description="Export a seeded sample of utterances to a Label Studio project (each shown in its dialogue, "
                    "without its label), then import the annotations: human_labels.parquet, review.json (kappa "
                    "against the set's labels and the audit judge's, agreement between annotators) and the "
                    "card's Human review section.",
    )
    actions = review.add_subparsers(dest="review_action", metavar="ACTION", required=True)
    export = actions.add_parser("export", help="create or update the project and add the sampled tasks")
    _source_arguments(export)
    export.add_argument("--sample", type=int, default=DEFAULT_SAMPLE, metavar="N",
                        help=f"utterances to sample (default {DEFAULT_SAMPLE})")
    export.add_argument("--seed", type=int, default=0, help="seed of the random draw")
    export.add_argument("--suspects-first", action="store_true",
                        help="put the audit's cleanlab suspects first (needs a set built with --audit)")
    export.set_defaults(func=run_export)
    imp = actions.add_parser("import", help="pull the annotations into human_labels.parquet and review.json")
    _source_arguments(imp)
    imp.add_argument("--out", required=True, help="output folder")
    imp.add_argument("--salt", default=None, help="salt of the annotator pseudonyms (default: a random one, so "
                                                  "pseudonyms do not link across imports)")
    imp.add_argument("--seed", type=int, default=0, help="seed of the bootstrap intervals")
    imp.add_argument("--ceiling", default=None, metavar="REVIEW_JSON",
                     help="review.json of the same round trip over the real test split, shown beside")
    imp.set_defaults(func=run_import)


def _token(args: argparse.Namespace) -> str:
    from erc_synth.dataset_scripts.core.environment import label_studio_token_env

    token = args.token or label_studio_token_env()
    if not token:
        raise ErcSynthError(f"no Label Studio token: set {LABEL_STUDIO_TOKEN_ENV} or pass --token")
    return token


def _check_source(args: argparse.Namespace) -> None:
    """The source arguments' own faults, found before any server is asked."""
    if (args.dataset is None) == (args.real_data is None):
        raise ErcSynthError("give either DATASET or --real-data DIR, not both and not neither")
    if args.real_data is not None and not Path(args.real_data).is_dir():
        raise ErcSynthError(f"--real-data {args.real_data}: no such folder")


def _source(args: argparse.Namespace):
    import datasets

    from erc_synth.dataset_scripts.core.registry import get_benchmark

    from .sources import real_source, synthetic_source

    datasets.disable_progress_bars()  # a handful of tiny files; per-file bars would drown the summary line
    benchmark = get_benchmark(args.benchmark)
    if args.real_data is not None:
        return real_source(args.real_data, benchmark, args.split or "test")
    return synthetic_source(args.dataset, benchmark, args.split)


def _check_seed(seed: int) -> None:
    """The seed in numpy's range before anything is read or any server asked (a negative one reaches numpy)."""
    from erc_synth.classifiers.settings import check_seed

    try:
        check_seed(seed)
    except SettingError as exc:
        raise ErcSynthError(f"--seed {exc.problem}") from exc


def _project(client, args: argparse.Namespace, benchmark, *, create: bool):
    from .client import ReviewError
    from .label_config import config_labels, label_config

    project = client.find_project(args.project)
    if project is None:
        if not create:
            raise ReviewError(f"--project {args.project}: no such project at {client.url}")
        return client.create_project(args.project, label_config(benchmark),
                                     f"erc-synth review: {benchmark.display_name} emotion labels"), True
    labels = config_labels(project.get("label_config", ""))
    if labels != list(benchmark.labels):
        raise ReviewError(f"--project {args.project}: that project's labels are {labels}, not the {benchmark.name} "
                          f"labels {list(benchmark.labels)}; choose another --project or --benchmark")
    return project, False


def _task_key(task: dict) -> str | None:
    from .tasks import META_KEY

    return ((task.get("meta") or {}).get(META_KEY) or {}).get("key") or (task.get("data") or {}).get("key")


def run_export(args: argparse.Namespace) -> int:
    from erc_synth.dataset_scripts.core.registry import get_benchmark

    from .client import LabelStudioClient
    from .label_config import label_config
    from .tasks import build_task, draw_sample

    benchmark = get_benchmark(args.benchmark)
    _check_seed(args.seed)
    if args.sample < 1:
        raise ErcSynthError(f"--sample {args.sample}: must be at least 1")
    _check_source(args)
    if args.suspects_first and args.real_data is not None:
        raise ErcSynthError("--suspects-first needs a set's audit; a real split has none")
    with LabelStudioClient(args.url, _token(args)) as client:
        project, created = _project(client, args, benchmark, create=True)
        source = _source(args)
        if args.suspects_first and not source.audited:
            raise ErcSynthError(f"--suspects-first: {args.dataset} has no audit judgements (audit/judgements."
                                "parquet); build it with --audit JUDGE")
        if not created:
            client.update_project(project["id"], label_config=label_config(benchmark))
        sample = draw_sample(list(source.items.values()), args.sample, args.seed, suspects_first=args.suspects_first)
        existing = client.tasks(project["id"])
        have = {_task_key(t) for t in existing}
        new = [build_task(item, len(existing) + i, drawn, sample.record, source.name)
               for i, (item, drawn) in enumerate((it, d) for it, d in zip(sample.items, sample.drawn_as, strict=True)
                                                 if it.key not in have)]
        added = client.import_tasks(project["id"], new) if new else 0
    print(f"project {args.project} (id {project['id']}{', created' if created else ''}) at {args.url}: {added} new "
          f"task(s), {len(sample.items) - len(new)} already there; sample: {sample.record['method']}, "
          f"{sample.record['suspects']} suspect(s) and {sample.record['random']} random of "
          f"{sample.record['population']} labelled utterances")
    return 0


def _update_card(folder: Path, summary: dict) -> bool:
    """Re-render a built folder's card with the Human review section; False when DATASET is not a built folder."""
    from erc_synth.hub_cards.card import render_card
    from erc_synth.hub_cards.folder import BUILD_REPORT_FILE, read_build_report, stored_card_inputs, write_build_report

    if not (folder / BUILD_REPORT_FILE).is_file():
        return False
    payload = read_build_report(folder)
    inputs = stored_card_inputs(folder, payload)
    inputs.human_review = summary
    (folder / "README.md").write_text(str(render_card(inputs)), encoding="utf-8")
    write_build_report(folder, inputs, payload["files"])
    return True


def _ceiling(path: str | None) -> dict | None:
    if path is None:
        return None
    try:
        ceiling = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ErcSynthError(f"--ceiling {path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ErcSynthError(f"--ceiling {path}: not valid JSON ({exc})") from None
    if not isinstance(ceiling, dict) or "human_vs_gold" not in (ceiling.get("agreement") or {}):
        raise ErcSynthError(f"--ceiling {path}: not the review.json of a real split (no agreement.human_vs_gold)")
    ceiling.pop("ceiling", None)
    return ceiling


def run_import(args: argparse.Namespace) -> int:
    from erc_synth.dataset_scripts.core.registry import get_benchmark
    from erc_synth.hub_cards.review_section import render_section

    from .client import LabelStudioClient
    from .importing import annotation_rows, review_summary, write_review

    benchmark = get_benchmark(args.benchmark)
    _check_seed(args.seed)
    _check_source(args)
    ceiling = _ceiling(args.ceiling)
    if ceiling is not None and ceiling.get("benchmark") != benchmark.name:
        raise ErcSynthError(f"--ceiling {args.ceiling}: a review of {ceiling.get('benchmark')}, not {benchmark.name}")
    with LabelStudioClient(args.url, _token(args)) as client:
        project, _ = _project(client, args, benchmark, create=False)
        source = _source(args)
        exported = client.export(project["id"])
    rows, left_out = annotation_rows(exported, source, args.salt or secrets.token_hex(16), args.project)
    summary = review_summary(rows, source, exported, left_out, args.project, seed=args.seed)
    if ceiling is not None:
        summary["ceiling"] = ceiling
    out = Path(args.out)
    paths = write_review(rows, summary, out)
    (out / "human_review.md").write_text(render_section(summary, ceiling), encoding="utf-8")
    card = args.dataset is not None and _update_card(Path(args.dataset), summary)
    figure = next(v for k, v in summary["agreement"].items() if k in ("human_vs_synthetic", "human_vs_gold"))
    print(f"{summary['annotations']} annotation(s) by {summary['annotators']} annotator(s) on "
          f"{summary['tasks_labelled']} of {summary['tasks']} task(s); kappa(human, {source.label_kind}) "
          f"{figure['value']} (n={figure['n']}, 95% CI {figure['ci']})")
    for name, path in paths.items():
        print(f"{name}: {path}")
    if card:
        print(f"card: {Path(args.dataset) / 'README.md'} (Human review section)")
    return 0
