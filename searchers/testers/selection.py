"""The "pretrain" ablation's tester (paper App. B.2.2, Eq. 19): selection variables over generated pairs.

A pretrained GAN, fixed, generates M image-label pairs once (:meth:`SelectionTester.from_gan`);
selection variables ``s_i in [0, 1]`` (init 0.5) weight them in the learner's loss,
``sum s_i l_i / sum s_i`` over a batch. ``s`` is maximised (Adam, ``lr``, no weight decay) with the
gradient the architecture step gives it, then clipped to [0, 1]. There is no auxiliary model
(lambda = 0) and no lower-level update. Images are stored as uint8 (like real data).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from searchers.splits import IndexStream
from searchers.testers.base import Batch, GeneratedBatch, Tester, TesterStep, ascend, direct_gradients
from searchers.testers.fqgan import ConditionalGAN


class SelectionTester(Tester):
    """Selection variables ``s`` over M fixed pairs (module docstring); batches of ``batch_size`` pairs
    are drawn without replacement from the search's ``generator`` (stream ``pairs``)."""

    kind = "selection"

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        lr: float = 0.1,
        betas: tuple[float, float] = (0.5, 0.999),
        *,
        batch_size: int = 64,
        generator: torch.Generator | None = None,
    ) -> None:
        self.images, self.labels = images, labels
        self.s = nn.Parameter(torch.full((images.shape[0],), 0.5, device=images.device))
        self.upper_params = [self.s]
        self.aux = None
        self.b_opt = torch.optim.Adam([self.s], lr=lr, betas=betas)
        gen = generator if generator is not None else torch.Generator()
        self.pair_stream = IndexStream(torch.arange(images.shape[0]), batch_size, gen)

    @classmethod
    @torch.no_grad()
    def from_gan(
        cls,
        gan: ConditionalGAN,
        m: int,
        setup_generator: torch.Generator,
        device: torch.device,
        **kwargs: Any,
    ) -> SelectionTester:
        """Eq. 19: generate the M pairs once with the fixed pretrained GAN (numbers from
        ``setup_generator``); ``kwargs`` go to the constructor."""
        chunk = 500
        xs, ys = [], []
        gan.eval()
        for s in range(0, m, chunk):
            n = min(chunk, m - s)
            z, y = gan.sample_latent(max(n, 2), setup_generator, device)
            x = gan.generate(z, y)[:n]
            xs.append((x * 255).round().clamp(0, 255).to(torch.uint8))
            ys.append(y[:n])
        return cls(torch.cat(xs), torch.cat(ys), **kwargs)

    def batch(self, idx: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """([0, 1] images, labels, s) of the pairs at ``idx`` (s differentiable)."""
        idx = idx.to(self.images.device)
        x = self.images.index_select(0, idx).float() / 255
        return x, self.labels.index_select(0, idx), self.s.index_select(0, idx)

    # ---------------------------------------------------------------- Algorithm 1
    def validation_batch(self, step: TesterStep) -> GeneratedBatch:
        """The next pairs with their selection weights (differentiable in s on a due iteration)."""
        idx = self.pair_stream.next()[0]
        due = step.due
        if due:
            self.s.grad = None

        def make() -> tuple[Tensor, Tensor, Tensor | None]:
            x, y, s = self.batch(idx)
            return x, y, (s if due else s.detach())

        return GeneratedBatch(make, [self.s] if due else [])

    def upper_step(
        self, step: TesterStep, batch: GeneratedBatch, val_batch: Batch, *, lam: float, mode: str, r: float
    ) -> dict[str, Any]:
        """Ascent on s with the gradient of the learner's loss (Eq. 19; no V, so no second term)."""
        dj = direct_gradients([self.s])
        self.s.grad = None
        self.step_upper(dj)
        return {}

    def lower_step(self, step: TesterStep) -> dict[str, Tensor]:
        return {}

    def step_upper(self, dj: list[Tensor]) -> None:
        ascend(self.b_opt, [self.s], dj)
        with torch.no_grad():
            self.s.clamp_(0, 1)

    # ---------------------------------------------------------------- diagnostics
    def diagnostic_inputs(
        self, n: int, generator: torch.Generator, train: Any, num_classes: int, device: torch.device
    ) -> dict[str, Any]:
        """A fixed random subset of the pairs."""
        m = self.images.shape[0]
        return {"idx": torch.randperm(m, generator=generator)[: min(n, m)]}

    @torch.no_grad()
    def generated_set(self, inputs: dict[str, Any]) -> Batch:
        x, y, _ = self.batch(inputs["idx"])
        return x, y

    def diagnostics(self) -> dict[str, Any]:
        s = self.s.detach()
        return {"selection_mean": float(s.mean()), "selection_above_half": float((s > 0.5).float().mean())}

    # ---------------------------------------------------------------- state
    def streams(self) -> dict[str, IndexStream]:
        return {"pairs": self.pair_stream}

    def state_dict(self) -> dict[str, Any]:
        return {"s": self.s.detach().clone(), "b_opt": self.b_opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.s.copy_(state["s"])
        self.b_opt.load_state_dict(state["b_opt"])
