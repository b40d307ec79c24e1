"""Human review of a set's labels through a Label Studio server: export a seeded sample, import the annotations.

Why Label Studio: it is the widely used open annotation tool, runs from pip with SQLite, and has a REST API, so
the round trip is tested against a real server. erc-synth never imports it (it lives in its own venv, made by
``scripts/install-labelstudio.sh``); :mod:`.client` talks to its REST API over HTTP.

The modules, each with one job: :mod:`.label_config` (the labelling view), :mod:`.tasks` (utterances in their
dialogue, the seeded sample), :mod:`.client` (the REST calls), :mod:`.sources` (what is reviewed: a built set or
a real benchmark split), :mod:`.agreement` (kappa, Krippendorff's alpha, bootstrap intervals),
:mod:`.importing` (annotations to ``human_labels.parquet`` and ``review.json``) and :mod:`.cli`
(``erc-synth review export|import``). The card's "Human review" section is rendered by
``hub_cards.review_section``, beside the rest of the card.
Why here, in the top layer: a review reads built sets through ``classifiers.data`` and re-renders cards of
``hub_cards``, which may not import each other.
"""
