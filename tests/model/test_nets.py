import pytest
import torch

from stgan_cli.model.archs import paper
from stgan_cli.model import nets


@pytest.mark.parametrize("size,score", [((120, 160), (4, 5)), ((144, 144), (5, 5)), ((64, 80), (2, 3))])
def test_shapes(size, score):
    torch.manual_seed(0)
    model = nets.STGAN(warps=2, image_size=size)
    bg, fg = torch.rand(3, 3, *size), torch.rand(3, 4, *size)
    pred = model(bg, fg)
    assert len(pred.params) == 3 and len(pred.warped) == 3
    assert all(p.shape == (3, 8) for p in pred.params)
    assert all(w.shape == (3, 4, *size) for w in pred.warped)
    assert model.discriminator(bg).shape == (3, 1, *score)


def test_paper_feature_sizes():
    # 120x160 halves to 4x5 after five convs, with 512 + 7 channels: the paper's flatten size.
    assert paper.Generator((120, 160)).fc.in_features == (512 + 7) * 4 * 5
    assert paper._same_pad(15, 4, 2) == (1, 2)  # TF SAME: 15 -> 8


def test_untrained_generators_are_identity():
    torch.manual_seed(0)
    model = nets.STGAN(warps=3, discriminator=False)
    bg, fg = torch.rand(2, 3, 120, 160), torch.rand(2, 4, 120, 160)
    pred = model(bg, fg)
    assert all(torch.count_nonzero(p) == 0 for p in pred.params)
    torch.testing.assert_close(pred.warped[-1], pred.warped[0])


def test_iterations_prefix_and_bounds():
    torch.manual_seed(0)
    model = nets.STGAN(warps=3, discriminator=False)
    for gen in model.generators:
        torch.nn.init.normal_(gen.out.weight, std=1e-3)
    bg, fg = torch.rand(1, 3, 120, 160), torch.rand(1, 4, 120, 160)
    full, two = model(bg, fg), model(bg, fg, iterations=2)
    assert len(two.params) == 3
    torch.testing.assert_close(two.params[2], full.params[2])
    assert not torch.equal(full.params[3], full.params[2])
    with pytest.raises(ValueError):
        model(bg, fg, iterations=4)


def test_generator_gradients_reach_first_layer():
    model = nets.STGAN(warps=1, discriminator=False)
    torch.nn.init.normal_(model.generators[0].out.weight, std=1e-2)
    bg, fg = torch.rand(2, 3, 120, 160), torch.rand(2, 4, 120, 160)
    model(bg, fg).warped[-1].sum().backward()
    assert model.generators[0].convs[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("size", [(120, 160), (15, 20), (8, 10), (7, 5)])
def test_same_conv_fast_path_equals_explicit_padding(size):
    torch.manual_seed(0)
    conv = paper.SameConv(3, 4, 4, stride=2).double()
    x = torch.rand(2, 3, *size, dtype=torch.float64)
    top, bottom = paper._same_pad(size[0], 4, 2)
    left, right = paper._same_pad(size[1], 4, 2)
    reference = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (left, right, top, bottom)), conv.weight,
                                           conv.bias, 2)
    torch.testing.assert_close(conv(x), reference, rtol=0, atol=1e-12)


def test_fused_critic_scores_equal_separate_ones():
    from stgan_cli.training import losses

    torch.manual_seed(0)
    d = nets.Discriminator().double()
    real, fake = torch.rand(3, 3, 64, 80, dtype=torch.float64), torch.rand(3, 3, 64, 80, dtype=torch.float64)
    torch.manual_seed(1)
    loss, parts = losses.critic_loss(d, real, fake, 10.0)
    torch.manual_seed(1)
    gp = losses.gradient_penalty(d, real, fake)
    separate = losses.critic(d, fake).mean() - losses.critic(d, real).mean() + 10.0 * gp
    torch.testing.assert_close(loss, separate, rtol=1e-12, atol=1e-12)
