"""``conveyor fit`` / ``conveyor validate`` / ``conveyor test``: train a torchvision model on VOC
(synthetic by default) or evaluate a checkpoint, with every Trainer, VOCDataModule and model
option as a flag (``--max_epochs 3 --precision bf16 --batch_size 16``)."""

from __future__ import annotations

import glob
import os
import sys
from argparse import ArgumentParser, RawDescriptionHelpFormatter
from typing import List, Optional

# Defaults of `conveyor fit` with no flags (what `make demo` runs): a small segmentation model on
# a synthetic VOC set, sized to finish in well under 3 minutes on a 2-core CPU.
DEMO_DEFAULTS = dict(
    task="segmentation",
    image_size=64,
    batch_size=8,
    max_epochs=4,
    synthetic_train_images=128,
    synthetic_val_images=32,
    lr=2e-2,
    num_workers=2,
    log_every_n_steps=4,
    num_sanity_val_steps=0,
)

_DESCRIPTIONS = {
    "fit": "Train a torchvision model (random weights, no download) on VOC detection or segmentation. "
    "With no --data_dir it trains on a synthetic VOC-format set; --data_dir takes any VOC-format "
    "folder (VOCdevkit, CVAT, labelme2voc, Roboflow, labelImg) and its own classes.",
    "validate": "Evaluate a checkpoint on the validation split and print mAP (detection) or mIoU (segmentation).",
    "test": "Evaluate a checkpoint on the test split and print mAP (detection) or mIoU (segmentation).",
}


def build_parser(command: str) -> ArgumentParser:
    from conveyor.datamodules import VOCDataModule
    from conveyor.datamodules.voc_module import VOCModule
    from conveyor.training import Trainer
    from conveyor.training.argparse import add_argparse_args

    parser = ArgumentParser(
        prog=f"conveyor {command}",
        description=_DESCRIPTIONS[command],
        formatter_class=RawDescriptionHelpFormatter,
    )
    if command != "fit":
        parser.add_argument(
            "--ckpt_path",
            type=str,
            default=None,
            help="checkpoint to evaluate (default: the newest lightning_logs/version_*/checkpoints/*.ckpt).",
        )
    Trainer.add_argparse_args(parser)
    VOCDataModule.add_argparse_args(parser)
    existing = {action.dest for action in parser._actions}
    model_parser = add_argparse_args(
        VOCModule, ArgumentParser(add_help=False), use_argument_group=False
    )
    group = parser.add_argument_group("conveyor.VOCModule")
    for action in model_parser._actions:
        if action.dest not in existing and action.option_strings:
            group._add_action(action)
    parser.set_defaults(**DEMO_DEFAULTS)
    return parser


def newest_checkpoint(root: str) -> Optional[str]:
    candidates = glob.glob(
        os.path.join(root, "lightning_logs", "version_*", "checkpoints", "*.ckpt")
    )
    return max(candidates, key=os.path.getmtime) if candidates else None


def main(command: str, argv: List[str]) -> int:
    parser = build_parser(command)
    args = parser.parse_args(argv)

    import torch

    from conveyor.datamodules import VOCDataModule
    from conveyor.datamodules.voc_module import VOCModule
    from conveyor.training import Trainer, seed_everything
    from conveyor.training.argparse import from_argparse_args
    from conveyor.training.checkpoint_io import load_checkpoint

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    checkpoint = None
    if command != "fit":
        ckpt_path = args.ckpt_path or newest_checkpoint(args.default_root_dir or os.getcwd())
        if ckpt_path is None:
            print(
                f"conveyor {command}: no --ckpt_path given and no checkpoint under lightning_logs/",
                file=sys.stderr,
            )
            return 2
        args.ckpt_path = ckpt_path
        checkpoint = load_checkpoint(ckpt_path)
        # the model (and data shape) the checkpoint was trained with, unless given on the command line
        given = {a.split("=")[0][2:] for a in argv if a.startswith("--")}
        for key, value in {
            **checkpoint.get("datamodule_hyper_parameters", {}),
            **checkpoint.get("hyper_parameters", {}),
        }.items():
            if key not in given and hasattr(args, key):
                setattr(args, key, value)
    seed_everything(args.seed)
    datamodule = from_argparse_args(VOCDataModule, args)
    # the model's classes follow the data (a folder's own classes), unless given or restored
    restored = set(checkpoint.get("hyper_parameters", {})) if checkpoint else set()
    flags = {a.split("=")[0][2:] for a in argv if a.startswith("--")} | restored
    if "num_classes" not in flags:
        args.num_classes = datamodule.num_classes
    if "class_names" not in flags:
        args.class_names = ",".join(datamodule.classes)
    model = from_argparse_args(VOCModule, args)
    if model.task != datamodule.task:
        parser.error(f"--task {datamodule.task} does not match the model's task {model.task}")
    if command == "fit":
        trainer = from_argparse_args(Trainer, args)
        trainer.fit(model, datamodule=datamodule)
        if trainer.is_global_zero and trainer.checkpoint_callback is not None:
            print(f"checkpoint: {trainer.checkpoint_callback.best_model_path}")
        return 0
    trainer = from_argparse_args(Trainer, args, logger=False, enable_checkpointing=False)
    run = trainer.validate if command == "validate" else trainer.test
    results = run(model, datamodule=datamodule, ckpt_path=args.ckpt_path, verbose=False)
    prefix = "val" if command == "validate" else "test"
    name = "mIoU" if model.task == "segmentation" else "mAP"
    if trainer.is_global_zero:
        metrics = results[0] if results else {}
        print(
            f"{args.ckpt_path}: {prefix}_{name}={metrics.get(f'{prefix}_{name}', float('nan')):.4f}"
        )
        for key in sorted(metrics):
            print(f"  {key} = {metrics[key]:.4f}")
    return 0
