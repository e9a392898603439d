"""``ccrm-async thulium serve|build``: the Thulium lookup's commands, defined in
:mod:`ccrm_async.thulium.cli` and mounted here."""

from __future__ import annotations

import argparse

from ..thulium.cli import add_thulium_commands, run_thulium
from ._common import add_debug_option

__all__ = ["register"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    thulium = add_thulium_commands(commands)
    add_debug_option(thulium)
    thulium.set_defaults(run=run_thulium)
