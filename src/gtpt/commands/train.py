"""gtpt train CONFIG [--opt k=v ...] [--resume auto|PATH] [--output-dir DIR] [--device cpu|cuda]

Multi-GPU: `torchrun --nproc-per-node=4 -m gtpt train configs/gtpt_t_coco.yaml` (the batch size in
the config is per device, so 4 x 64 = the recipe's global 256).
"""
from __future__ import annotations

EPILOG = """examples:
  gtpt train configs/tiny_cpu.yaml --opt train.epochs=3 data.workers=0
  gtpt train configs/gtpt_t_coco.yaml --output-dir runs/t_coco --resume auto
  torchrun --nproc-per-node=4 -m gtpt train configs/gtpt_t_coco.yaml --opt train.amp=bf16

output_dir holds config.yaml, last.ckpt (resume state), best.safetensors (EMA weights with the
best validation AP), model.safetensors (final EMA weights), metrics.csv, curves.png and
train_batch0.jpg (the first batch as the network sees it; `gtpt browse` draws more) and
val_batch0_pred.jpg (the latest validation's first crops with their predicted joints).
--print-config shows every setting, defaults included, as the run would use it (after --opt)."""


def add_arguments(p):
    p.epilog = EPILOG
    p.add_argument("config", help="experiment YAML (model, data, train, eval sections; see configs/)")
    p.add_argument("--opt", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override config values by dotted key, values parsed as YAML, e.g. "
                        "train.epochs=3 data.train_ann=/x.json model.keep_rates=[1,1,0.5,0.3]")
    p.add_argument("--resume", metavar="auto|PATH", default=None,
                   help="continue a run exactly: 'auto' = OUTPUT_DIR/last.ckpt (starts fresh if absent) "
                        "or a path to a last.ckpt")
    p.add_argument("--output-dir", default=None, help="where checkpoints and logs go (overrides output_dir)")
    p.add_argument("--device", choices=["cpu", "cuda"], default=None,
                   help="default: cuda when available (each torchrun process takes cuda:LOCAL_RANK)")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved config as YAML (every key, defaults included) and exit")


def run(args) -> int:
    from ..engine import distributed as du
    from ..engine.experiment import ConfigError, load_experiment
    from ..engine.trainer import NonFiniteLossError, Trainer
    main = True
    try:
        exp = load_experiment(args.config, args.opt, output_dir=args.output_dir)
        if args.print_config:   # what config.yaml in the run folder would hold; nothing is read or written
            import yaml
            print(yaml.safe_dump(exp.to_dict(), sort_keys=False), end="")
            return 0
        trainer = Trainer(exp, device=args.device, resume=args.resume)
        main = du.is_main()
        summary = trainer.fit()
    except (ConfigError, FileNotFoundError, FileExistsError, NonFiniteLossError, ValueError) as e:
        print(f"gtpt train: error: {e}", flush=True)
        return 1
    finally:
        du.cleanup()
    if main:
        print(f"done: {summary}", flush=True)
    return 0
