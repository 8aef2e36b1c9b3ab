"""Batch editing: the per-shard work of edit and interpolate jobs, and editing a photo folder."""
