"""The ``conveyor`` command. Each subcommand lives with the subsystem it drives; this module
only dispatches, so ``conveyor --help`` stays fast."""

import sys
from importlib import import_module

# subcommand -> (module with ``main(command, argv)``, one-line help)
SUBCOMMANDS = {
    "fit": ("conveyor.training.cli", "train a torchvision model on VOC data"),
    "validate": ("conveyor.training.cli", "evaluate a checkpoint on the validation split"),
    "test": ("conveyor.training.cli", "evaluate a checkpoint on the test split"),
    "synth": ("conveyor.datasets.synthetic", "write a synthetic VOCdevkit tree"),
    "bench": ("conveyor.bench", "measure conveyor against torch's DataLoader"),
    "doctor": ("conveyor.doctor", "check a VOC-format dataset (any layout) before training"),
}


def usage() -> str:
    lines = ["usage: conveyor <command> [options]", "", "commands:"]
    lines += [f"  {name:<9} {help_text}" for name, (_, help_text) in SUBCOMMANDS.items()]
    lines += ["", "Run 'conveyor <command> --help' for the options of one command."]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in SUBCOMMANDS:
        print(f"conveyor: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = import_module(SUBCOMMANDS[command][0])
    return module.main(command, rest) or 0


if __name__ == "__main__":
    sys.exit(main())
