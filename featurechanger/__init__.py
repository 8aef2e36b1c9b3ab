"""featurechanger: edit face attributes by arithmetic on autoencoder latent vectors.

This package is the domain library. It imports neither Celery nor Click; the worker/ and
orchestrator/ packages wrap it.
"""

__version__ = "0.1.0"
