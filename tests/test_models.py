import pytest
import torch

from deepiqa_core import VARIANTS, DeepIQA, count_parameters, get_variant
from deepiqa_core.models import DEFAULT_EPSILON

from .conftest import trained_like


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        ("diqam-fr", 5_499_681),
        ("wadiqam-fr", 6_287_138),
        ("diqam-nr", 4_975_393),
        ("wadiqam-nr", 5_238_562),
    ],
)
def test_parameter_counts_match_the_paper_architecture(variant: str, expected: int) -> None:
    assert count_parameters(DeepIQA(variant)) == expected


def test_conv_stack_alone_has_the_published_parameter_count() -> None:
    assert count_parameters(DeepIQA("diqam-nr").features) == 4_712_224


def test_a_patch_becomes_a_512_vector() -> None:
    model = DeepIQA("diqam-nr").eval()
    assert model.extract(torch.rand(5, 3, 32, 32)).shape == (5, 512)


def test_unknown_variant_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown variant"):
        get_variant("wadiqam")
    assert set(VARIANTS) == {"diqam-nr", "wadiqam-nr", "diqam-fr", "wadiqam-fr"}


def test_eval_mode_is_deterministic_and_train_mode_uses_dropout() -> None:
    model = trained_like("wadiqam-nr")
    x = torch.rand(16, 3, 32, 32)
    with torch.no_grad():
        y1, a1 = model(x)
        y2, a2 = model(x)
        assert torch.equal(y1, y2) and torch.equal(a1, a2)
        model.train()
        torch.manual_seed(1)
        y3, _ = model(x)
    assert not torch.allclose(y1, y3)  # dropout 0.5 is active only in training


def test_dropout_probability_is_one_half() -> None:
    drops = [m for m in DeepIQA("wadiqam-fr").modules() if isinstance(m, torch.nn.Dropout)]
    assert len(drops) == 2 and all(d.p == 0.5 for d in drops)


def test_fr_fusion_order_is_difference_distorted_reference() -> None:
    model = DeepIQA("diqam-fr")
    f_d, f_r = torch.rand(2, 512), torch.rand(2, 512)
    fused = model.fuse(f_d, f_r)
    assert torch.equal(fused[:, :512], f_d - f_r)
    assert torch.equal(fused[:, 512:1024], f_d)
    assert torch.equal(fused[:, 1024:], f_r)


def test_weights_are_positive_with_epsilon_and_diqam_weights_are_ones() -> None:
    wa = trained_like("wadiqam-nr").eval()
    with torch.no_grad():
        wa.weight_output.bias.fill_(-1e3)  # force ReLU to zero: alpha must fall back to epsilon
        _, alpha = wa(torch.rand(4, 3, 32, 32))
    assert torch.allclose(alpha, torch.full_like(alpha, DEFAULT_EPSILON))
    _, ones = DeepIQA("diqam-nr").eval()(torch.rand(4, 3, 32, 32))
    assert torch.equal(ones, torch.ones(4))


def test_fr_model_requires_reference() -> None:
    with pytest.raises(ValueError, match="reference"):
        DeepIQA("diqam-fr").eval()(torch.rand(1, 3, 32, 32))
