"""Annotation completion (ComplETR-style): propose the missing boxes of partially annotated sets.

Torch is imported only by `model` and `pipeline`; `logic`, `evaluation` metrics, `outputs`
and the job contracts stay importable from the web process. The annotation formats are `engine.annotations`.
"""
