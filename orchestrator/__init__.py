"""The Click CLI: plans jobs, writes job rows, sends tasks by name, reads progress.

Commands import torch-heavy modules inside their function bodies, so that `--help` and job
submission stay fast.
"""
