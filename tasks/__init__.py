"""Job system of fewshot-studio: Celery app, job records, artifact store, embedded worker.

`celery -A tasks worker -Q quick,long` finds the app here. Importing this package does not import torch.
"""

from tasks.celery_app import app

__all__ = ["app"]
