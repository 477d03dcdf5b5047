"""Run every benchmark, print one table per figure and write benchmarks/results/latest.json.

    $ make bench        # or: .venv/bin/python -m benchmarks [name ...]

Speed targets live here, as ratios measured side by side in one run, never in timed tests.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from datetime import datetime, timezone

from benchmarks import (accuracy_blame, accuracy_levers, int16_activations, first_visit, accuracy_truth, cluster_builds, mixed_precision, new_host, cache_hit, channel_pruning, demo_start, fidelity, from_scratch, int8_fallback, keras_vs_tflite,
                        optimizations, own_model, peak_memory, preview, remote_target, results_scale, search_budget, search_hypervolume, server_views, small_data_defaults, stage_reuse,
                        real_models, suite_time, worker)
from benchmarks.report import print_table, save
from explorer.measure import host

SECTIONS = {  # name -> (title, module), in the order of the issue
    "demo_start": ("1. Demo start", demo_start),
    "cache_hit": ("2. Cache hit", cache_hit),
    "from_scratch": ("3. One variant from scratch", from_scratch),
    "stage_reuse": ("4. Stage reuse", stage_reuse),
    "keras_vs_tflite": ("5. Inference: plain Keras vs TFLite (reference CNN)", keras_vs_tflite),
    "optimizations": ("6. What the optimizations buy on this CPU (depth 2, Fashion-MNIST)", optimizations),
    "fidelity": ("7. Harness fidelity", fidelity),
    "worker": ("8. Builds and measurements out of the web server", worker),
    "preview": ("9. Latency preview before training", preview),
    "int8_fallback": ("10. Full int8 without the op XNNPACK cannot run", int8_fallback),
    "channel_pruning": ("11. Channel pruning: fewer filters, less work", channel_pruning),
    "small_data_defaults": ("12. Small data: defaults chosen by evidence, held on datasets nobody tuned them for",
                            small_data_defaults),
    "accuracy_levers": ("13. Accuracy levers and class imbalance", accuracy_levers),
    "search_hypervolume": ("14. Search vs random vs the default grid, at equal wall time", search_hypervolume),
    "results_scale": ("15. Results that scale with search: server time per Pareto view", results_scale),
    "accuracy_truth": ("16. Accuracy you can trust: intervals that hold further seeds", accuracy_truth),
    "new_host_measure_all": ("17. A new host measured within 30 s: a quick first pass, then the full protocol", new_host),
    "mixed_precision": ("18. Per-layer precision chosen by this host's op profiles", mixed_precision),
    "server_per_view": ("19. Team demos: what a browser's view costs the server", server_views),
    "remote_target": ("20. Latency on the device you deploy to: the agent through a transport vs here", remote_target),
    "peak_memory": ("21. Will it fit: planned peak RAM against TensorFlow Lite Micro's allocator", peak_memory),
    "own_model": ("22. Your own model: two imported networks through every quantization mode", own_model),
    "cluster_builds": ("23. Every build on a Ray cluster: eight variants of an upload there against here", cluster_builds),
    "search_budget": ("24. Search that keeps its budget: 5 and 10 minutes, economizing and not, three seeds",
                      search_budget),
    "suite_time": ("25. The test suite from a fresh clone, as a newcomer runs it", suite_time),
    "first_visit": ("26. A first visit on a new host: the chart, then every variant measured here", first_visit),
    "real_models": ("27. Models as users write them: Keras 3 and tf-keras files, every lever, 500 broken files",
                    real_models),
    "accuracy_blame": ("28. Where the accuracy goes: full int8 against precision auto:0.5", accuracy_blame),
    "int16x8": ("29. int16 activations: accuracy, latency and TFLite Micro's arena beside fp32 and int8",
                int16_activations),
}


def _section(name: str) -> str:
    """A section's name (argparse's choices= refuses an empty list with nargs='*' on Python 3.11)."""
    if name not in SECTIONS:
        raise argparse.ArgumentTypeError(f"no section {name!r}; sections: {', '.join(SECTIONS)}")
    return name


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*", type=_section, metavar="NAME",
                   help="the sections to run (default: all): " + ", ".join(SECTIONS))
    chosen = p.parse_args(argv).names or list(SECTIONS)  # an unknown name fails here, before hours of sections
    results, t0 = {}, time.perf_counter()
    for name in chosen:
        title, module = SECTIONS[name]
        start = time.perf_counter()
        results[title] = module.run()
        print_table(f"{title} ({time.perf_counter() - start:.0f} s)", results[title])
        sys.stdout.flush()
        context = {**host.measurement_context(threads=1), "seconds": round(time.perf_counter() - t0, 1),
                   "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        path = save({title: results[title]}, context)  # after every section: a late failure keeps the rest
    print(f"\nHost: {context['host']['label']}; all benchmarks took {context['seconds']:.0f} s; wrote {path}")
    subprocess.run([sys.executable, str(Path(__file__).resolve().parent.parent / "scripts" / "benchmarks_doc.py")],
                   check=True)  # docs/benchmarks.md follows the figures
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
