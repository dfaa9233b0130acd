"""Annotation completion (ComplETR-style): propose the missing boxes of partially annotated sets.

Torch is imported only by `model` and `pipeline`; `formats`, `logic`, `evaluation` metrics and
`outputs` stay importable from the web process.
"""
