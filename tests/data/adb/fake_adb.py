#!/usr/bin/env python3
"""A stand-in for adb with one device (tests): it replays a benchmark_model output and keeps pushed files in
$FAKE_ADB_DIR. FAKE_ADB_SERIAL names its device; FAKE_ADB_OUTPUT the output to replay (or 'crash');
FAKE_ADB_NO_BINARY set: the benchmark binary is not installed."""

import os
import shlex
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FEATURES = (HERE.parent / "hosts" / "arm-cortex-a76-features.txt").read_text().strip()  # a Cortex-A76's real flags
args = sys.argv[1:]
if args[:1] != ["-s"] or len(args) < 3:
    sys.exit("usage: adb -s SERIAL push|shell ...")
serial, verb, rest = args[1], args[2], args[3:]
if serial != os.environ.get("FAKE_ADB_SERIAL"):
    sys.stderr.write(f"adb: device '{serial}' not found\n")
    sys.exit(1)
store = Path(os.environ["FAKE_ADB_DIR"])
if verb == "push":
    shutil.copy(rest[0], store / Path(rest[1]).name)
    print(f"{rest[0]}: 1 file pushed, 0 skipped.")
    sys.exit(0)
words = shlex.split(rest[0])
replies = {("getprop", "ro.product.model"): "Test Phone", ("getprop", "ro.soc.model"): "",
           ("getprop", "ro.build.version.release"): "14", ("nproc",): "4", ("uname", "-m"): "aarch64"}
if tuple(words) in replies:
    print(replies[tuple(words)])
elif words[:2] == ["cat", "/proc/cpuinfo"]:
    for core in range(4):
        print(f"processor\t: {core}\nBogoMIPS\t: 108.00\nFeatures\t: {FEATURES}\nCPU implementer\t: 0x41\n"
              f"CPU architecture: 8\nCPU variant\t: 0x4\nCPU part\t: 0xd0b\nCPU revision\t: 1\n")
elif words[0] == "ls":
    if os.environ.get("FAKE_ADB_NO_BINARY"):
        sys.stderr.write(f"ls: {words[1]}: No such file or directory\n")
        sys.exit(1)
    print(words[1])
elif words[0] == "rm":
    (store / Path(words[-1]).name).unlink(missing_ok=True)
elif words[0].endswith("benchmark_model"):
    graph = next(w.split("=", 1)[1] for w in words if w.startswith("--graph="))
    if not (store / Path(graph).name).is_file():
        print(f"ERROR: Could not open '{graph}'.")
        sys.exit(1)
    replay = os.environ["FAKE_ADB_OUTPUT"]
    if replay == "crash":
        sys.stderr.write("Segmentation fault\n")
        sys.exit(139)
    print(Path(replay).read_text().replace("/data/local/tmp/model.tflite", graph))
else:
    sys.stderr.write(f"/system/bin/sh: {words[0]}: inaccessible or not found\n")
    sys.exit(127)
