"""The tester components of the ``ours`` strategy (searchers/testers): GANs with learnable B, the DADA
augmentation policy and its batched ops, the auxiliary models, DeCov, the functional helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageEnhance, ImageOps
from torch import nn

from searchers.testers import dada as A
from searchers.testers.auxiliary import ResNet18Cifar, TiedAuxiliary
from searchers.testers.fqgan import GENERATORS, ConditionalGAN, FeatureQuantizer, SNLinear, fq_defaults
from searchers.testers.functional import fcall, frozen, mixed_exact, mixed_fd, named_params
from searchers.testers.gan import GanTester
from searchers.testers.regularizers import decov
from wcbench.smallcnn import SmallCNN

pytestmark = pytest.mark.timeout(120)


def tiny_gan(kind: str = "fqgan", classes: int = 5, **kw) -> ConditionalGAN:
    torch.manual_seed(0)
    return ConditionalGAN(kind, classes, width=2, dim_z=8, fq_layers=(1, 2), dict_size=8, **kw)


# ============================================================================ GANs


@pytest.mark.parametrize("kind", GENERATORS)
def test_gan_shapes_and_ranges(kind: str) -> None:
    gan = tiny_gan(kind)
    g = torch.Generator().manual_seed(0)
    z, y = gan.sample_latent(6, g)
    with torch.no_grad():
        x = gan.generate(z, y)
    assert x.shape == (6, 3, 32, 32) and float(x.min()) >= 0 and float(x.max()) <= 1
    out = gan.D(x * 2 - 1, y)
    assert out.logits.shape == (6,) and out.features.shape == (6, gan.D.channels)
    loss, stats = gan.d_loss(torch.rand(6, 3, 32, 32), y, z, y)
    assert loss.ndim == 0 and torch.isfinite(loss) and {"d_real", "d_fake"} <= set(stats)
    assert set(gan.B.values()) == ({"decay", "fq_weight"} if kind == "fqgan" else {"z_scale", "cond_scale"})
    if kind == "biggan":  # hierarchical z: dim_z split into 1 + 3 chunks
        assert gan.G.hier and gan.G.dim_z % 4 == 0 and gan.G.shared is not None
    if kind == "sngan":
        assert not any(isinstance(m, SNLinear) for m in gan.G.modules())
        assert not gan.D.fq_layers


def test_fq_defaults_follow_reference() -> None:
    assert fq_defaults("cifar10") == {"dict_size_log2": 10, "decay": 0.8, "fq_weight": 1.0}
    assert fq_defaults("cifar100") == {"dict_size_log2": 6, "decay": 0.9, "fq_weight": 10.0}


def test_fq_ema_update_equals_the_formula() -> None:
    """cluster_size <- d cs + (1-d) counts; embed_avg <- d avg + (1-d) sums; Laplace 1e-5; embed = avg/cs."""
    q = FeatureQuantizer(dim=2, n_embed=3).double()
    with torch.no_grad():
        q.embed.copy_(torch.tensor([[0.0, 10.0, -10.0], [0.0, 10.0, -10.0]]))
        q.embed_avg.copy_(torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
        q.cluster_size.copy_(torch.tensor([2.0, 0.5, 1.0]))
    # four feature vectors (N=1, C=2, H=2, W=2): three near key 0, one near key 1
    feats = torch.tensor([[0.1, 0.2], [-0.3, 0.1], [9.0, 11.0], [0.2, -0.1]]).double()
    h = feats.t().reshape(1, 2, 2, 2)
    d = 0.8
    q.train()
    out, st = q(h, decay=d)
    counts = torch.tensor([3.0, 1.0, 0.0]).double()
    sums = torch.tensor([[0.1 - 0.3 + 0.2, 9.0, 0.0], [0.2 + 0.1 - 0.1, 11.0, 0.0]]).double()
    cs = d * torch.tensor([2.0, 0.5, 1.0]).double() + (1 - d) * counts
    avg = d * torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]).double() + (1 - d) * sums
    n = cs.sum()
    smooth = (cs + 1e-5) / (n + 3 * 1e-5) * n
    embed = avg / smooth
    torch.testing.assert_close(q.cluster_size, cs)
    torch.testing.assert_close(q.embed_avg, avg)
    torch.testing.assert_close(q.embed, embed)
    # quantised output = the updated key of each assigned vector; FQ loss = mean squared distance
    expected = embed.t()[torch.tensor([0, 0, 1, 0])]
    torch.testing.assert_close(out.permute(0, 2, 3, 1).reshape(-1, 2), expected)
    torch.testing.assert_close(st.loss, (expected - feats).pow(2).mean())
    # frozen / decay=None: nothing is written
    before = q.embed.clone()
    with frozen(q):
        q(h, decay=d)
    q(h, decay=None)
    torch.testing.assert_close(q.embed, before)


def test_fq_straight_through_and_decay_gradient() -> None:
    q = FeatureQuantizer(dim=3, n_embed=4)
    h = torch.randn(2, 3, 2, 2, requires_grad=True)
    decay = torch.tensor(0.8, requires_grad=True)
    with frozen(q):
        out, st = q(h, decay)
    (gh,) = torch.autograd.grad(out.sum(), h, retain_graph=True)
    torch.testing.assert_close(gh, torch.ones_like(h))  # straight-through
    (gd,) = torch.autograd.grad((out**2).sum(), decay)
    assert float(gd.abs()) > 0  # the quantised value depends on the decay (B)


@pytest.mark.parametrize("kind", GENERATORS)
def test_generator_loss_gradient_wrt_B_exists_and_is_nonzero(kind: str) -> None:
    gan = tiny_gan(kind)
    t = GanTester(gan, None)
    g = torch.Generator().manual_seed(1)
    z, y = gan.sample_latent(8, g)
    t.train_d(torch.rand(8, 3, 32, 32), y, z, y)  # fill the dictionaries
    gp = named_params(gan.G)
    loss = t.g_loss_at(gp, z, y, gan.B.values())
    grads_b = torch.autograd.grad(loss, list(gan.B.parameters()), retain_graph=True)
    assert all(float(gb.abs()) > 0 for gb in grads_b)
    # the mixed derivative of Eq. 15: grad_B <grad_G L_dg, v> exists and is non-zero
    v = [torch.randn_like(p) for p in gp.values()]
    mixed = mixed_exact(lambda p: t.g_loss_at(p, z, y, gan.B.values()), gp, v, list(gan.B.parameters()))
    assert all(float(m.abs()) > 0 for m in mixed)


@pytest.mark.parametrize("kind", GENERATORS)
def test_B_changes_what_the_tester_generates(kind: str) -> None:
    """After one G update with a different B, the generated images differ."""
    gan = tiny_gan(kind)
    t = GanTester(gan, None)
    g = torch.Generator().manual_seed(2)
    z, y = gan.sample_latent(8, g)
    t.train_d(torch.rand(8, 3, 32, 32), y, z, y)
    zs, ys = gan.sample_latent(8, g)
    base = t.generate_at(t.unrolled(0.5, z, y), zs, ys).detach()
    for name in [n for n, _ in gan.B.named_parameters()]:
        p = dict(gan.B.named_parameters())[name]
        old = p.detach().clone()
        with torch.no_grad():
            p.mul_(0.5)
        changed = t.generate_at(t.unrolled(0.5, z, y), zs, ys).detach()
        with torch.no_grad():
            p.copy_(old)
        assert float((changed - base).abs().max()) > 1e-6, name
    # the real G step too
    state = {k: v.clone() for k, v in gan.state_dict().items()}
    t.train_g(z, y, 0.5)
    a = t.generate_at(None, zs, ys).detach()
    gan.load_state_dict(state)
    t.g_opt = torch.optim.SGD(gan.G.parameters(), lr=0.5)
    with torch.no_grad():
        next(gan.B.parameters()).mul_(0.5)
    t.train_g(z, y, 0.5)
    b = t.generate_at(None, zs, ys).detach()
    assert float((a - b).abs().max()) > 1e-6


def test_spectral_norm_normalises() -> None:
    torch.manual_seed(0)
    lin = SNLinear(6, 5)
    with torch.no_grad():
        lin.weight.mul_(10)
    for _ in range(30):
        lin(torch.randn(2, 6))
    w = lin.sn_weight(lin.weight).detach()
    assert abs(float(torch.linalg.matrix_norm(w, ord=2)) - 1.0) < 1e-3
    before = lin.u.clone()
    with frozen(lin):
        lin(torch.randn(2, 6))
    torch.testing.assert_close(lin.u, before)


# ============================================================================ auxiliary models


def test_auxiliary_models_shapes_and_tying() -> None:
    torch.manual_seed(0)
    x = torch.rand(4, 3, 32, 32)
    assert ResNet18Cifar(7, width=4)(x).shape == (4, 7)
    assert SmallCNN(7, width=4)(x).shape == (4, 7)
    full = ResNet18Cifar(10)
    assert 11.0e6 < sum(p.numel() for p in full.parameters()) < 11.4e6  # ResNet-18 CIFAR: 11.17M
    gan = tiny_gan()
    v = TiedAuxiliary(gan.D, 7, hidden=5)
    assert v(x).shape == (4, 7)
    # V's parameters are its head only; the trunk is the discriminator's (shared, not copied)
    assert {id(p) for p in v.parameters()} == {id(p) for p in v.head.parameters()}
    assert v.trunk is gan.D
    loss = v(x).sum()
    loss.backward()
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in gan.D.parameters())
    # reading features never updates D's state
    before = {k: b.clone() for k, b in gan.D.named_buffers()}
    v(x)
    for k, b in gan.D.named_buffers():
        torch.testing.assert_close(b, before[k])


class _SmallScaleTrunk(nn.Module):
    """A stand-in discriminator whose pooled features carry the class at the scale of a spectrally
    normalised trunk's (~0.01): each image's mean colour, times 0.01."""

    channels = 3

    def trunk(self, x: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, None, None]:
        positions = (x.shape[2] // 4) * (x.shape[3] // 4)
        return 0.01 * (x + 1).mean(dim=(2, 3)) / 2 * positions, None, None


def test_tied_auxiliary_head_learns_from_small_scale_trunk_features() -> None:
    """V's head (LayerNorm first) learns the class from features as small as the tied trunk's, in the
    He et al. recipe V's pretraining uses (lr 0.1); without the LayerNorm it stays near chance."""
    from searchers.testers.auxiliary import train_classifier

    torch.manual_seed(0)
    colours = torch.tensor([[0.1, 0.1, 0.9], [0.9, 0.1, 0.1], [0.1, 0.9, 0.1], [0.9, 0.9, 0.1]])
    labels = torch.arange(200) % 4
    images = (colours[labels][:, :, None, None] + 0.05 * torch.randn(200, 3, 8, 8)).clamp(0, 1)
    images = (images * 255).to(torch.uint8)
    v = TiedAuxiliary(_SmallScaleTrunk(), 4, hidden=16)
    train_classifier(
        v, images, labels, iters=60, batch_size=32, generator=torch.Generator().manual_seed(0), augment=False
    )
    with torch.no_grad():
        accuracy = float((v(images.float() / 255).argmax(1) == labels).float().mean())
    assert accuracy > 0.95


