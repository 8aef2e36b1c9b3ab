"""The models, built by name from a config dataclass (the same table the checkpoints use).

    model = build_model("dcae", latent_dim=100)
    z = model.encode(x)      # x (B, 3, R, R) in [0, 1] -> z (B, D)
    y = model.decode(z)      # -> (B, 3, R, R) in [0, 1]; R is model.resolution
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from featurechanger.errors import ConfigError
from featurechanger.models.base import Autoencoder
from featurechanger.models.dcae import DCAE, DCAEConfig
from featurechanger.models.pca import PCA, PCAConfig
from featurechanger.models.pgae import PGAE, PGAEConfig

MODELS: dict[str, tuple[type[Autoencoder], type]] = {
    "dcae": (DCAE, DCAEConfig),
    "pgae": (PGAE, PGAEConfig),
    "pca": (PCA, PCAConfig),
}


def make_config(name: str, **values: Any) -> Any:
    """The config dataclass of model `name`; JSON lists become the tuples the fields declare."""
    _, config_class = _lookup(name)
    known = {field.name for field in fields(config_class)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"Unknown setting(s) {', '.join(map(repr, unknown))} for model "
                          f"{name!r}. Valid settings: {', '.join(sorted(known))}.")
    return config_class(**{key: tuple(value) if isinstance(value, list) else value
                            for key, value in values.items()})


def build_model(name: str, **config: Any) -> Autoencoder:
    """A freshly initialised model `name` ('dcae', 'pgae' or 'pca') with `config` overrides."""
    model_class, _ = _lookup(name)
    return model_class(make_config(name, **config))


def config_dict(model: Autoencoder) -> dict[str, Any]:
    """The model's config as plain values (JSON and torch.load(weights_only=True) safe)."""
    return asdict(model.config)


def _lookup(name: str) -> tuple[type[Autoencoder], type]:
    if name not in MODELS:
        raise ConfigError(f"Unknown model {name!r}. Valid models: {', '.join(MODELS)}.")
    return MODELS[name]


__all__ = ["MODELS", "Autoencoder", "build_model", "config_dict", "make_config", "DCAE",
           "DCAEConfig", "PGAE", "PGAEConfig", "PCA", "PCAConfig"]
