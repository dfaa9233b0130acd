"""PyTorch pipelines of fewshot-studio.

Importing this package is cheap and torch-free; the pipelines live in sub-packages
(`engine.anomaly`, ...) and import torch when they are imported.
"""
