"""How to cite the reference study (Kaplan et al. 2025), which every card and model card names.

Why in the core: dataset cards (``hub_cards``) and model cards (``classifiers``) both cite it, and neither may
import the other.
"""

from __future__ import annotations

CITATION = (
    "Kaplan, De Castro Carneiro, Wermter (2025). Can Large Language Models Generate Effective Datasets for "
    "Emotion Recognition in Conversations? arXiv:2508.05474"
)

BIBTEX = """\
@article{kaplan2025llmerc,
  title   = {Can Large Language Models Generate Effective Datasets for Emotion Recognition in Conversations?},
  author  = {Kaplan and {De Castro Carneiro} and Wermter},
  journal = {arXiv preprint arXiv:2508.05474},
  year    = {2025}
}"""
