"""The training job: panel -> slices -> fits -> metrics -> report -> mlflow run, registry and promotion.

`train.py` is a thin CLI over `training.job.run_training`; what a model *is* lives in `models/`.
"""
