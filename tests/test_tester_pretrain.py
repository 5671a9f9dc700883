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


@pytest.mark.parametrize("augment", [True, False])
def test_v_pretraining_crops_and_flips_only_where_the_search_does(
    augment: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """V learns the search-train split as the search sees it: the quick preset's digits (no crop and
    flip: a flipped digit is another digit) pretrain V unaugmented, and the cache key says so."""
    from types import SimpleNamespace

    import searchers.testers.auxiliary as auxiliary
    from searchers.strategies.ours import OursConfig
    from searchers.testers.auxiliary import TiedAuxiliary
    from searchers.testers.gan import GanTester
    from searchers.testers.pretrain import pretrain_tester, tester_cache_name

    calls: list[int] = []
    real_augment = auxiliary._augment
    monkeypatch.setattr(auxiliary, "_augment", lambda x, g: calls.append(1) or real_augment(x, g))
    gan = _gan()
    tester = GanTester(gan, TiedAuxiliary(gan.D, 3, hidden=4))
    images, labels = _data()
    split = SimpleNamespace(images=images, labels=labels, dataset_indices=torch.arange(12), augment=augment)
    config = OursConfig(pretrain_iters=1, pretrain_batch=4, pretrain_d_steps=1, aux_pretrain_iters=2)
    path = pretrain_tester(split, tester, config, tmp_path, dataset_name="tiny")
    assert path.exists() and len(calls) == (2 if augment else 0)
    other = SimpleNamespace(**{**vars(split), "augment": not augment})
    names = {tester_cache_name(s, tester, config, "tiny") for s in (split, other)}
    assert len(names) == 2
