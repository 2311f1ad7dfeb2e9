"""Adam and SparseAdam on torch's own kernels, without ``torch.optim.Optimizer``'s import.

``torch.optim.Optimizer`` imports the whole ``torch._dynamo`` compiler stack the first
time one of its methods runs (``add_param_group``, ``zero_grad`` and ``state_dict`` are
wrapped in ``torch._disable_dynamo``, and ``step`` imports it itself): 2.1 s of
single-threaded Python on a 2-core machine (``python -X importtime -c "import torch,
longtail.train; import torch._dynamo"``), paid by every training run and tune trial that
compiles nothing. These two classes make the same
updates (``torch._fused_adam_``, as ``torch.optim.Adam(fused=True)`` calls it; for an
embedding's rows the operations of ``torch.optim._functional.sparse_adam``, the
function ``torch.optim.SparseAdam.step`` calls, on indexed rows instead of sparse
tensors: :func:`_sparse_adam_rows`), with the same state and the same ``state_dict``
layout, and import nothing more.
``tests/train/test_optim.py`` holds them to torch's optimizers bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Protocol

import torch
from torch.optim import _functional

__all__ = ["Adam", "Optimizer", "SparseAdam"]

StateDict = dict[str, Any]


class Optimizer(Protocol):
    """What the training loop and the checkpoints use of an optimizer."""

    def zero_grad(self, set_to_none: bool = True) -> None: ...  # noqa: D102

    def step(self) -> None: ...  # noqa: D102

    def state_dict(self) -> StateDict: ...  # noqa: D102

    def load_state_dict(self, state_dict: StateDict) -> None: ...  # noqa: D102


class _Base:
    """One group of parameters with a learning rate, Adam's betas and eps; a state per parameter."""

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        *,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.params = list(params)
        if not self.params:
            msg = "an optimizer needs at least one parameter"
            raise ValueError(msg)
        if not lr > 0.0:
            msg = f"the learning rate must be positive. Got {lr} instead."
            raise ValueError(msg)
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0) or not eps > 0.0:
            msg = f"Adam needs 0 <= betas < 1 and eps > 0. Got betas={betas}, eps={eps} instead."
            raise ValueError(msg)
        for p in self.params:
            self._check(p)
        self.lr, self.betas, self.eps = float(lr), (float(betas[0]), float(betas[1])), float(eps)
        self.state: dict[int, dict[str, Any]] = {}

    def _check(self, p: torch.Tensor) -> None:
        """Raise ValueError for a parameter this optimizer cannot update."""

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop (or zero) every parameter's gradient."""
        for p in self.params:
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.detach_().zero_()

    def _group(self) -> dict[str, Any]:
        return {"lr": self.lr, "betas": self.betas, "eps": self.eps}

    def state_dict(self) -> StateDict:
        """The state as ``torch.optim`` lays it out: per parameter index, and one group."""
        group = self._group() | {"params": list(range(len(self.params)))}
        return {"state": {i: dict(s) for i, s in self.state.items()}, "param_groups": [group]}

    def load_state_dict(self, state_dict: StateDict) -> None:
        """Restore a :meth:`state_dict` of an optimizer over the same parameters.

        Raises
        ------
        ValueError
            The state is of a different number of parameters or groups.
        """
        groups = state_dict["param_groups"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(self.params):
            msg = (
                f"the state is of {[len(g['params']) for g in groups]} parameters per group; "
                f"this optimizer has one group of {len(self.params)}"
            )
            raise ValueError(msg)
        group = groups[0]
        self.lr, self.eps = float(group["lr"]), float(group["eps"])
        self.betas = (float(group["betas"][0]), float(group["betas"][1]))
        state: dict[int, dict[str, Any]] = {}
        for raw_index, entry in state_dict["state"].items():
            index = group["params"].index(int(raw_index))
            p = self.params[index]
            state[index] = {
                # As torch.optim: moments take the parameter's device and dtype, the step stays.
                key: value.to(p.device, p.dtype) if key != "step" else self._step_value(value, p)
                for key, value in entry.items()
            }
        self.state = state

    def _step_value(self, value: Any, p: torch.Tensor) -> Any:
        return value


class Adam(_Base):
    """Adam over dense gradients, torch's fused kernel: ``torch.optim.Adam(fused=True)``'s update.

    No weight decay, amsgrad or gradient scaling, which the project does not use. The
    step count is a float32 tensor on the parameter's device, as the fused kernel wants.
    """

    def _check(self, p: torch.Tensor) -> None:
        if not (p.is_floating_point() and p.device.type in ("cpu", "cuda", "mps")):
            msg = (
                "the fused Adam needs floating-point CPU, CUDA or MPS tensors. "
                f"Got {p.dtype} on {p.device}."
            )
            raise ValueError(msg)

    def _group(self) -> dict[str, Any]:
        return super()._group() | {"weight_decay": 0.0, "amsgrad": False, "fused": True}

    def _step_value(self, value: Any, p: torch.Tensor) -> Any:
        return torch.as_tensor(value, dtype=torch.float32).to(p.device)

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter with a gradient."""
        by_kind: dict[tuple[torch.device, torch.dtype], list[list[torch.Tensor]]] = {}
        for i, p in enumerate(self.params):
            grad = p.grad
            if grad is None:
                continue
            if grad.is_sparse:
                msg = "Adam got a sparse gradient: use SparseAdam for those parameters"
                raise RuntimeError(msg)
            s = self.state.get(i)
            if s is None:
                s = self.state[i] = {
                    "step": torch.zeros((), dtype=torch.float32, device=p.device),
                    "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                    "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
                }
            lists = by_kind.setdefault((p.device, p.dtype), [[], [], [], [], []])
            for into, value in zip(
                lists, (p, grad, s["exp_avg"], s["exp_avg_sq"], s["step"]), strict=True
            ):
                into.append(value)
        beta1, beta2 = self.betas
        for params, grads, exp_avgs, exp_avg_sqs, steps in by_kind.values():
            torch._foreach_add_(steps, 1)
            torch._fused_adam_(
                params,
                grads,
                exp_avgs,
                exp_avg_sqs,
                [],
                steps,
                amsgrad=False,
                lr=self.lr,
                beta1=beta1,
                beta2=beta2,
                weight_decay=0.0,
                eps=self.eps,
                maximize=False,
                grad_scale=None,
                found_inf=None,
            )


class SparseAdam(_Base):
    """Adam over sparse gradients (``Embedding(sparse=True)``): ``torch.optim.SparseAdam``'s update.

    Only the rows a batch touched move, as in torch's; the step count is a Python int.
    """

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter with a gradient."""
        # Every gradient is checked before any parameter moves.
        todo: list[tuple[torch.Tensor, torch.Tensor, dict[str, Any]]] = []
        for i, p in enumerate(self.params):
            grad = p.grad
            if grad is None:
                continue
            if not grad.is_sparse:
                msg = "SparseAdam got a dense gradient: use Adam for those parameters"
                raise RuntimeError(msg)
            s = self.state.get(i)
            if s is None:
                s = self.state[i] = {
                    "step": 0,
                    "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                    "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
                }
            s["step"] += 1
            todo.append((p, grad, s))
        beta1, beta2 = self.betas
        for p, grad, s in todo:
            exp_avg, exp_avg_sq, step = s["exp_avg"], s["exp_avg_sq"], s["step"]
            if grad.sparse_dim() != 1:  # not an embedding's rows: torch's own update
                _functional.sparse_adam(
                    [p], [grad], [exp_avg], [exp_avg_sq], [step],
                    eps=self.eps, beta1=beta1, beta2=beta2, lr=self.lr, maximize=False,
                )  # fmt: skip
                continue
            _sparse_adam_rows(
                p, grad, exp_avg, exp_avg_sq, step,
                eps=self.eps, beta1=beta1, beta2=beta2, lr=self.lr,
            )  # fmt: skip

    def _step_value(self, value: Any, p: torch.Tensor) -> Any:
        return int(value)


def _sparse_adam_rows(
    p: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    step: int,
    *,
    eps: float,
    beta1: float,
    beta2: float,
    lr: float,
) -> None:
    """``torch.optim._functional.sparse_adam``'s update of one embedding, row by row.

    The same operations in the same order, so the same bits: torch reads the touched
    rows with ``sparse_mask`` and writes them by adding sparse tensors, and this reads
    them with ``index_select`` and writes them with ``index_add_`` (the coalesced rows
    are unique, so each element gets the one addition torch's sparse add makes). That
    was about 1.8 times faster for two 50,000 x 16 tables and 1,024-row batches on one
    thread (a throwaway script); ``sparse_mask`` was the largest part of torch's.
    """
    grad = grad.coalesce()  # the update is non-linear: the rows must be unique
    values = grad._values()
    if values.numel() == 0:
        return
    rows = grad._indices()[0]
    old_avg = exp_avg.index_select(0, rows)
    avg_update = values.sub(old_avg).mul_(1 - beta1)
    exp_avg.index_add_(0, rows, avg_update)
    old_sq = exp_avg_sq.index_select(0, rows)
    sq_update = values.pow(2).sub_(old_sq).mul_(1 - beta2)
    exp_avg_sq.index_add_(0, rows, sq_update)
    numer = avg_update.add_(old_avg)
    denom = sq_update.add_(old_sq).sqrt_().add_(eps)
    step_size = lr * math.sqrt(1 - beta2**step) / (1 - beta1**step)
    p.index_add_(0, rows, -step_size * numer.div_(denom))
