"""The forecasting loss: point MSE/MAE plus pinball, over the observed targets only."""

import pytest
import torch

from lruts.forecasting.losses import forecast_loss, pinball_loss


def test_point_loss_is_mse_or_mean_absolute_error():
    out, y = torch.tensor([[[1.0], [4.0]]]), torch.tensor([[0.0, 2.0]])  # errors 1 and 2
    assert forecast_loss(out, y, []).item() == pytest.approx((1 + 4) / 2)
    assert forecast_loss(out, y, [], "mae").item() == pytest.approx((1 + 2) / 2)


def test_pinball_loss_matches_its_definition():
    pred = torch.tensor([[1.0, 2.0]])
    y = torch.tensor([1.5])
    # q=0.1: under-forecast by 0.5 → 0.1·0.5; q=0.9: over-forecast by 0.5 → 0.1·0.5
    assert pinball_loss(pred, y, [0.1, 0.9]).item() == pytest.approx((0.05 + 0.05) / 2)


@pytest.mark.parametrize("point", ["mse", "mae"])
def test_a_masked_target_adds_nothing_and_gets_zero_gradient(point):
    torch.manual_seed(0)
    out = torch.randn(4, 6, 3, 3, requires_grad=True)  # (B, H, C, 1 + 2 quantiles)
    y = torch.randn(4, 6, 3)
    y_mask = torch.rand(4, 6, 3) > 0.3
    y_missing = torch.where(y_mask, y, torch.nan)  # what a gap in the data looks like
    loss = forecast_loss(out, y_missing, [0.1, 0.9], point, y_mask=y_mask)
    (grad,) = torch.autograd.grad(loss, out)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    assert (grad[~y_mask] == 0).all() and (grad[y_mask] != 0).any()
    # the observed targets alone, as a flat batch, give the same loss
    observed = forecast_loss(out[y_mask][None, None], y[y_mask][None, None], [0.1, 0.9], point)
    torch.testing.assert_close(loss, observed)


def test_an_all_observed_mask_changes_nothing():
    out, y = torch.randn(2, 5, 4, 3), torch.randn(2, 5, 4)
    unmasked = forecast_loss(out, y, [0.2, 0.8])
    torch.testing.assert_close(forecast_loss(out, y, [0.2, 0.8], y_mask=torch.ones_like(y, dtype=torch.bool)), unmasked)
