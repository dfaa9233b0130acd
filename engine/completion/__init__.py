"""Annotation completion (ComplETR-style): propose the missing boxes of partially annotated sets.

The job contracts (`complete`, `evaluate`), `outputs` and `review` are torch-free: the web process imports
them. `model`, `pipeline` and `logic` (torchvision's IoU and NMS), hence `evaluation`, need torch.
The annotation formats are `engine.annotations`.
"""
