"""``erc-synth review export|import`` against a real Label Studio server (from ``.venv-labelstudio``).

One server per module, on loopback with a fresh SQLite data folder, its admin user and token made at start.
Annotations are submitted through the same REST endpoint the labelling view posts to, by two users; the expected
figures are computed here from what was submitted, with scikit-learn and krippendorff directly. Without
``.venv-labelstudio`` every test skips with the reason (make it with ``bash scripts/install-labelstudio.sh``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers.builder_support import make_run_dir
from helpers.servers.labelstudio_server import LabelStudioServer, labelstudio_missing_reason
from helpers.servers.process import free_port

from erc_synth.cli import main
from erc_synth.dataset_scripts.core.registry import get_benchmark

MISSING = labelstudio_missing_reason()
pytestmark = [pytest.mark.labelstudio, pytest.mark.slow, pytest.mark.skipif(MISSING is not None, reason=MISSING or "")]

MELD = get_benchmark("meld")
EMORYNLP = get_benchmark("emorynlp")
TASK_DATA_FIELDS = {"dialogue", "key", "dialogue_id", "turn", "speaker", "utterance"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    started = LabelStudioServer(tmp_path_factory.mktemp("label-studio") / "data").start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def client(server):
    from erc_synth.review.client import LabelStudioClient

    with LabelStudioClient(server.url, server.token) as session:
        yield session


@pytest.fixture(scope="module")
def audited_set(tmp_path_factory) -> tuple[Path, dict[str, tuple[int, int]], list[str]]:
    """A built MELD set with audit judgements written by the audit's own writer: the judge agrees with the LLM on
    even turns and not on odd ones; three odd-turn utterances are the suspects. Returns the folder, each key's
    (synthetic, judge) label ids and the suspect keys in order."""
    from erc_synth.classifiers.audit.auditing import AuditResult
    from erc_synth.classifiers.audit.report import JUDGEMENTS_PARQUET, write_judgements
    from erc_synth.classifiers.data import load_dialogues
    from erc_synth.hub_cards.folder import build_folder
    from erc_synth.review.tasks import task_key

    root = tmp_path_factory.mktemp("review-set")
    run = make_run_dir(root / "run", "meld", "natural", n=12, plant_duplicates=False)
    folder = Path(build_folder(run, root / "set").folder)
    dialogues = load_dialogues(str(folder))
    llm, judge, ids, labels = {}, {}, {}, {}
    suspects: list[tuple[str, str, int]] = []
    for split, dataset in dialogues.items():
        ids[split] = list(dataset["dialogue_id"])
        llm[split] = [list(e) for e in dataset["emotions"]]
        judge[split] = [[e if t % 2 == 0 else (e + 1) % MELD.num_labels for t, e in enumerate(emotions)]
                        for emotions in llm[split]]
        for dialogue_id, emotions, judged in zip(ids[split], llm[split], judge[split], strict=True):
            for turn, (e, j) in enumerate(zip(emotions, judged, strict=True)):
                labels[task_key(dialogue_id, turn)] = (e, j)
                if turn % 2 and len(suspects) < 3 and split == "train":
                    suspects.append((split, dialogue_id, turn))
    result = AuditResult(summary={}, label_names=MELD.labels, dialogue_ids=ids, llm_labels=llm, judge_labels=judge,
                         judge_probabilities={}, confusion=np.zeros((7, 7), dtype=int), suspect_keys=suspects)
    (folder / "audit").mkdir()
    write_judgements(result, folder / "audit" / JUDGEMENTS_PARQUET)
    return folder, labels, [task_key(d, t) for _, d, t in suspects]


def _review(*argv: str) -> int:
    return main(["review", *argv])


def _export(folder, server, project, *extra: str) -> int:
    return _review("export", str(folder), "--benchmark", "meld", "--url", server.url, "--project", project,
                   "--token", server.token, *extra)


def _keys(tasks) -> list[str]:
    return [t["meta"]["erc_synth"]["key"] for t in sorted(tasks, key=lambda t: t["meta"]["erc_synth"]["order"])]


def test_export_creates_the_project_and_suspects_first_then_reexport_adds_no_duplicates(server, client,
                                                                                        audited_set) -> None:
    from erc_synth.review.label_config import config_labels

    folder, labels, suspects = audited_set
    assert _export(folder, server, "meld suspects", "--sample", "10", "--seed", "3", "--suspects-first") == 0
    project = client.find_project("meld suspects")
    assert config_labels(project["label_config"]) == list(MELD.labels)
    tasks = client.tasks(project["id"])
    assert len(tasks) == 10
    keys = _keys(tasks)
    assert keys[:3] == suspects and len(set(keys)) == 10
    drawn = [t["meta"]["erc_synth"]["drawn_as"] for t in sorted(tasks, key=lambda t: t["meta"]["erc_synth"]["order"])]
    assert drawn == ["suspect"] * 3 + ["random"] * 7
    for task in tasks:  # the view shows the dialogue and the utterance, never the label under review
        assert set(task["data"]) == TASK_DATA_FIELDS
        assert "<mark>" in task["data"]["dialogue"] and task["data"]["key"] in labels
    assert _export(folder, server, "meld suspects", "--sample", "10", "--seed", "3", "--suspects-first") == 0
    assert len(client.tasks(project["id"])) == 10
    assert _export(folder, server, "meld suspects", "--sample", "12", "--seed", "3", "--suspects-first") == 0
    grown = _keys(client.tasks(project["id"]))
    assert len(grown) == len(set(grown)) == 12 and grown[:10] == keys  # the same seed draws the same prefix


def _annotated_project(server, client, folder, monkeypatch) -> tuple[dict, list[dict], dict]:
    """Export 8 tasks (token from the variable) and annotate them as two people: the admin labels all 8 (the set's
    label on the first 5, another on the last 3); a second user labels the first 4 (agreeing with the admin on 3)
    and skips the last task."""
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", server.token)
    assert _review("export", str(folder), "--benchmark", "meld", "--url", server.url, "--project", "meld annotated",
                   "--sample", "8", "--seed", "5") == 0
    project = client.find_project("meld annotated")
    tasks = sorted(client.tasks(project["id"]), key=lambda t: t["meta"]["erc_synth"]["order"])
    second = client._call("POST", "/api/users/", json={"email": "second@example.com", "username": "second",
                                                       "password": "second-pass-1234"})
    return project, tasks, second


def test_annotations_import_to_the_expected_kappa_alpha_and_card_section(server, client, audited_set, tmp_path,
                                                                         monkeypatch) -> None:
    import krippendorff
    import pyarrow.parquet as pq
    from sklearn.metrics import cohen_kappa_score

    folder, labels, _ = audited_set
    project, tasks, second = _annotated_project(server, client, folder, monkeypatch)
    names = list(MELD.labels)
    admin_labels, second_labels = [], {}
    for i, task in enumerate(tasks):
        synthetic = labels[task["data"]["key"]][0]
        label = synthetic if i < 5 else (synthetic + 2) % 7
        client.annotate(task["id"], [names[label]], project_id=project["id"])
        admin_labels.append(label)
        if i < 4:
            theirs = label if i < 3 else (label + 3) % 7
            client.annotate(task["id"], [names[theirs]], completed_by=second["id"], project_id=project["id"])
            second_labels[i] = theirs
    client._call("POST", f"/api/tasks/{tasks[-1]['id']}/annotations", json={"result": [], "was_cancelled": True,
                                                                           "completed_by": second["id"]})

    out = tmp_path / "review"
    assert _review("import", str(folder), "--benchmark", "meld", "--url", server.url, "--project", "meld annotated",
                   "--out", str(out), "--salt", "pepper") == 0
    review = json.loads((out / "review.json").read_text())
    pairs = [(admin_labels[i], labels[t["data"]["key"]][0]) for i, t in enumerate(tasks)]
    pairs += [(second_labels[i], labels[tasks[i]["data"]["key"]][0]) for i in second_labels]
    expected = cohen_kappa_score([h for h, _ in pairs], [s for _, s in pairs], labels=list(range(7)))
    figure = review["agreement"]["human_vs_synthetic"]
    assert figure["value"] == round(expected, 4) and figure["n"] == 8 and figure["annotations"] == 12
    assert figure["ci"][0] <= figure["value"] <= figure["ci"][1]
    judged = [(admin_labels[i], labels[t["data"]["key"]][1]) for i, t in enumerate(tasks)]
    judged += [(second_labels[i], labels[tasks[i]["data"]["key"]][1]) for i in second_labels]
    expected_judge = cohen_kappa_score([h for h, _ in judged], [j for _, j in judged], labels=list(range(7)))
    assert review["agreement"]["human_vs_judge"]["value"] == round(expected_judge, 4)
    matrix = np.array([[admin_labels[i] for i in range(4)], [second_labels[i] for i in range(4)]], dtype=float)
    alpha = review["agreement"]["inter_annotator"]
    assert alpha["value"] == round(krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal"), 4)
    assert alpha["n"] == 4 and alpha["annotators"] == 2
    assert review["left_out"] == {"skipped by the annotator": 1}
    assert review["sampling"]["random"] == 8 and review["sampling"]["seeds"] == [5]

    table = pq.read_table(out / "human_labels.parquet").to_pylist()
    assert len(table) == 12 and len({r["annotator"] for r in table}) == 2
    assert not {r["annotator"] for r in table} & {"1", str(second["id"]), server.username, "second@example.com"}
    by_key = {(r["dialogue_id"], r["turn"], r["annotator"]): r["human_label"] for r in table}
    assert sorted(by_key.values()) == sorted([names[x] for x in admin_labels] + [names[x] for x in
                                                                                 second_labels.values()])
    assert _review("import", str(folder), "--benchmark", "meld", "--url", server.url, "--project", "meld annotated",
                   "--out", str(tmp_path / "again"), "--salt", "pepper") == 0
    assert (tmp_path / "again" / "human_labels.parquet").read_bytes() == (out / "human_labels.parquet").read_bytes()

    card = (folder / "README.md").read_text()
    assert "## Human review" in card and "drawn uniformly at random without replacement (seed 5)" in card
    assert f"{figure['value']:.3f} [{figure['ci'][0]:.3f}, {figure['ci'][1]:.3f}] (n=8)" in card
    assert "people checked only a sample of 8" in card and "were not checked by people" not in card


def test_the_labelling_view_shows_the_dialogue_the_highlighted_utterance_and_every_label(server, client,
                                                                                         audited_set,
                                                                                         tmp_path) -> None:
    from helpers.browser import browser_missing_reason, label_studio_task_page

    reason = browser_missing_reason()
    if reason:
        pytest.skip(reason)
    folder, _, _ = audited_set
    assert _export(folder, server, "meld screenshot", "--sample", "2", "--seed", "1") == 0
    project = client.find_project("meld screenshot")
    task = client.tasks(project["id"])[0]
    marked, text = label_studio_task_page(server.url, server.username, server.password, project["id"], task["id"],
                                          task["data"]["utterance"], tmp_path / "view.png")
    assert marked.strip() == f"{task['data']['speaker']}: {task['data']['utterance']}"
    assert all(label in text for label in MELD.labels)
    assert (tmp_path / "view.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _one_line_exit_2(capsys, argv: list[str], fragment: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err, err


def test_bad_input_is_one_line_and_exit_2(server, client, audited_set, capsys, monkeypatch) -> None:
    from erc_synth.review.label_config import label_config

    folder, _, _ = audited_set
    base = ["review", "export", str(folder), "--benchmark", "meld", "--project", "meld bad input"]
    _one_line_exit_2(capsys, [*base, "--url", f"http://127.0.0.1:{free_port()}", "--token", server.token],
                     "no Label Studio server answers there")
    _one_line_exit_2(capsys, [*base, "--url", server.url, "--token", "not-the-token"], "refused the token")
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    monkeypatch.setenv("HF_TOKEN", server.token)  # the Hub token is never taken for Label Studio's
    _one_line_exit_2(capsys, [*base, "--url", server.url], "no Label Studio token: set LABEL_STUDIO_API_KEY")
    client.create_project("emorynlp project", label_config(EMORYNLP), "")
    _one_line_exit_2(capsys, ["review", "export", str(folder), "--benchmark", "meld", "--project", "emorynlp project",
                              "--url", server.url, "--token", server.token], "that project's labels are")
    _one_line_exit_2(capsys, ["review", "import", str(folder), "--benchmark", "meld", "--project", "no such project",
                              "--url", server.url, "--token", server.token, "--out", "unused"], "no such project")


@pytest.mark.needs_shared_data
def test_the_real_test_split_round_trip_gives_the_ceiling_beside_the_set(server, client, audited_set, shared_data,
                                                                        tmp_path) -> None:
    from sklearn.metrics import cohen_kappa_score

    from erc_synth.review.sources import real_source

    real = ["review", "--benchmark", "meld", "--url", server.url, "--project", "meld real test", "--token",
            server.token, "--real-data", str(shared_data), "--split", "test"]
    assert main([*real[:1], "export", *real[1:], "--sample", "6", "--seed", "2"]) == 0
    project = client.find_project("meld real test")
    tasks = sorted(client.tasks(project["id"]), key=lambda t: t["meta"]["erc_synth"]["order"])
    gold = {k: item.label for k, item in real_source(str(shared_data), MELD, "test").items.items()}
    humans = []
    for i, task in enumerate(tasks):
        label = gold[task["data"]["key"]] if i < 4 else (gold[task["data"]["key"]] + 1) % 7
        client.annotate(task["id"], [MELD.labels[label]], project_id=project["id"])
        humans.append(label)
    out = tmp_path / "ceiling"
    assert main([*real[:1], "import", *real[1:], "--out", str(out)]) == 0
    review = json.loads((out / "review.json").read_text())
    expected = cohen_kappa_score(humans, [gold[t["data"]["key"]] for t in tasks], labels=list(range(7)))
    assert review["agreement"]["human_vs_gold"]["value"] == round(expected, 4)
    assert review["labels_reviewed"] == "gold" and review["agreement"]["human_vs_judge"] is None
    written = b"".join(p.read_bytes() for p in out.iterdir())
    assert not any(t["data"]["utterance"].encode() in written for t in tasks if len(t["data"]["utterance"]) > 12)

    folder, _, _ = audited_set
    assert _export(folder, server, "meld ceiling", "--sample", "3", "--seed", "9") == 0
    for task in client.tasks(client.find_project("meld ceiling")["id"]):
        client.annotate(task["id"], ["neutral"])
    assert _review("import", str(folder), "--benchmark", "meld", "--url", server.url, "--project", "meld ceiling",
                   "--token", server.token, "--out", str(tmp_path / "set"), "--ceiling", str(out / "review.json")) == 0
    section = (tmp_path / "set" / "human_review.md").read_text()
    assert "real test split (human ceiling)" in section
    assert f"{review['agreement']['human_vs_gold']['value']:.3f}" in section
