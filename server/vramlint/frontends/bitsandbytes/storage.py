"""How bitsandbytes stores a quantized weight on the device: bytes and element counts.

Facts of bitsandbytes 0.50.2's source (the wheel's `bitsandbytes/` package):

- 4-bit (`Params4bit._quantize` -> `functional.quantize_4bit`, functional.py:884-960):
  the packed data is `torch.empty(((n + 1) // (quant_storage.itemsize * 2), 1), dtype=quant_storage)`
  (the fake of `bitsandbytes::quantize_4bit`, _ops.py:232-235): two 4-bit values per byte;
  `absmax` is float32, one per block of `blocksize` = 64 values (functional.py:917-918, _ops.py:233-234);
  `code` is the 16-value NF4/FP4 table (`get_4bit_type`, functional.py:936), float32.
  With `compress_statistics=True` (`bnb_4bit_use_double_quant`) the absmax are quantized again
  (functional.py:938-951): `offset = absmax.mean()` (a float32 scalar), `quantize_blockwise(absmax -
  offset, blocksize=256)` gives uint8 absmax (one byte per block) and `state2` holding the float32
  absmax of each 256 blocks plus a copy of the 256-value "dynamic" code (float32).
- 8-bit (`Int8Params._quantize`, nn/modules.py:737-748 -> `int8_vectorwise_quant`, functional.py:1655;
  its fake, _ops.py:95-105): the weight becomes int8 of the same shape (`CB` is the same tensor) and
  `SCB`, one float32 scale per row (`A.numel() // A.shape[-1]`).

transformers (`num_parameters`, modeling_utils.py) and peft (`get_nb_trainable_parameters`,
peft/peft_model.py) count a Params4bit as `numel() * 2 * element_size()`: the values it stands for.
tests/test_quantization.py checks these bytes against bitsandbytes' own functions on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

BLOCKSIZE_4BIT = 64  # Params4bit's default blocksize (nn/modules.py:230-231)
NESTED_BLOCKSIZE = 256  # quantize_blockwise(absmax - offset, blocksize=256), functional.py:940
CODE_4BIT_VALUES = 16  # the NF4 / FP4 table
CODE_DYNAMIC_VALUES = 256  # the "dynamic" 8-bit table of the nested state
FLOAT32 = 4


def _blocks(n: int, size: int) -> int:
    return -(n // -size)


@dataclass(frozen=True)
class Packed4bit:
    """One 4-bit weight of `numel` values: its packed data and its quantization state."""

    numel: int
    storage_itemsize: int = 1  # quant_storage: uint8 by default, bf16/fp32 for FSDP
    double_quant: bool = False
    blocksize: int = BLOCKSIZE_4BIT

    @property
    def packed_elements(self) -> int:
        return (self.numel + 1) // (self.storage_itemsize * 2)

    @property
    def data_bytes(self) -> int:
        return self.packed_elements * self.storage_itemsize

    @property
    def state_bytes(self) -> int:
        """absmax (+ the nested state), and the 4-bit code table."""
        blocks = _blocks(self.numel, self.blocksize)
        code = CODE_4BIT_VALUES * FLOAT32
        if not self.double_quant:
            return blocks * FLOAT32 + code
        nested = _blocks(blocks, NESTED_BLOCKSIZE) * FLOAT32 + CODE_DYNAMIC_VALUES * FLOAT32
        return blocks + nested + FLOAT32 + code  # uint8 absmax, state2, offset, code


def int8_state_bytes(rows: int) -> int:
    """SCB: one float32 scale per output row."""
    return rows * FLOAT32
