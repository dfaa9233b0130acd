"""Few-shot fine-tuning, one package per job kind named as the kind: classify/ (CLIP + LoRA) beside detect/
(RT-DETR; the model is engine.models.rtdetr), each package's __init__ its torch-free contract, and the
predict contract; they share the training loop (loop), the run parameters and summary (training) and the
saved-model format (artifacts)."""
