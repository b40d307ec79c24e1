"""Human review of a set's labels through a Label Studio server: export a seeded sample, import the annotations.

Why Label Studio: it is the widely used open annotation tool, runs from pip with SQLite, and has a REST API, so
the round trip is tested against a real server. erc-synth never imports it (it lives in its own venv, made by
``scripts/install-labelstudio.sh``); :mod:`.client` talks to its REST API over HTTP.

The modules, each with one job: :mod:`.label_config` (the labelling view), :mod:`.tasks` (utterances in their
dialogue, the seeded sample), :mod:`.client` (the REST calls), :mod:`.sources` (what is reviewed: a built set or
a real benchmark split), :mod:`.agreement` (kappa, Krippendorff's alpha, bootstrap intervals),
:mod:`.importing` (annotations to ``human_labels.parquet`` and ``review.json``), :mod:`.card_section` (the card's
"Human review" section) and :mod:`.cli` (``erc-synth review export|import``).
"""
