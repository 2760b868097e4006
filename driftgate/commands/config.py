"""``driftgate config``: the effective settings, each with the layer that set it (registered in driftgate/cli.py)."""
from __future__ import annotations

import json
from typing import Annotated

import typer

from driftgate.runtime import ConfOpt, EnvOpt, SetOpt, cli_errors, err_console, settings_from


def config(
    conf: ConfOpt = None,
    env: EnvOpt = None,
    set_: SetOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="print JSON: {key: value} (with --show-origin: "
                                                          "{key: {value, layer, source}})")] = False,
    show_origin: Annotated[bool, typer.Option("--show-origin", help="say which layer set each value "
                                                                    "(base, env:<env>, user, --set, default)")] = False,
    prefix: Annotated[str | None, typer.Argument(help="only keys under this dotted prefix, e.g. promotion.criteria",
                                                 show_default=False)] = None,
) -> None:
    """Print the effective settings after every layer, credentials masked.

    Removed defaults (an explicit null in a layer) are listed with the value null.
    """
    from driftgate.core.settings import effective_values

    with cli_errors():
        settings = settings_from(conf, env, set_)
    values = [v for v in effective_values(settings)
              if prefix is None or v.key == prefix or v.key.startswith(f"{prefix}.")]
    if json_out:
        data = ({v.key: {"value": v.value, "layer": v.layer, "source": v.source} for v in values} if show_origin
                else {v.key: v.value for v in values})
        typer.echo(json.dumps(data, indent=2))
        return
    width = min(max((len(v.key) for v in values), default=0), 48)
    for v in values:
        line = f"{v.key:<{width}} = {json.dumps(v.value)}"
        if show_origin:
            source = v.source.removesuffix(" (removed)")
            where = "" if source in (v.layer, f"--set {v.key}") else f" {source}"
            line = f"{line}  # {v.layer}{where}{' (removed)' if source != v.source else ''}"
        typer.echo(line)
    if settings.removed_defaults:
        err_console.print(f"removed defaults: {', '.join(settings.removed_defaults)}", style="yellow", highlight=False)
