"""Models: shapes and range, overfitting a batch, PGAE fade-in, PCA, and checkpoint files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from featurechanger.errors import ConfigError, DataError
from featurechanger.models import build_model
from featurechanger.models import pgae as pgae_module
from featurechanger.models.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from featurechanger.models.pca import fit_pca
from featurechanger.models.pgae import PGAE


@pytest.fixture(autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)


def smooth_images(count: int, side: int, seed: int = 0) -> torch.Tensor:
    """Random images with face-like smoothness: 4x4 colour fields upsampled, (B, 3, S, S)."""
    coarse = torch.rand(count, 3, 4, 4, generator=torch.Generator().manual_seed(seed))
    return F.interpolate(coarse, size=side, mode="bilinear", align_corners=False)


def grown_pgae(**config: object) -> PGAE:
    model = build_model("pgae", **config)
    model.set_phase(model.config.final_resolution, 1.0)
    return model


@pytest.mark.parametrize("name, side", [("dcae", 32), ("pgae", 64), ("pca", 32)])
def test_encode_decode_shapes_and_output_range(name: str, side: int) -> None:
    model = grown_pgae() if name == "pgae" else build_model(name)
    model.eval()
    z = model.encode(smooth_images(3, side))
    assert z.shape == (3, 100)
    assert model.resolution == side
    images = model.decode(100 * torch.randn(3, 100))  # even far-out latents give images
    assert images.shape == (3, 3, side, side)
    assert images.min() >= 0 and images.max() <= 1


def test_pgae_works_at_every_resolution_of_its_schedule() -> None:
    model = build_model("pgae").eval()
    assert model.config.resolutions == (8, 16, 32, 64)
    for side in model.config.resolutions:
        model.set_phase(side, 1.0 if side == 8 else 0.5)
        assert model(smooth_images(2, side)).shape == (2, 3, side, side)


def test_wrong_image_size_is_refused_with_the_expected_shape() -> None:
    with pytest.raises(ValueError, match=r"\(B, 3, 32, 32\)"):
        build_model("dcae").encode(torch.rand(2, 3, 64, 64))


def test_unknown_model_or_setting_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="dcae, pgae, pca"):
        build_model("vae")
    with pytest.raises(ConfigError, match="'latent'.*latent_dim"):
        build_model("dcae", latent=10)


@pytest.mark.parametrize("name", ["dcae", "pgae"])
def test_a_small_batch_overfits(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name)
    side = 32
    if name == "pgae":
        side = 16  # two grown blocks: enough to show it learns, and fast
        model.set_phase(side, 1.0)
    images = smooth_images(8, side)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(80):
        loss = F.mse_loss(model(images), images)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] * 10 <= losses[0]


def _new_block_parameters(model: PGAE, side: int) -> list[torch.nn.Parameter]:
    key = str(side)
    blocks = (model.from_rgb[key], model.encoder_blocks[key], model.decoder_blocks[key],
              model.to_rgb[key])
    return [p for block in blocks for p in block.parameters()]


def test_at_alpha_zero_the_new_block_does_not_change_the_output() -> None:
    torch.manual_seed(0)
    model = build_model("pgae").eval()
    images = smooth_images(2, 32)
    model.set_phase(16, 1.0)
    before_growing = model(F.avg_pool2d(images, 2))  # the 16 px model on the 16 px image
    model.set_phase(32, 0.0)
    at_zero = model(images)
    model.set_phase(32, 0.5)
    half_faded = model(images)
    with torch.no_grad():
        for parameter in _new_block_parameters(model, 32):
            parameter.add_(torch.randn_like(parameter))
    model.set_phase(32, 0.0)
    assert torch.equal(model(images), at_zero)
    torch.testing.assert_close(at_zero, F.interpolate(before_growing, scale_factor=2,
                                                      mode="bilinear", align_corners=False))
    model.set_phase(32, 0.5)
    assert not torch.allclose(model(images), half_faded)  # past alpha 0 the block does count


def test_fading_in_accepts_the_mixed_precisions_of_cuda_autocast(monkeypatch) -> None:
    """Under CUDA autocast, interpolate runs in float32 while convolutions give bfloat16: the
    fade must blend the two (it once failed there, at the first fade-in of PGAE training)."""
    model = build_model("pgae").to(torch.bfloat16)
    model.set_phase(16, 0.5)
    upsample = pgae_module._upsample
    monkeypatch.setattr(pgae_module, "_upsample", lambda x: upsample(x).float())
    image = model.decode(torch.randn(2, model.latent_dim, dtype=torch.bfloat16))
    assert image.shape == (2, 3, 16, 16) and image.dtype == torch.float32


def test_pgae_refuses_impossible_phases() -> None:
    model = build_model("pgae")
    with pytest.raises(ValueError, match="alpha must be 1"):
        model.set_phase(8, 0.5)
    with pytest.raises(ValueError, match="128"):
        model.set_phase(128, 1.0)


def test_pca_matches_an_exact_eigendecomposition() -> None:
    images = smooth_images(400, 8) + 0.02 * torch.rand(400, 3, 8, 8)  # 192 features
    model = build_model("pca", latent_dim=10, resolution=8)
    fit_pca(model, lambda: images.split(64))
    flat = images.flatten(1)
    centred = flat - flat.mean(0)
    exact = torch.linalg.eigh(centred.T @ centred).eigenvectors[:, -10:]  # (F, 10)
    exact_error = (centred - centred @ exact @ exact.T).pow(2).mean()
    fitted_error = (model.decode(model.encode(images)) - images).pow(2).mean()
    assert fitted_error <= exact_error * 1.01


def _checkpointed_models() -> list:
    dcae = build_model("dcae")
    pgae = build_model("pgae")
    pgae.set_phase(32, 0.3)
    pca = build_model("pca", latent_dim=5)
    fit_pca(pca, lambda: [smooth_images(50, 32)])
    return [(dcae, 32), (pgae, 32), (pca, 32)]


@pytest.mark.parametrize("index", [0, 1, 2], ids=["dcae", "pgae", "pca"])
def test_checkpoint_round_trips_to_identical_outputs(tmp_path: Path, index: int) -> None:
    torch.manual_seed(index)
    model, side = _checkpointed_models()[index]
    model.train()
    model(smooth_images(4, side))  # move the BatchNorm running statistics off their init
    model.eval()
    images = smooth_images(4, side, seed=1)
    path = save_checkpoint(tmp_path / "model.pt", model, training={"step": 7})

    loaded = load_checkpoint(path)
    assert torch.load(path, weights_only=True)["model"] == model.name
    assert not loaded.training
    assert loaded.config == model.config and loaded.resolution == model.resolution
    assert torch.equal(loaded(images), model(images))
    assert read_checkpoint(path)["training"] == {"step": 7}
    if isinstance(model, PGAE):
        assert loaded.alpha == model.alpha


def test_bad_checkpoint_files_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist: restore it, or train its run again"):
        load_checkpoint(tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint at all")
    with pytest.raises(DataError, match="corrupt.pt' as a featurechanger checkpoint"):
        load_checkpoint(corrupt)
    plain = tmp_path / "plain.pt"
    torch.save(build_model("dcae").state_dict(), plain)
    with pytest.raises(DataError, match="plain.pt' is not a featurechanger checkpoint"):
        load_checkpoint(plain)
    mismatched = tmp_path / "mismatched.pt"
    save_checkpoint(mismatched, build_model("dcae"))
    payload = torch.load(mismatched, weights_only=True)
    payload["config"]["latent_dim"] = 7
    torch.save(payload, mismatched)
    with pytest.raises(DataError, match="does not match its own model config"):
        load_checkpoint(mismatched)
