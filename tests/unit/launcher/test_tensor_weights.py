"""The torch-free parts of ``tensor_weights``: the model layout, placement and the CUDA memory cap.

The parts that move tensors run under torch in ``test_tensor_weights_torch.py``.
"""

from __future__ import annotations

import types

import pytest

from launcher import errors, tensor_weights

GIB = 1 << 30


@pytest.mark.parametrize("gib", [0.001, 0.03, 1, 8, 16, 64, 140])
def test_layout_fills_the_requested_size(gib: float) -> None:
    target = int(gib * GIB)
    layout = tensor_weights.llama_layout(target)
    total = sum(s.numel for s in layout) * 2
    assert total <= target
    assert total >= target * (0.96 if gib >= 1 else 0.9)


def test_sixteen_gib_is_shaped_like_llama_8b() -> None:
    layout = tensor_weights.llama_layout(16 * GIB)
    names = [s.name for s in layout]
    assert len(layout) == 291  # Llama-3.1-8B has 291 tensors with its LM head
    assert len(set(names)) == len(names)
    assert names[0] == "model.embed_tokens.weight"
    assert names[-2:] == ["model.norm.weight", "lm_head.weight"]
    by_name = {s.name: s.shape for s in layout}
    hidden = by_name["model.norm.weight"][0]
    assert by_name["model.layers.31.self_attn.k_proj.weight"] == (hidden // 4, hidden)
    assert by_name["model.layers.0.mlp.gate_proj.weight"] == (int(hidden * 3.5), hidden)
    assert by_name["lm_head.weight"] == by_name["model.embed_tokens.weight"]


def test_a_tiny_request_still_gets_one_whole_model() -> None:
    layout = tensor_weights.llama_layout(1)
    assert {s.name for s in layout} >= {"model.embed_tokens.weight", "model.layers.0.mlp.down_proj.weight"}


def test_layout_refuses_nonpositive_sizes() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        tensor_weights.llama_layout(0)


def test_placement_keeps_runs_contiguous_and_uses_every_device() -> None:
    where = tensor_weights.placement(10, ["cuda:0", "cuda:1", "cuda:2"])
    assert where == ["cuda:0"] * 4 + ["cuda:1"] * 3 + ["cuda:2"] * 3
    assert tensor_weights.placement(3, ["cpu"]) == ["cpu"] * 3
    with pytest.raises(ValueError, match="at least one device"):
        tensor_weights.placement(3, [])


def _fake_torch(free: int, total: int) -> types.SimpleNamespace:
    cuda = types.SimpleNamespace(mem_get_info=lambda _device: (free, total))
    return types.SimpleNamespace(cuda=cuda, device=lambda name: name)


@pytest.mark.parametrize(
    ("free", "total", "cap", "expected"),
    [
        pytest.param(60, 100, None, 60, id="no-cap-is-what-the-driver-says"),
        pytest.param(60, 100, 50, 10, id="cap-counts-what-others-use"),
        pytest.param(60, 100, 30, 0, id="over-the-cap-is-zero"),
        pytest.param(10, 100, 1000, 10, id="cap-above-the-card-changes-nothing"),
    ],
)
def test_cuda_memory_cap(free: int, total: int, cap: int | None, expected: int) -> None:
    memory = tensor_weights.CudaMemory(_fake_torch(free, total), cap)
    assert memory.available_bytes("cuda:0") == expected


def test_error_statuses() -> None:
    assert errors.InsufficientDeviceMemory.http_status == 507
    assert errors.InsufficientHostMemory.http_status == 507
    assert errors.WeightsCorrupted.http_status == 500
