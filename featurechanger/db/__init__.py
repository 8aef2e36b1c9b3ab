"""SQL records of datasets, shard sets, runs, vectors, jobs and results (SQLAlchemy 2).

Importing this package registers every table on `Base.metadata`, which Alembic compares against.
"""

from featurechanger.db.base import Base
from featurechanger.db import datasets, jobs, runs, vectors  # noqa: F401  (register tables)
from featurechanger.db.session import session_scope

__all__ = ["Base", "session_scope"]
