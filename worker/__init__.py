"""The Celery side: the app and its configuration, thin tasks that run job task rows, and the
worker's lifecycle hooks. Start it with `celery -A worker.celery_app worker -Q gpu` (see
worker/celery_app.py for one worker per GPU)."""
