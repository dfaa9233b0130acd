"""Box annotations shared by completion and detection fine-tuning: the types (`dataset`), one module per
format (`coco`, `yolo`, `voc`: read and write) and the reading of a whole upload with format detection (`read`)."""
