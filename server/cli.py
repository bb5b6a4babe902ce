"""The server's command line, generated from ServerSettings: `zoo-server` and `zoo serve` share every flag."""

from __future__ import annotations

import sys
import typing
from typing import Any

import click

from zoo.server.logs import configure_logging
from zoo.server.settings import DevServerSettings, ServerSettings, SettingsError, env_name, flag_name, load


def _option(name: str, field, default: Any) -> click.Option:
    """A click option for one settings field; values are validated by the settings model, not by click."""
    help_text = f"{field.description} [env {env_name(name)}]"
    annotation = field.annotation
    if annotation is bool:
        return click.Option([f"{flag_name(name)}/--no-{name.replace('_', '-')}"], default=None, help=help_text + f" [default: {default}]")
    if typing.get_origin(annotation) is list:
        return click.Option([flag_name(name)], multiple=True, default=None, help=help_text + " [default: none]")
    if typing.get_origin(annotation) is typing.Literal:
        kind: Any = click.Choice(typing.get_args(annotation))
    else:
        kind = {int: int, float: float}.get(annotation, str)
    shown = "''" if default == "" else default
    return click.Option([flag_name(name)], type=kind, default=None, help=help_text + f" [default: {shown}]")


def _on_command_line(field) -> bool:
    """Whether a settings field gets a flag (secrets and internal fields do not)."""
    extra = field.json_schema_extra
    return not isinstance(extra, dict) or extra.get("cli", True) is not False


def make_command(name: str, settings_cls: type[ServerSettings], help_text: str) -> click.Command:
    """A click command whose options are the fields of settings_cls; running it serves until SIGTERM."""

    def callback(**flags: Any) -> None:
        flags = {k: (list(v) if isinstance(v, tuple) else v) for k, v in flags.items()}
        flags = {k: v for k, v in flags.items() if v is not None and v != []}
        try:
            settings = load(settings_cls, flags)
        except SettingsError as e:
            click.secho(f"error: {e}", fg="red", err=True)
            sys.exit(2)
        configure_logging()
        if settings.workers > 1:
            from zoo.server.workers import Supervisor

            sys.exit(Supervisor(settings).run())
        from zoo.server.app import exit_now_if_loads_hang, run

        code = run(settings)
        exit_now_if_loads_hang(code)
        sys.exit(code)

    defaults = settings_cls.model_construct()
    params: list[click.Parameter] = [
        _option(n, f, getattr(defaults, n)) for n, f in settings_cls.model_fields.items() if _on_command_line(f)
    ]
    return click.Command(
        name,
        callback=callback,
        params=params,
        help=help_text,
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
    )


SERVER_HELP = (
    "Serve a zoo model repository over the KServe v2 protocol (gRPC). "
    "Every option can also be set by its ZOO_<NAME> environment variable; a flag wins over the variable."
)

server_command = make_command("zoo-server", ServerSettings, SERVER_HELP)
dev_command = make_command(
    "serve",
    DevServerSettings,
    SERVER_HELP + " Same options as zoo-server; here the repository is polled by default, so a new `zoo export` "
    "is served without a restart. `zoo bootstrap` fills an empty repository with the default zoo.",
)


def main(argv: list[str] | None = None) -> None:
    """The zoo-server console script."""
    server_command.main(args=argv, prog_name="zoo-server")
