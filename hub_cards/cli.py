"""Subcommands ``push`` and ``push-all`` (registered into ``erc-synth``).

Heavy imports (datasets, huggingface_hub, matplotlib) happen inside the handlers so ``erc-synth --help``
stays fast.
"""

from __future__ import annotations

import argparse

from erc_synth.dataset_scripts.core.errors import in_flag_words

#: ``push_folder`` / ``push_all`` arguments and the flags that set them.
_FLAGS = {"repo_id": "--repo", "org": "--org", "holds_iemocap_rights": "--i-hold-iemocap-rights",
          "allow_name_mismatch": "--allow-name-mismatch"}


_in_flag_words = in_flag_words(_FLAGS)


def _print_skipped(skipped: tuple[str, ...]) -> None:
    if skipped:
        print(f"skipped (not written by the build, not uploaded): {', '.join(skipped)}")


@_in_flag_words
def _push(args: argparse.Namespace) -> int:
    from .publish import push_folder

    result = push_folder(args.folder, args.repo, private=args.private, revision=args.revision,
                         holds_iemocap_rights=args.i_hold_iemocap_rights,
                         allow_name_mismatch=args.allow_name_mismatch)
    _print_skipped(result.skipped)
    print(f"{result.repo_id}: {'new commit ' + result.commit_oid if result.committed else 'unchanged, no commit'}"
          f" ({result.url})")
    return 0


@_in_flag_words
def _push_all(args: argparse.Namespace) -> int:
    from .publish import push_all

    for result in push_all(args.root, args.org, private=args.private, revision=args.revision,
                          holds_iemocap_rights=args.i_hold_iemocap_rights,
                          allow_name_mismatch=args.allow_name_mismatch):
        _print_skipped(result.skipped)
        print(f"{result.repo_id}: {'new commit ' + result.commit_oid if result.committed else 'unchanged, no commit'}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    push = subparsers.add_parser("push", help="publish a built folder to the Hub in one commit",
                                 description="Token from HF_TOKEN or the `hf auth login` token; endpoint from "
                                             "HF_ENDPOINT.")
    push.add_argument("folder", metavar="DIR")
    push.add_argument("--repo", required=True, metavar="ORG/NAME")
    push.add_argument("--private", action="store_true")
    push.add_argument("--revision", help="branch to commit to (created when missing)")
    push.add_argument("--i-hold-iemocap-rights", action="store_true",
                      help="publish a set written by a generator tuned on IEMOCAP (its licence forbids "
                           "redistribution; state that yours allows derived data)")
    push.add_argument("--allow-name-mismatch", action="store_true",
                      help="publish under --repo even when its name is that of another {benchmark}-synth-{mode} "
                           "set than the one build_report.json records (a name no set has needs no flag)")
    push.set_defaults(func=_push)

    push_all = subparsers.add_parser("push-all", help="publish every built folder ROOT/{benchmark}-synth-{mode}",
                                     description="Push each built folder of ROOT named {benchmark}-synth-{mode} "
                                                 "to ORG/{benchmark}-synth-{mode}. Every folder is checked first: "
                                                 "its build_report.json must record the benchmark and mode its "
                                                 "name says.")
    push_all.add_argument("root", metavar="ROOT")
    push_all.add_argument("--org", required=True)
    push_all.add_argument("--private", action="store_true")
    push_all.add_argument("--revision")
    push_all.add_argument("--i-hold-iemocap-rights", action="store_true",
                          help="publish a set written by a generator tuned on IEMOCAP (its licence forbids "
                               "redistribution; state that yours allows derived data)")
    push_all.add_argument("--allow-name-mismatch", action="store_true",
                          help="publish each folder under its folder name even when build_report.json records "
                               "another benchmark or mode (by default such a folder stops the push before any "
                               "upload)")
    push_all.set_defaults(func=_push_all)