def test_one_small_cnn_builds_both_of_its_users() -> None:
    """The testers' V/reference (normalising, avg pool after every stage) and the worst-case committee
    member (normalised inputs, max pool after the first two stages): one class, two settings."""
    x = torch.rand(2, 3, 32, 32)
    v = SmallCNN(7, width=4, mean=(0.4, 0.5, 0.6), std=(0.2, 0.2, 0.2))
    assert [k for k in v.state_dict() if k.startswith("norm")] == ["norm.mean", "norm.std"]
    assert [type(m) for m in v.body if isinstance(m, (nn.AvgPool2d, nn.MaxPool2d))] == [nn.AvgPool2d] * 3
    member = SmallCNN(7, width=32, mean=None, std=None, pool="max", pool_last=False)
    pools = [type(m) for m in member.body if isinstance(m, (nn.AvgPool2d, nn.MaxPool2d))]
    assert pools == [nn.MaxPool2d] * 2 and member.feature_dim == 128
    assert not any(k.startswith("norm") for k in member.state_dict())
    assert [tuple(p.shape) for p in member.parameters() if p.ndim == 4] == [
        (32, 3, 3, 3),
        (64, 32, 3, 3),
        (128, 64, 3, 3),
    ]
    assert member(x).shape == (2, 7) and v(x).shape == (2, 7)
    # no normalisation in front of the member: its input is what the first conv reads
    torch.testing.assert_close(member.body[0](x), member.body[0](member.norm(x)))
    with pytest.raises(ValueError, match="pool"):
        SmallCNN(7, pool="min")  # type: ignore[arg-type]


