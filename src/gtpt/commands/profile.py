"""gtpt profile --model NAME [--keep-rates ...] [--json]"""
from __future__ import annotations

import json

from ..config import PRESETS


def add_arguments(p):
    p.add_argument("--model", nargs="+", default=["gtpt-t-body"], choices=list(PRESETS) + ["all"],
                   help="preset(s) to profile; 'all' for the six")
    p.add_argument("--keep-rates", nargs=4, type=float, metavar="R",
                   help="keep rates of the 4 stages (default: the preset's)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args) -> int:
    from ..config import get_model_config
    from ..models import check_keep_rates
    from ..profile import count_cost
    names = list(PRESETS) if "all" in args.model else args.model
    rows = []
    for name in names:
        cfg = get_model_config(name)
        try:
            rates = check_keep_rates(cfg, args.keep_rates) if args.keep_rates else cfg.keep_rates
        except ValueError as e:
            print(f"gtpt profile: error: {name}: {e}")
            return 2
        rows.append({"model": name, "keep_rates": list(rates), **count_cost(cfg, rates).as_dict()})
    if args.json:
        print(json.dumps(rows if len(rows) > 1 else rows[0], indent=2))
        return 0
    print("one 1x3x256x192 image, eval mode; GMACs = paper/thop convention, "
          "full = fvcore convention incl. attention products")
    print(f"{'model':<18} {'keep rates':<22} {'params (M)':>10} {'GMACs':>8} {'GMACs full':>11}")
    for r in rows:
        kr = "/".join(f"{x:g}" for x in r["keep_rates"])
        print(f"{r['model']:<18} {kr:<22} {r['params_m']:>10.2f} {r['gmacs']:>8.3f} {r['gmacs_with_attention']:>11.3f}")
    return 0
