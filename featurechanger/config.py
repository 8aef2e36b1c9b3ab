"""Settings from FEATURECHANGER_* environment variables, with one place for their defaults.

FEATURECHANGER_HOME        where the embedded default keeps everything (./featurechanger-home)
FEATURECHANGER_DATABASE_URL SQLAlchemy URL (default: SQLite file under HOME)
FEATURECHANGER_BROKER_URL  Redis URL of the Celery broker; unset means run jobs in-process
FEATURECHANGER_DATA_ROOT, _CHECKPOINT_ROOT, _OUTPUT_ROOT
                           roots that paths stored in SQL are relative to, so that workers on
                           other machines can mount shared storage elsewhere (default: under HOME)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

PREFIX = "FEATURECHANGER_"


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    broker_url: str | None
    data_root: Path
    checkpoint_root: Path
    output_root: Path

    def relative(self, path: Path | str, root: str) -> str:
        """Store `path` relative to the named root ('data', 'checkpoint', 'output') when under it."""
        base = self._root(root)
        resolved = Path(path).resolve()
        try:
            return resolved.relative_to(base.resolve()).as_posix()
        except ValueError:
            return str(resolved)

    def resolve(self, stored: str, root: str) -> Path:
        """Turn a path stored by `relative` back into a path on this machine."""
        path = Path(stored)
        return path if path.is_absolute() else self._root(root) / path

    def _root(self, root: str) -> Path:
        roots = {"data": self.data_root, "checkpoint": self.checkpoint_root, "output": self.output_root}
        return roots[root]

    def with_overrides(self, **changes: object) -> "Settings":
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read settings from the environment; every value has a default that works on one machine."""
    env = os.environ if environ is None else environ

    def get(name: str) -> str | None:
        value = env.get(PREFIX + name)
        return value if value else None

    home = Path(get("HOME") or "featurechanger-home").expanduser().absolute()
    return Settings(
        home=home,
        database_url=get("DATABASE_URL") or f"sqlite:///{home / 'featurechanger.db'}",
        broker_url=get("BROKER_URL"),
        data_root=Path(get("DATA_ROOT") or home / "data").expanduser().absolute(),
        checkpoint_root=Path(get("CHECKPOINT_ROOT") or home / "checkpoints").expanduser().absolute(),
        output_root=Path(get("OUTPUT_ROOT") or home / "outputs").expanduser().absolute(),
    )
