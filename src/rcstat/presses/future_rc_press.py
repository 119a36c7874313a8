"""``FutureRCPress``: a key's RC against the window or against the queries to come, whichever is larger.

:class:`RCStatPress` asks how far the window's queries lift a key above the window's own floor;
:class:`GaussianRCPress` asks the same of Gaussian future queries fitted on the whole prefill. Both
are expected RC in logit units above the same floor ``Y``, so their maximum needs no rescaling: a key
is kept when either the window (the question, when it is there) or the prompt's general queries
contextualize it (docs/method.md §3).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rcstat.presses.gaussian_press import GaussianRCPress
from rcstat.presses.rcstat_press import RCStatPress


@dataclass
class FutureRCPress(GaussianRCPress):
    """``max(window RC, Gaussian future RC)`` of every key (a kvpress scorer); the repr is the record."""

    def key_rc(
        self,
        module: nn.Module,
        hidden_states: torch.Tensor,
        keys: torch.Tensor,
        x: torch.Tensor,
        y: torch.Tensor,
    ) -> torch.Tensor:
        window = RCStatPress.key_rc(self, module, hidden_states, keys, x, y)
        return torch.maximum(window, super().key_rc(module, hidden_states, keys, x, y))
