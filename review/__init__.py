"""The validation pack: a reviewer accepts or challenges a model from one document.

`review` back-tests a model on rows it was never trained on: the nightly job's score files (or the job run on
the review window's month ends) joined with the outcomes the data show afterwards, by the targets' one
definition. `evidence` gathers those rows, each section module turns them into tables, figures, tests against
declared thresholds and findings, `pack` assembles the page (HTML, plots embedded) and the same numbers as
JSON, and `job` is what `python -m validation report` runs. Training writes the same pack on its out-of-time
slice.
"""