def test_decov_equals_hand_computation() -> None:
    h = torch.tensor([[1.0, 2.0, 0.0], [3.0, 0.0, 1.0], [2.0, 1.0, 2.0], [2.0, 1.0, 1.0]])
    mu = h.mean(0)
    c = torch.zeros(3, 3)
    for row in h:
        c += torch.outer(row - mu, row - mu)
    c /= 4
    off = sum(float(c[i, j]) ** 2 for i in range(3) for j in range(3) if i != j)
    assert abs(float(decov(h)) - 0.5 * off) < 1e-6
    assert abs(float(decov(h, per_dim=True)) - 0.5 * off / 3) < 1e-6
    assert float(decov(torch.randn(5, 1))) == 0.0


def test_mixed_fd_matches_exact_on_a_smooth_function() -> None:
    torch.manual_seed(0)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    params = {"w": torch.randn(4, 3, dtype=torch.float64), "c": torch.randn(4, dtype=torch.float64)}

    def loss(p: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.tanh(p["w"] @ b + p["c"]).pow(2).sum() + (p["w"] ** 3).sum() * b.sum()

    d = [torch.randn(4, 3, dtype=torch.float64), torch.randn(4, dtype=torch.float64)]
    fd = mixed_fd(loss, params, d, [b], r=1e-5)
    ex = mixed_exact(loss, params, d, [b])
    torch.testing.assert_close(fd[0], ex[0], rtol=1e-6, atol=1e-8)


def test_fcall_leaves_module_state_untouched() -> None:
    torch.manual_seed(0)
    m = SmallCNN(3, width=2)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    fcall(m, named_params(m), torch.rand(4, 3, 32, 32))
    for k, v in m.state_dict().items():
        torch.testing.assert_close(v, before[k])


# ============================================================================ augmentation ops


def _pil(x: torch.Tensor) -> Image.Image:
    return Image.fromarray((x.permute(1, 2, 0) * 255).round().byte().numpy())


def _from_pil(img: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 255


@pytest.fixture
def image() -> torch.Tensor:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 200, size=(3, 32, 32)).astype(np.float32)
    a[:, :16] = a[:, :16] / 3 + 40
    return torch.from_numpy(a).round().unsqueeze(0) / 255


def test_policy_structure_and_ranges() -> None:
    assert len(A.OPS) == 15 and len(A.SUB_POLICIES) == 105
    assert A.OP_NAMES == (
        "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "AutoContrast", "Invert", "Equalize",
        "Solarize", "Posterize", "Contrast", "Color", "Brightness", "Sharpness", "Cutout",
    )  # fmt: skip
    p = A.AugmentPolicy()
    assert p.probabilities.shape == (105, 2) and float(p.probabilities.detach().mean()) == 0.5
    assert p.magnitudes.shape == (105, 2) and float(p.magnitudes.detach().mean()) == 0.5
    assert p.weights.shape == (105,) and torch.allclose(p.weights, torch.full((105,), 1e-3))
    m = torch.tensor([0.0, 0.5, 1.0])
    ranges = [("ShearX", -0.3, 0.3), ("TranslateY", -0.45, 0.45), ("Rotate", -30, 30), ("Solarize", 0, 256)]
    ranges += [("Posterize", 4, 8), ("Sharpness", 0.1, 1.9), ("Cutout", 0, 0.2)]
    for name, lo, hi in ranges:
        v = A.magnitude_value(A.OP_NAMES.index(name), m)
        torch.testing.assert_close(v, torch.tensor([lo, (lo + hi) / 2, hi], dtype=torch.float32))


def test_invert_solarize_posterize(image: torch.Tensor) -> None:
    torch.testing.assert_close(A.invert(image), 1 - image)
    out = A.solarize(image, torch.tensor([100.0]))
    lv = (image * 255).round()
    torch.testing.assert_close(out, torch.where(lv >= 100, 1 - image, image))
    assert torch.equal(A.solarize(image, torch.tensor([256.0])), image)  # threshold 256: nothing
    for bits in (4, 6, 8):
        out = A.posterize(image, torch.tensor([bits + 0.7]))  # int(v) bits, as PIL/DADA
        levels = (out * 255).round().long()
        assert bool((levels % (2 ** (8 - bits)) == 0).all())
        assert bool((levels <= lv.long()).all())
    assert torch.equal(A.posterize(image, torch.tensor([8.0])), image)


def test_translate_shifts_content_and_rotate90_is_rot90(image: torch.Tensor) -> None:
    out = A.translate_x(image, torch.tensor([0.25]))  # 8 pixels left
    torch.testing.assert_close(out[..., :24], image[..., 8:])
    assert float(out[..., 24:].abs().max()) == 0.0  # zero fill
    out = A.translate_y(image, torch.tensor([-0.125]))  # 4 pixels down
    torch.testing.assert_close(out[:, :, 4:], image[:, :, :28])
    torch.testing.assert_close(
        A.rotate(image, torch.tensor([90.0])), torch.rot90(image, 1, (2, 3)), atol=1e-4, rtol=0
    )
    torch.testing.assert_close(A.rotate(image, torch.tensor([0.0])), image)


@pytest.mark.parametrize(
    ("name", "value", "pil"),
    [
        ("ShearX", 0.25, lambda im: im.transform(im.size, Image.AFFINE, (1, 0.25, 0, 0, 1, 0))),
        ("ShearY", -0.3, lambda im: im.transform(im.size, Image.AFFINE, (1, 0, 0, -0.3, 1, 0))),
        ("Rotate", 90.0, lambda im: im.rotate(90)),
        ("AutoContrast", 0.0, ImageOps.autocontrast),
        ("Equalize", 0.0, ImageOps.equalize),
        ("Contrast", 0.3, lambda im: ImageEnhance.Contrast(im).enhance(0.3)),
        ("Color", 1.6, lambda im: ImageEnhance.Color(im).enhance(1.6)),
        ("Brightness", 0.4, lambda im: ImageEnhance.Brightness(im).enhance(0.4)),
        ("Sharpness", 1.8, lambda im: ImageEnhance.Sharpness(im).enhance(1.8)),
    ],
)
def test_ops_match_pil(image: torch.Tensor, name: str, value: float, pil) -> None:
    """Batched tensor ops reproduce PIL (DADA's implementation) up to 8-bit rounding."""
    ours = A.apply_op(name, image, torch.tensor([value]))[0]
    ref = _from_pil(pil(_pil(image[0])))
    assert float((ours - ref).abs().max()) <= 1.5 / 255


def test_cutout_paints_a_square(image: torch.Tensor) -> None:
    out = A.cutout(image, torch.tensor([0.125]), torch.tensor([[0.5, 0.5]]))  # side 4 at the centre
    diff = (out != image).any(1)[0]
    rows, cols = diff.nonzero(as_tuple=True)
    assert (int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())) == (14, 17, 14, 17)
    fill = torch.tensor(A.CUTOUT_COLOR)
    torch.testing.assert_close(out[0, :, 15, 15], fill)
    assert torch.equal(A.cutout(image, torch.tensor([0.0]), torch.tensor([[0.5, 0.5]])), image)


