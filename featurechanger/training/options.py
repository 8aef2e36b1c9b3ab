"""TrainOptions: everything a training run needs, as JSON values (a job's parameters are these).

The CLI `featurechanger train` fills them from its options; the jobs system sends `to_dict()`
through the broker and rebuilds them with `from_dict()`. A run stores them, so that `--resume`
continues with exactly the same settings. This module imports no torch, so that the CLI can
show its defaults in --help cheaply.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from featurechanger.errors import ConfigError

# The names the torch modules register (featurechanger.models.MODELS, featurechanger.losses.LOSSES;
# a test keeps them equal), here so that checking options, e.g. when a job is submitted, needs
# no torch.
MODEL_NAMES = ("dcae", "pgae", "pca")
LOSS_NAMES = ("mse", "dfc")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "bf16", "fp32")  # featurechanger.training.device.pick_precision
RANDOM_VGG = "random"  # --vgg-weights random: the DFC loss on an untrained VGG19, recorded as such
LR_SCHEDULES = ("cosine", "constant")  # featurechanger.training.lr.LR_SCHEDULES (a test checks)
DCAE_DEFAULT_EPOCHS = 20


@dataclass(frozen=True)
class TrainOptions:
    model: str = "dcae"  # dcae | pgae | pca
    data: str = ""  # shard set folder (from `featurechanger data shard`)
    loss: str = "mse"  # mse | dfc
    epochs: int | None = None  # passes over the train split (DCAE default 20) ...
    steps: int | None = None  # ... or optimizer steps; PGAE default: its growth schedule
    # 32: on the 16k synthetic train faces, 4 DCAE epochs reached val PSNR 26.7 / 26.0 / 25.4 dB
    # with batches of 32 / 64 / 128 (more Adam steps per epoch); raise it on a GPU for speed.
    batch_size: int = 32
    # Adam's peak learning rate. With the cosine schedule, 3-epoch DCAE val PSNR was 26.1 / 26.6 /
    # 27.0 / 27.1 dB at 1e-3 / 2e-3 / 4e-3 / 8e-3 (BatchNorm tolerates large steps); a short PGAE
    # schedule gained 0.3 dB from 1e-3 to 4e-3. 4e-3 keeps a margin below where it flattens.
    lr: float = 4e-3
    lr_schedule: str = "cosine"  # cosine | constant (featurechanger.training.lr)
    warmup_steps: int = 300  # linear learning-rate warm-up at the start of a run
    device: str = "auto"  # auto | cpu | cuda
    # auto | bf16 | fp32: bf16 autocast where the hardware computes bf16 natively. A run records
    # the precision it resolved to, and a resumed run keeps it.
    precision: str = "auto"
    seed: int = 0  # model init and batch order; the same seed repeats a run
    minutes: float | None = None  # stop cleanly (checkpoint, state "stopped") after this long
    latent_dim: int = 100
    resolution: int | None = None  # PCA only: image side to fit at (default 32)
    vgg_weights: str | None = None  # DFC: path, "random", or None for torchvision's cache
    dfc_layer_weights: tuple[float, ...] = (1.0, 1.0, 1.0)  # relu1_1, relu2_1, relu3_1
    pixel_weight: float = 0.0  # DFC: weight of an extra pixel MSE term
    fade_images: int = 32_000  # PGAE: images over which each new resolution fades in
    # PGAE: images at alpha = 1 per resolution (with the fade: 288,000 images, ~20 min on 2 cores)
    stabilise_images: int = 48_000
    checkpoint_every: int = 500  # steps between checkpoints (one is also written at the end)
    resume: int | None = None  # run id to continue; its stored options are used

    def to_dict(self) -> dict[str, Any]:
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainOptions":
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"Unknown training option(s) {', '.join(map(repr, unknown))}. "
                              f"Valid options: {', '.join(sorted(known))}.")
        return cls(**{key: tuple(value) if isinstance(value, list) else value
                      for key, value in values.items()})

    def resumed_with(self, device: str, minutes: float | None, run_id: int) -> "TrainOptions":
        """These stored options, continuing run `run_id` on `device` with a new time budget."""
        return replace(self, device=device, minutes=minutes, resume=run_id)

    def validate(self) -> None:
        """Raise ConfigError naming the first option that cannot work, and what to do."""
        _choose("model", self.model, MODEL_NAMES)
        _choose("loss", self.loss, LOSS_NAMES)
        _choose("device", self.device, DEVICES)
        _choose("precision", self.precision, PRECISIONS)
        _choose("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        if self.resume is None and not self.data:
            raise ConfigError("No shard set given: pass --data SHARDS (a folder made by "
                              "`featurechanger data shard`).")
        if self.epochs is not None and self.steps is not None:
            raise ConfigError(f"Give --epochs ({self.epochs}) or --steps ({self.steps}), not both.")
        if not 0 <= self.seed < 2**31:
            raise ConfigError(f"--seed must be in [0, 2**31); got {self.seed!r}.")
        if self.warmup_steps < 0:
            raise ConfigError(f"--warmup-steps must be >= 0; got {self.warmup_steps!r}.")
        for name in ("epochs", "steps", "batch_size", "latent_dim", "checkpoint_every"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1; got {value!r}.")
        if self.lr <= 0 or (self.minutes is not None and self.minutes < 0):
            raise ConfigError(f"--lr must be > 0 and --minutes >= 0; got {self.lr!r} and "
                              f"{self.minutes!r}.")
        if self.fade_images < 0 or self.stabilise_images < 1:
            raise ConfigError(f"--fade-images must be >= 0 and --stabilise-images >= 1; got "
                              f"{self.fade_images!r} and {self.stabilise_images!r}.")
        if self.loss != "dfc" and self.vgg_weights is not None:
            raise ConfigError(f"--vgg-weights {self.vgg_weights!r} only applies to --loss dfc.")
        if self.model == "pca":
            self._validate_pca()
        elif self.resolution is not None:
            raise ConfigError(f"--resolution {self.resolution!r} applies to --model pca only; "
                              f"{self.model} works at its own resolution.")

    def _validate_pca(self) -> None:
        if self.loss != "mse":
            raise ConfigError("PCA minimises the pixel MSE in closed form; use --loss mse.")
        if self.epochs is not None or self.steps is not None:
            raise ConfigError("PCA is fitted in closed form; --epochs and --steps do not apply.")
        if self.precision == "bf16":
            raise ConfigError("PCA is fitted in closed form in full precision; --precision bf16 "
                              "does not apply.")


def _choose(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ConfigError(f"Unknown {name} {value!r}. Valid values: {', '.join(valid)}.")
