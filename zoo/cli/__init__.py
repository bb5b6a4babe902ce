"""The `zoo` command line: one module per command group, each imported only when its command runs.

Lazy loading keeps `zoo --help` and every command working on partial installs: a serve-only install has no
torch, a train-only install no grpc; a command whose extra is missing says which one to install.
"""

from __future__ import annotations

import importlib

import click

COMMANDS = {
    "list": ("zoo.cli.models", "list_cmd", "train"),
    "train": ("zoo.cli.train", "train", "train"),
    "tune": ("zoo.cli.tune", "tune", "train"),
    "export": ("zoo.cli.export", "export", "train"),
    "bootstrap": ("zoo.cli.train", "bootstrap", "train"),
    "evaluate": ("zoo.cli.models", "evaluate", "train"),
    "info": ("zoo.cli.models", "info", "train"),
    "serve": ("zoo.server.cli", "dev_command", "serve"),
    "predict": ("zoo.cli.predict", "predict", "client"),
    "drift": ("zoo.cli.drift", "drift", "client"),
}


def _missing(name: str, extra: str, error: ImportError) -> click.Command:
    """A stand-in for a command whose dependencies are not installed."""

    def callback(**_):
        raise click.ClickException(f"`zoo {name}` needs the {extra} extra: pip install 'zoo[{extra}]' ({error})")

    return click.Command(
        name,
        callback=callback,
        help=f"(needs zoo[{extra}]: not installed)",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )


class LazyGroup(click.Group):
    """A group that imports each command's module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr, extra = COMMANDS[name]
        try:
            command = getattr(importlib.import_module(module), attr)
        except ImportError as e:
            return _missing(name, extra, e)
        return command

    def invoke(self, ctx: click.Context):
        """Run the command; a dependency its extra should have installed becomes a one-line error, not a traceback."""
        try:
            return super().invoke(ctx)
        except ImportError as e:
            name = ctx.invoked_subcommand or ""
            extra = COMMANDS.get(name, ("", "", "train"))[2]
            raise click.ClickException(f"`zoo {name}` needs the {extra} extra: pip install 'zoo[{extra}]' ({e})") from None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="zoo")
def main() -> None:
    """zoo: train PyTorch MLP classifiers, export them to ONNX, serve them over the KServe v2 protocol."""
