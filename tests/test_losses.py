"""DFC loss (frozen VGG19 features, weights never downloaded) and the PSNR/SSIM metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from featurechanger.errors import ConfigError
from featurechanger.losses import (VGG_FILE, DFCLoss, ReconstructionLoss, build_loss,
                                   resolve_vgg_weights)
from featurechanger.metrics import psnr, ssim
from featurechanger.models import build_model


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty torchvision cache, and any download attempt fails the test."""
    torch_home = tmp_path / "torch-home"
    monkeypatch.setenv("TORCH_HOME", str(torch_home))

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"tried to download {args}")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    torch.set_num_threads(1)
    return torch_home


def write_tiny_vgg_file(path: Path) -> dict[str, torch.Tensor]:
    """A VGG19-shaped state dict with torchvision's key names for the layers DFC uses."""
    shapes = {0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128), 10: (256, 128)}
    generator = torch.Generator().manual_seed(3)
    state = {}
    for index, (out_channels, in_channels) in shapes.items():
        state[f"features.{index}.weight"] = 0.1 * torch.randn(
            out_channels, in_channels, 3, 3, generator=generator)
        state[f"features.{index}.bias"] = torch.zeros(out_channels)
    state["classifier.0.weight"] = torch.zeros(1)  # the real file has more than features
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


def test_dfc_is_zero_for_identical_images_and_positive_otherwise() -> None:
    loss = DFCLoss("random")
    images = torch.rand(2, 3, 32, 32)
    assert loss(images, images).item() == 0.0
    assert loss(images.flip(-1), images).item() > 0.0


def test_training_through_dfc_never_updates_vgg() -> None:
    loss_fn = build_loss("dfc", "random")
    frozen = {name: p.clone() for name, p in loss_fn.dfc.features.state_dict().items()}
    model = build_model("dcae")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn.train()
    images = torch.rand(4, 3, 32, 32)
    for _ in range(2):
        loss = loss_fn(model(images), images)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert not loss_fn.dfc.features.training
    for name, parameter in loss_fn.dfc.features.named_parameters():
        assert not parameter.requires_grad and parameter.grad is None
        assert torch.equal(parameter, frozen[name])


def test_no_weights_refuses_with_the_file_name_and_where_to_put_it(no_downloads: Path) -> None:
    with pytest.raises(ConfigError) as error:
        resolve_vgg_weights(None)
    message = str(error.value)
    assert VGG_FILE in message and str(no_downloads / "hub" / "checkpoints") in message
    assert "--vgg-weights random" in message
    with pytest.raises(ConfigError, match="'/nowhere/vgg.pth' does not exist"):
        resolve_vgg_weights("/nowhere/vgg.pth")
    assert resolve_vgg_weights("random") == "random"


def test_weights_come_from_the_torchvision_cache_or_a_named_file(no_downloads: Path,
                                                                 tmp_path: Path) -> None:
    cached = no_downloads / "hub" / "checkpoints" / VGG_FILE
    state = write_tiny_vgg_file(cached)
    assert resolve_vgg_weights(None) == str(cached.resolve())
    named = tmp_path / "elsewhere.pth"
    write_tiny_vgg_file(named)
    assert resolve_vgg_weights(str(named)) == str(named.resolve())

    loss = DFCLoss(resolve_vgg_weights(None))
    assert torch.equal(loss.features[10].weight, state["features.10.weight"])


def test_a_file_that_is_not_vgg19_is_refused(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, wrong)
    with pytest.raises(ConfigError, match="not a torchvision VGG19 state dict.*features.0.bias"):
        DFCLoss(str(wrong))


def test_random_vgg_features_are_repeatable_and_leave_the_global_rng_alone() -> None:
    torch.manual_seed(0)
    before = torch.get_rng_state()
    first, second = DFCLoss("random", seed=5), DFCLoss("random", seed=5)
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(first.features[0].weight, second.features[0].weight)


def test_layer_and_pixel_weights_change_the_loss() -> None:
    images, other = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    only_relu1 = DFCLoss("random", layer_weights=(1.0, 0.0, 0.0))
    with_pixels = DFCLoss("random", layer_weights=(1.0, 0.0, 0.0), pixel_weight=2.0)
    pixel = torch.nn.functional.mse_loss(other, images)
    torch.testing.assert_close(with_pixels(other, images), only_relu1(other, images) + 2 * pixel)
    with pytest.raises(ConfigError, match="one value per layer"):
        DFCLoss("random", layer_weights=(1.0, 1.0))


def test_reconstruction_loss_uses_mse_below_32_px() -> None:
    loss = ReconstructionLoss(DFCLoss("random"))
    small, small_other = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(loss(small, small_other),
                               torch.nn.functional.mse_loss(small, small_other))
    big, big_other = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(loss(big, big_other), loss.dfc(big, big_other))


def test_psnr_and_ssim_match_scikit_image() -> None:
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(3, 3, 32, 32, generator=generator)
    output = (target + 0.1 * torch.randn(3, 3, 32, 32, generator=generator)).clamp(0, 1)
    for index in range(3):
        a, b = output[index].numpy(), target[index].numpy()
        expected_psnr = 10 * np.log10(1 / np.mean((a - b) ** 2))
        expected_ssim = structural_similarity(a, b, data_range=1.0, channel_axis=0)
        assert psnr(output, target)[index].item() == pytest.approx(expected_psnr, abs=1e-4)
        assert ssim(output, target)[index].item() == pytest.approx(expected_ssim, abs=1e-5)
    assert ssim(target, target).tolist() == pytest.approx([1.0] * 3)
    assert psnr(target, target).tolist() == pytest.approx([100.0] * 3)
