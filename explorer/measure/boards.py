"""Microcontroller boards a model may have to fit: their SRAM and flash, with where the figures come from.

A variant fits a board when its planned peak RAM (TensorFlow Lite Micro's tensor arena, explorer.measure.memory)
fits the SRAM and its .tflite fits the flash, and TFLite Micro has kernels for it. The firmware's own RAM and
code come on top: a fit here is necessary, not sufficient.
"""

from __future__ import annotations

from dataclasses import dataclass

from explorer.record import MemoryPlan

KIB = 1024


@dataclass(frozen=True)
class Board:
    name: str
    ram_bytes: int  # on-chip SRAM
    flash_bytes: int  # where the model is stored (on-chip, or the board's external chip)
    source: str  # the document the figures come from
    note: str = ""

    @property
    def ram_kb(self) -> float:
        return self.ram_bytes / 1000

    @property
    def flash_kb(self) -> float:
        return self.flash_bytes / 1000

    def fits(self, plan: MemoryPlan) -> bool:
        """Whether a model with this memory plan fits the board (and TensorFlow Lite Micro can run it)."""
        return not plan.micro_blockers and plan.peak_ram_bytes <= self.ram_bytes and plan.flash_bytes <= self.flash_bytes

    def describe(self) -> str:
        return (f"{self.name}: {self.ram_bytes // KIB:,} KiB SRAM, {_size(self.flash_bytes)} flash"
                + (f" ({self.note})" if self.note else ""))


def _size(n: int) -> str:
    return f"{n // KIB**2:,} MiB" if n % KIB**2 == 0 else f"{n // KIB:,} KiB"


BOARDS = {b.name: b for b in (
    Board("STM32F746", 320 * KIB, 1 * KIB**2, "ST DS10916, STM32F745xx/STM32F746xx datasheet: 320 KB SRAM, 1 MB flash"),
    Board("nRF52840", 256 * KIB, 1 * KIB**2, "Nordic nRF52840 Product Specification v1.7: 256 KB RAM, 1 MB flash",
          "Arduino Nano 33 BLE Sense"),
    Board("RP2040", 264 * KIB, 2 * KIB**2, "Raspberry Pi RP2040 datasheet: 264 kB SRAM; Pico datasheet: 2 MB QSPI flash",
          "flash external: the Raspberry Pi Pico's 2 MB"),
    Board("ESP32-S3", 512 * KIB, 8 * KIB**2, "Espressif ESP32-S3 datasheet v1.9: 512 KB SRAM; ESP32-S3-DevKitC-1 N8: 8 MB flash",
          "flash external: the DevKitC-1 N8's 8 MB"),
    Board("STM32H743", 512 * KIB, 2 * KIB**2, "ST DS12110, STM32H742/743 datasheet: 1 MB RAM in banks, the largest "
          "(AXI SRAM) 512 KB; 2 MB flash", "an arena is one block: its 512 KiB AXI SRAM bank, of 1 MiB in all"),
)}
