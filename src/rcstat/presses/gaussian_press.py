"""``GaussianRCPress``: expected RC under a Gaussian model of future queries (docs/method.md §3).

When the cache is compressed before the question is known, the last context tokens are a poor
stand-in for the queries to come. Here future queries are modelled as ``q ~ N(μ, Σ)``, fitted from
the prefill's queries and averaged over the RoPE rotations of the next ``n_future_positions``
positions (kvpress's ``ExpectedAttentionPress`` computes the same statistics). Then key ``i``'s logit
``X_i = s·<q, k_i>`` is Gaussian with mean ``s·μ·k_i`` and variance ``s²·k_iᵀΣk_i``; with ``Y`` the
window's self-contextualization (its mean and variance), ``X_i − Y`` is taken as Gaussian with mean
``m`` and standard deviation ``σ``, and ``E[(X − Y)^+] = m·Φ(m/σ) + σ·φ(m/σ)`` in closed form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from kvpress import ExpectedAttentionPress
from torch import nn

from rcstat.presses.rcstat_press import RCStatPress


@dataclass
class GaussianRCPress(RCStatPress):
    """RC of every key against Gaussian future queries (a kvpress scorer); the repr is the record."""

    n_future_positions: int = 512

    def key_rc(
        self,
        module: nn.Module,
        hidden_states: torch.Tensor,
        keys: torch.Tensor,
        x: torch.Tensor,
        y: torch.Tensor,
    ) -> torch.Tensor:
        stats = ExpectedAttentionPress(n_future_positions=self.n_future_positions, n_sink=self.sink_tokens)
        mu, cov = stats.get_query_statistics(module, hidden_states)  # (b, H, d), (b, H, d, d)
        b, heads, d = mu.shape
        k = keys[:, :, : x.shape[-1]].float()  # (b, H_kv, n − w, d): the keys before the window
        k = k[:, :, None].expand(-1, -1, heads // k.shape[1], -1, -1).reshape(b, heads, -1, d)
        scale = float(module.scaling)
        mean = scale * torch.einsum("bhd,bhnd->bhn", mu.float(), k) - y.mean(-1, keepdim=True)
        var = scale**2 * torch.einsum("bhnd,bhde,bhne->bhn", k, cov.float(), k) + y.var(-1, keepdim=True)
        sd = var.clamp_min(1e-12).sqrt()
        z = mean / sd
        return mean * _cdf(z) + sd * torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def _cdf(z: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1 + torch.erf(z / math.sqrt(2)))
