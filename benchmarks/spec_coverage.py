"""Acceptance run of automatic spec derivation on timm families, at each model's native input size.

For each architecture: build it with random weights (``pretrained=False``, timm's own input size
and classes), derive its spec on one core (trace, walk, assemble, check: timed together), record
the coverage and the frozen groups by reason, then plant a random permutation of every group in
the weights and re-align with weight matching (orders forward, random, backward until one is
exact). Prints the Markdown table of docs/specs.md and appends one JSON line per model to
``--out`` if given.

    .venv/bin/python benchmarks/spec_coverage.py                 # the issue-11 acceptance list
    .venv/bin/python benchmarks/spec_coverage.py cspresnet50 'res2net*'   # names or patterns
    .venv/bin/python benchmarks/spec_coverage.py --no-matching ...         # coverage and time only
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import timm
import torch

from ridgeline.core.plugin_host.host import registries
from ridgeline.core.symmetry.report import format_spec_table, spec_row
from ridgeline.plugins.aligners.weight_matching import recover_planted

# the models issue 11 names, then others of their families, then the architectures already
# derived before it (which must not lose coverage)
NAMED = ["cspresnet50", "res2net50_14w_8s", "cait_xxs24_224", "beit_base_patch16_224",
         "eva02_tiny_patch14_224", "hgnetv2_b0", "pvt_v2_b0", "swin_tiny_patch4_window7_224",
         "edgenext_xx_small", "ghostnet_100", "efficientvit_b0", "mobilevit_xxs", "resmlp_12_224",
         "dla34"]
FAMILIES = ["cspdarknet53", "cs3darknet_s", "res2net50_26w_4s", "res2next50", "cait_xxs36_224",
            "beitv2_base_patch16_224", "eva02_small_patch14_224", "hgnetv2_b1", "pvt_v2_b1",
            "swinv2_cr_tiny_224", "edgenext_x_small", "ghostnetv2_100", "efficientvit_b1",
            "mobilevit_xs", "mobilevitv2_050", "resmlp_24_224"]
# the audit of main after issue 11: RMSNorm (test_vit4) and EvoNorm's group statistics
NORMS = ["test_vit4", "test_efficientnet_evos", "ese_vovnet39b_evos", "regnetz_b16_evos",
         "regnetz_c16_evos", "regnetz_d8_evos", "resnetv2_50d_evos"]
BEFORE = ["resnet18", "resnet50", "vgg11_bn", "densenet121", "efficientnet_b0",
          "mobilenetv3_small_100", "convnext_atto", "regnetx_002", "vit_tiny_patch16_224",
          "deit_tiny_patch16_224", "mixer_s16_224"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="architectures or fnmatch patterns (default: the list)")
    parser.add_argument("--no-matching", action="store_true", help="skip the planted-permutation check")
    parser.add_argument("--out", help="append one JSON line per model to this file")
    args = parser.parse_args()
    torch.set_num_threads(1)
    names = [n for pattern in args.names
             for n in (timm.list_models(pattern) if "*" in pattern else [pattern])]
    names = names or [*NAMED, *FAMILIES, *NORMS, *BEFORE]
    regs = registries()
    rows = []
    for name in names:
        model = regs.models.create("timm", arch=name)
        row = spec_row(name, model)
        record = {"model": name, "input": list(model.input_shape), "coverage": row.coverage,
                  "groups": row.groups, "hidden_units": row.hidden_units, "frozen": row.frozen,
                  "seconds": row.seconds, "worst_ratio": row.worst_ratio, "error": row.error,
                  "date": time.strftime("%F")}
        if row.spec is not None and not args.no_matching:
            state = model.init_state(0)
            record["params"] = sum(t.numel() for t in state.values())
            distance, order, seconds, objective = recover_planted(row.spec, state)
            record.update(matching_distance=distance, matching_order=order, matching_seconds=seconds,
                          matching_objective=objective)
        rows.append(row)
        if args.out:
            with Path(args.out).open("a") as out:
                out.write(json.dumps(record) + "\n")
        table = format_spec_table([row]).splitlines()
        extra = ""
        if "matching_distance" in record:
            extra = (f"  weight matching: distance {record['matching_distance']:.3g} "
                     f"({record['matching_order']}, {record['matching_seconds']:.1f} s)")
        print(table[-1] + extra, flush=True)
    print()
    print(format_spec_table(rows))


if __name__ == "__main__":
    main()
