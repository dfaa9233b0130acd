"""Few-shot CLIP classifiers: examples, model (head from class-name text, LoRA, WiSE-FT), training, runs."""
