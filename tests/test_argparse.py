"""conveyor.argparse follows Lightning 1.6's utilities/argparse.py rule by rule."""

import inspect
import pickle
from argparse import ArgumentParser, Namespace
from typing import Any, Dict, List, Optional, Union

import pytest

from conveyor.argparse import (
    add_argparse_args,
    from_argparse_args,
    get_init_arguments_and_types,
    parse_argparser,
    parse_env_variables,
    str_to_bool,
    str_to_bool_or_int,
    str_to_bool_or_str,
)


class Model:
    """A model.

    Args:
        lr: the learning rate
            for the optimizer.
        flag: a bool.
        maybe: bool or int.
        mode: bool or str.
        ratio: bool or float.
        either: int or str.
        limit: an int or a float.
        gpus: which gpus.
        precision: bits.
        devices: devices.
        layers: a list, skipped.
        name: optional string.

    Returns:
        nothing here: this line is not an argument.
    """

    def __init__(
        self,
        lr: float = 0.1,
        flag: bool = False,
        maybe: Union[bool, int] = 0,
        mode: Union[bool, str] = "x",
        ratio: Union[bool, float] = 0.5,
        either: Union[int, str] = 1,
        limit: Union[int, float] = 1.0,
        gpus: Optional[Union[int, str]] = None,
        precision: Union[int, str] = 32,
        devices: Optional[Union[int, str]] = None,
        layers: List[int] = (),
        name: Optional[str] = None,
        unannotated=3,
        callback: Any = None,
        mapping: Dict[str, int] = None,
        *args,
        **kwargs,
    ):
        self.kwargs = dict(
            lr=lr,
            flag=flag,
            maybe=maybe,
            mode=mode,
            ratio=ratio,
            either=either,
            limit=limit,
            gpus=gpus,
            precision=precision,
            devices=devices,
            name=name,
        )


def parse(argv, cls=Model):
    parser = add_argparse_args(cls, ArgumentParser())
    return parser.parse_args(argv)


def test_get_init_arguments_and_types():
    triples = {
        name: (types, default) for name, types, default in get_init_arguments_and_types(Model)
    }
    assert "self" not in triples
    assert triples["lr"] == ((float,), 0.1)
    assert triples["name"] == ((str, type(None)), None)
    assert triples["unannotated"] == ((inspect.Parameter.empty,), 3)

    class Required:
        def __init__(self, a: int):
            pass

    assert get_init_arguments_and_types(Required) == [("a", (int,), inspect.Parameter.empty)]


def test_group_returns_same_parser_with_titled_group():
    parent = ArgumentParser()
    assert add_argparse_args(Model, parent) is parent
    titles = [g.title for g in parent._action_groups]
    assert f"{Model.__module__}.{Model.__qualname__}" in titles


def test_conveyor_classes_get_short_group_title():
    from conveyor.training import Trainer

    parent = add_argparse_args(Trainer, ArgumentParser())
    assert "conveyor.Trainer" in [g.title for g in parent._action_groups]


def test_without_group_returns_new_parser():
    parent = ArgumentParser(add_help=False)
    parser = add_argparse_args(Model, parent, use_argument_group=False)
    assert parser is not parent
    assert parser.parse_args(["--lr", "0.5"]).lr == 0.5


def test_group_argument_raises():
    group = ArgumentParser().add_argument_group("g")
    with pytest.raises(RuntimeError, match="Please only pass an ArgumentParser instance."):
        add_argparse_args(Model, group)


def test_defaults_and_skipped_parameters():
    args = parse([])
    assert args.lr == 0.1 and args.flag is False and args.name is None and args.gpus is None
    for skipped in ("layers", "unannotated", "callback", "mapping", "args", "kwargs", "self"):
        assert not hasattr(args, skipped)


def test_bool_only():
    assert parse(["--flag"]).flag is True
    for word, expected in [
        ("yes", True),
        ("ON", True),
        ("1", True),
        ("t", True),
        ("no", False),
        ("Off", False),
        ("0", False),
        ("F", False),
    ]:
        assert parse(["--flag", word]).flag is expected


def test_bool_only_rejects_other_words(capsys):
    with pytest.raises(SystemExit) as info:
        parse(["--flag", "maybe"])
    assert info.value.code == 2
    assert "invalid boolean value" in capsys.readouterr().err


def test_bool_int():
    assert parse(["--maybe"]).maybe is True
    assert parse(["--maybe", "true"]).maybe is True
    assert parse(["--maybe", "0"]).maybe is False  # bool words first
    assert parse(["--maybe", "7"]).maybe == 7
    assert parse(["--maybe", "abc"]).maybe == "abc"


def test_bool_str_and_bool_float():
    assert parse(["--mode", "off"]).mode is False
    assert parse(["--mode", "fast"]).mode == "fast"
    assert parse(["--ratio", "0.25"]).ratio == 0.25
    assert parse(["--ratio"]).ratio is True


def test_first_kept_type_wins():
    assert parse(["--either", "5"]).either == "5"  # Union[int, str] parses as str


def test_int_or_float():
    assert parse(["--limit", "3"]).limit == 3 and isinstance(parse(["--limit", "3"]).limit, int)
    assert parse(["--limit", "0.5"]).limit == 0.5