def test_ops_run_batched_with_per_image_values() -> None:
    x = torch.rand(6, 3, 32, 32)
    ops = torch.tensor([0, 4, 8, 8, 14, 12])
    vals = torch.tensor([0.2, 15.0, 30.0, 250.0, 0.1, 1.5])
    out = A.apply_ops(x, ops, vals, torch.rand(6, 2))
    for i in range(6):
        single = A.apply_op(A.OP_NAMES[int(ops[i])], x[i : i + 1], vals[i : i + 1], None)
        if A.OP_NAMES[int(ops[i])] != "Cutout":
            torch.testing.assert_close(out[i : i + 1], single)


def test_policy_forward_is_the_hard_composition_and_gradients_reach_everything() -> None:
    torch.manual_seed(0)
    pol = A.AugmentPolicy()
    with torch.no_grad():
        pol.probabilities.fill_(0.9)
    x = torch.rand(16, 3, 32, 32)
    sample = pol.draw(16, torch.Generator().manual_seed(3))
    out = pol(x, sample)
    # forward value: for each image, the chosen sub-policy's ops applied where the hard gate is 1
    idx, w = pol.selection(sample)
    gates = pol.gates(idx, sample)
    assert torch.equal(w, torch.ones(16)) and set(gates.unique().tolist()) <= {0.0, 1.0}
    for i in range(16):
        xi = x[i : i + 1]
        for k in range(2):
            op = int(pol.sub_policies[idx[i], k])
            if gates[i, k] == 1:
                v = A.magnitude_value(op, pol.magnitudes[idx[i], k].detach().view(1))
                if A.OP_NAMES[op] in A.MIRRORED:
                    v = v * sample.sign[i, k]
                xi = A.apply_op(A.OP_NAMES[op], xi, v, sample.centre[i, k].view(1, 2))
        torch.testing.assert_close(out[i : i + 1], xi, atol=1e-6, rtol=0)
    # gradients: Gumbel selection -> weights, relaxed gates -> probabilities, ST -> magnitudes
    loss = (out * torch.randn_like(out)).sum()
    loss.backward()
    assert float(pol.weights.grad.abs().sum()) > 0
    assert float(pol.weights.grad.abs().gt(0).sum()) > 16  # reaches sub-policies not drawn, too
    assert float(pol.probabilities.grad.abs().sum()) > 0
    assert float(pol.magnitudes.grad.abs().sum()) > 0
    # the magnitude gradient is straight-through: d out / d m = 1 per pixel of an applied op
    pol.zero_grad()
    pol(x, sample).sum().backward()
    applied = gates.detach().sum(0)
    assert float(pol.magnitudes.grad.abs().sum()) == pytest.approx(
        float(applied.sum()) * 3 * 32 * 32, rel=1e-4
    )


def test_policy_sample_is_reusable_and_entropy() -> None:
    pol = A.AugmentPolicy()
    x = torch.rand(4, 3, 32, 32)
    s = pol.draw(4, torch.Generator().manual_seed(0))
    torch.testing.assert_close(pol(x, s), pol(x, s))
    assert pol.entropy() == pytest.approx(float(np.log(105)), rel=1e-5)
    top = pol.top(3)
    assert len(top) == 3 and set(top[0]) == {"ops", "prob", "mag", "weight"}


def test_policy_runs_on_float64_and_clamps() -> None:
    pol = A.AugmentPolicy().double()
    x = torch.rand(4, 3, 32, 32, dtype=torch.float64)
    out = pol(x, pol.draw(4, torch.Generator().manual_seed(0)))
    assert out.dtype == torch.float64 and out.shape == x.shape
    with torch.no_grad():
        pol.probabilities.add_(2)
        pol.magnitudes.sub_(2)
    pol.clamp_()
    assert float(pol.probabilities.detach().max()) == 1.0 and float(pol.magnitudes.detach().min()) == 0.0
    assert F.softmax(pol.weights.detach(), -1).sum().item() == pytest.approx(1.0)
