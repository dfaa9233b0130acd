"""Few-shot fine-tuning: classification/ (CLIP + LoRA) and detection/ (RT-DETR) side by side, sharing the
training loop (loop), the run parameters and summary (training) and the saved-model format (artifacts).
The job contracts are classify, detect and predict; torch is imported by the submodules only."""
