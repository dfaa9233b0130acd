"""Few-shot RT-DETR detectors: annotated sets, COCO mAP, training and runs (the model is engine.models.rtdetr)."""
