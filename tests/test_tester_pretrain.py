"""GAN pretraining of the tester (FQ-GAN's CIFAR recipe, paper Sec. 3.3 / App. A.1): the pretrained G is
BigGAN's weight average G_ema (``--ema --use_ema --ema_start``), and an interrupted pretraining resumes
to the same weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from searchers.testers.fqgan import ConditionalGAN
from searchers.testers.pretrain import pretrain_gan


def _gan() -> ConditionalGAN:
    torch.manual_seed(0)
    return ConditionalGAN("fqgan", 3, width=1, dim_z=8, fq_layers=(1,), dict_size=8, resolution=16)


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (12, 3, 16, 16), generator=g, dtype=torch.uint8), torch.arange(12) % 3


def _pretrained(iters: int, **kwargs: object) -> dict[str, torch.Tensor]:
    gan = _gan()
    images, labels = _data()
    pretrain_gan(
        gan,
        images,
        labels,
        iters=iters,
        batch_size=4,
        d_steps=1,
        generator=torch.Generator().manual_seed(2),
        **kwargs,
    )
    return {k: v.clone() for k, v in gan.G.state_dict().items()}


def test_pretrained_generator_is_the_weight_average_from_ema_start() -> None:
    raw = [_pretrained(k, ema=0.0) for k in (1, 2, 3)]  # G after each step, no averaging
    averaged = _pretrained(3, ema=0.5, ema_start=1)
    name = "linear.weight"
    # step 1 (before ema_start): the average is a copy; steps 2 and 3 average with decay 0.5
    expected = 0.5 * (0.5 * raw[0][name] + 0.5 * raw[1][name]) + 0.5 * raw[2][name]
    torch.testing.assert_close(averaged[name], expected)
    assert not torch.allclose(averaged[name], raw[2][name])


def test_an_average_that_never_starts_leaves_the_last_generator() -> None:
    last = _pretrained(3, ema=0.0)
    late = _pretrained(3, ema=0.9999, ema_start=1000)
    for k in last:
        torch.testing.assert_close(late[k], last[k], rtol=0, atol=0)


class _Stop(Exception):
    pass


def test_interrupted_pretraining_resumes_to_the_same_generator(tmp_path: Path) -> None:
    whole = _pretrained(10, ema=0.5, ema_start=3)
    resume = tmp_path / "partial.pt"

    def stop_at_seven(message: str) -> None:
        if message.startswith("pretrain GAN 7/"):
            raise _Stop

    with pytest.raises(_Stop):
        _pretrained(10, ema=0.5, ema_start=3, resume=resume, log=stop_at_seven)
    assert resume.exists()  # saved after step 6
    resumed = _pretrained(10, ema=0.5, ema_start=3, resume=resume)
    for k in whole:
        torch.testing.assert_close(resumed[k], whole[k], rtol=0, atol=0)