def test_gpus_precision_devices_special_cases():
    assert parse(["--gpus", "2"]).gpus == 2
    assert parse(["--gpus", "1,2"]).gpus == "1,2"
    assert parse(["--gpus", "0,"]).gpus == "0,"
    assert parse(["--precision", "16"]).precision == 16
    assert parse(["--precision", "bf16"]).precision == "bf16"
    assert parse(["--devices", "2"]).devices == "2"  # no special case: str


def test_help_from_docstring():
    parser = add_argparse_args(Model, ArgumentParser())
    helps = {a.dest: a.help for a in parser._actions}
    assert helps["lr"] == "the learning rate for the optimizer."
    assert helps["flag"] == "a bool."
    assert "nothing" not in str(helps.values())


def test_no_docstring_gives_no_help():
    class Bare:
        def __init__(self, x: int = 1):
            pass

    parser = add_argparse_args(Bare, ArgumentParser())
    assert [a.help for a in parser._actions if a.dest == "x"] == [None]


def test_docstring_on_class_when_init_has_none():
    class Documented:
        """Doc.

        Arguments:
            x: the x value
        """

        def __init__(self, x: int = 1):
            pass

    parser = add_argparse_args(Documented, ArgumentParser())
    assert [a.help for a in parser._actions if a.dest == "x"] == ["the x value"]


def test_deprecated_names_are_ignored():
    class Old:
        def __init__(self, keep: int = 1, old: int = 2):
            pass

        @classmethod
        def get_deprecated_arg_names(cls):
            return ["old"]

    args = parse([], Old)
    assert hasattr(args, "keep") and not hasattr(args, "old")


def test_parse_argparser_turns_none_bool_into_true():
    args = parse_argparser(Model, Namespace(flag=None, name=None, lr=0.2))
    assert args.flag is True and args.name is None and args.lr == 0.2


def test_parse_argparser_runs_the_parser(monkeypatch):
    monkeypatch.setattr("sys.argv", ["prog", "--lr", "0.3"])
    args = parse_argparser(Model, add_argparse_args(Model, ArgumentParser()))
    assert args.lr == 0.3


def test_from_argparse_args_filters_and_overrides():
    args = Namespace(lr=0.5, unknown_key=1, flag=True)
    model = from_argparse_args(Model, args, name="n")
    assert (
        model.kwargs["lr"] == 0.5 and model.kwargs["flag"] is True and model.kwargs["name"] == "n"
    )

    class Strict:
        def __init__(self, a: int = 1):
            self.a = a

    assert from_argparse_args(Strict, Namespace(a=2, b=3)).a == 2  # unknown keys ignored
    with pytest.raises(TypeError):
        from_argparse_args(Strict, Namespace(), nope=1)  # kwargs are not filtered


def test_from_argparse_args_with_dict():
    assert from_argparse_args(Model, {"lr": 0.7}).kwargs["lr"] == 0.7


def test_parse_env_variables(monkeypatch):
    monkeypatch.setenv("CONVEYOR_MODEL_LR", "0.25")
    monkeypatch.setenv("CONVEYOR_MODEL_NAME", "hello world")
    monkeypatch.setenv("CONVEYOR_MODEL_FLAG", "")
    monkeypatch.setenv("CONVEYOR_MODEL_GPUS", "[0, 1]")
    env = parse_env_variables(Model)
    assert env.lr == 0.25 and env.name == "hello world" and env.gpus == [0, 1]
    assert not hasattr(env, "flag")
    monkeypatch.setenv("PL_MODEL_LR", "1")
    assert parse_env_variables(Model, "PL_%(cls_name)s_%(cls_argument)s").lr == 1


def test_string_converters():
    assert str_to_bool("YES") is True
    with pytest.raises(Exception):  # noqa: B017 - Lightning's converter raises a plain ValueError subclass
        str_to_bool("2")
    assert str_to_bool_or_int("12") == 12
    assert str_to_bool_or_str("off") is False and str_to_bool_or_str("x") == "x"


def test_trainer_cli_facts_and_pickle():
    from conveyor.training import Trainer

    parser = Trainer.add_argparse_args(ArgumentParser())
    args = parser.parse_args([])
    assert args.fast_dev_run is False
    assert parser.parse_args(["--fast_dev_run=0"]).fast_dev_run is False
    assert parser.parse_args(["--fast_dev_run=True"]).fast_dev_run is True
    assert parser.parse_args(["--fast_dev_run", "2"]).fast_dev_run == 2
    assert parser.parse_args(["--precision=16"]).precision == 16
    assert parser.parse_args(["--precision", "bf16"]).precision == "bf16"
    assert args.max_epochs is None and args.resume_from_checkpoint is None
    assert not hasattr(args, "callbacks")
    assert pickle.loads(pickle.dumps(args)) == args
    trainer = Trainer.from_argparse_args(
        parser.parse_args(["--max_epochs", "3"]), enable_progress_bar=False
    )
    assert trainer.max_epochs == 3


def test_trainer_defaults_from_environment(monkeypatch):
    from conveyor.training import Trainer

    monkeypatch.setenv("CONVEYOR_TRAINER_MAX_EPOCHS", "3")
    monkeypatch.setenv("CONVEYOR_TRAINER_LOG_EVERY_N_STEPS", "7")
    trainer = Trainer(log_every_n_steps=9)
    assert trainer.max_epochs == 3
    assert trainer.log_every_n_steps == 9  # explicit arguments win
