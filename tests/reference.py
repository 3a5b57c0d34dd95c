"""Plain float64 references of the paper's equations, shared by the tests."""

import torch
import torch.nn.functional as F

from lruts import LRU


def reference_lru(layer: LRU, u: torch.Tensor, x0=None):
    """The paper's equations, written out step by step in float64/complex128."""
    p = {k: v.detach().double() for k, v in layer.named_parameters()}
    lam = torch.exp(torch.complex(-torch.exp(p["nu_log"]), torch.exp(p["theta_log"])))
    gamma = torch.exp(p["gamma_log"])
    B = torch.complex(p["B_re"], p["B_im"])
    C = torch.complex(p["C_re"], p["C_im"])
    u = u.double()
    x = torch.zeros(u.shape[0], layer.d_state, dtype=torch.complex128) if x0 is None else x0.to(torch.complex128)
    ys = []
    for t in range(u.shape[1]):
        x = lam * x + gamma * (u[:, t].to(torch.complex128) @ B.T)
        ys.append((x @ C.T).real + p["D"] * u[:, t])
    y = torch.stack(ys, dim=1)
    if layer.bidirectional:
        C_rev = torch.complex(p["C_re_reverse"], p["C_im_reverse"])
        xr = torch.zeros_like(x)
        rev = []
        for t in reversed(range(u.shape[1])):
            xr = lam * xr + gamma * (u[:, t].to(torch.complex128) @ B.T)
            rev.append((xr @ C_rev.T).real)
        y = y + torch.stack(rev[::-1], dim=1)
    return y, x


def reference_stack(model, u):
    """A DeepLRU + decoder in eval mode, written out in float64 from its parameters."""
    body = model.body
    x = u.double() @ body.encoder.weight.double().T + body.encoder.bias.double()
    for block in body.blocks:

        def norm(z, block=block):
            n = block.norm
            if isinstance(n, torch.nn.BatchNorm1d):
                return (z - n.running_mean.double()) / torch.sqrt(
                    n.running_var.double() + n.eps
                ) * n.weight.double() + n.bias.double()
            return F.layer_norm(z, z.shape[-1:], n.weight.double(), n.bias.double(), n.eps)

        h, _ = reference_lru(block.lru, norm(x) if block.prenorm else x)
        h = F.gelu(h, approximate="tanh")
        w, b = block.glu.proj.weight.double(), block.glu.proj.bias.double()
        if block.glu.kind == "full":
            a, g = (h @ w.T + b).chunk(2, dim=-1)
            h = a * torch.sigmoid(g)
        else:
            h = h * torch.sigmoid(h @ w.T + b)
        x = x + h
        if not block.prenorm:
            x = norm(x)
    return x @ model.decoder.weight.double().T + model.decoder.bias.double()
