"""The precision training computes in: which one `auto` picks, and that it is applied."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from featurechanger.errors import ConfigError
from featurechanger.evaluation.classifier import train_in_batches
from featurechanger.training import device
from featurechanger.models import build_model
from featurechanger.training.device import (autocast, lists_native_bf16, pick_precision,
                                            recorded_precision, training_layout)
from featurechanger.training.options import TrainOptions

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize("native", [True, False])
def test_auto_is_bf16_where_the_hardware_computes_it(monkeypatch: pytest.MonkeyPatch,
                                                     native: bool) -> None:
    monkeypatch.setattr(device, "cpu_computes_bf16", lambda: native)
    assert pick_precision("auto", CPU) == ("bf16" if native else "fp32")
    assert pick_precision("auto", CUDA) == "bf16"
    assert pick_precision("fp32", CUDA) == "fp32" and pick_precision("bf16", CPU) == "bf16"


def test_an_unknown_precision_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="Unknown precision 'fp16'. Valid values: auto, bf16, "
                                          "fp32"):
        pick_precision("fp16", CPU)
    with pytest.raises(ConfigError, match="precision 'half'"):
        TrainOptions(data="x", precision="half").validate()
    with pytest.raises(ConfigError, match="--precision bf16 does not apply"):
        TrainOptions(model="pca", data="x", precision="bf16").validate()


def test_native_bf16_is_read_from_the_cpu_flags() -> None:
    sapphire_rapids = "processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_tile\n"
    assert lists_native_bf16(sapphire_rapids)
    assert lists_native_bf16("flags\t: fpu avx2 avx512_bf16\n")
    assert not lists_native_bf16("flags\t\t: fpu sse4_2 avx2 avx512f avx512bw\n")
    assert not lists_native_bf16("Processor\t: AArch64\n")  # no x86 flags line


def test_a_runs_precision_is_the_recorded_one_or_what_it_was_before_the_option() -> None:
    assert recorded_precision({"precision": "bf16"}, CPU) == "bf16"
    assert recorded_precision({"precision": "fp32"}, CUDA) == "fp32"
    # Runs recorded before: autocast on CUDA only.
    assert recorded_precision({"device": "auto"}, CPU) == "fp32"
    assert recorded_precision({"device": "auto"}, CUDA) == "bf16"


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_batches_are_computed_in_the_precision_asked_for(precision: str) -> None:
    model = torch.nn.Linear(4, 1)
    seen = []

    def batch_loss(rows: np.ndarray) -> torch.Tensor:
        output = model(torch.ones(len(rows), 4))
        seen.append(output.dtype)
        return output.float().pow(2).mean()

    train_in_batches(model, batch_loss, 8, epochs=1, batch_size=4, lr=0.1,
                     generator=np.random.default_rng(0), desc="test", precision=precision)
    expected = torch.bfloat16 if precision == "bf16" else torch.float32
    assert seen == [expected, expected]
    assert model.weight.dtype == torch.float32  # the weights and Adam stay in full precision
    with autocast(CPU, "fp32"):
        assert not torch.is_autocast_enabled("cpu")


def test_bf16_lays_an_autoencoders_weights_out_channels_last_and_fp32_leaves_them() -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32)
    model = build_model("dcae").eval()
    expected = model(x)
    for precision, channels_last in (("fp32", False), ("bf16", True)):
        laid_out = training_layout(copy.deepcopy(model), precision)
        conv = next(m for m in laid_out.modules() if isinstance(m, torch.nn.Conv2d))
        assert conv.weight.is_contiguous(memory_format=torch.channels_last) == channels_last
        assert conv.weight.is_contiguous() != channels_last
        torch.testing.assert_close(laid_out(x), expected)  # the values are the same
