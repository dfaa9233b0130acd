"""Few-shot fine-tuning of CLIP classifiers: data, model (head from class-name text, LoRA, WiSE-FT),
training loop, evaluation and prediction. Torch is imported by the submodules only."""
