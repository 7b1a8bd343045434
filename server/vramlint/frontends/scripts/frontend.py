"""The scripts frontend's registration (frontends/interface.py): the libraries training scripts read
their settings with, as vramlint's own modules, so that no package needs to be installed: `yaml`
(yaml_files.py), `omegaconf` (omegaconf.py), `hydra` (hydra.py), `click`, `typer`, `fire`, `tyro`,
`simple_parsing` (cli_apps.py). argparse, json and tomllib are the engine's (standard library)."""

from __future__ import annotations

from vramlint.frontends.interface import Frontend
from vramlint.frontends.scripts.cli_apps import click_module, fire_module, typer_module, tyro_module
from vramlint.frontends.scripts.hf_args import FUNCTION_RULES
from vramlint.frontends.scripts.hydra import hydra_module
from vramlint.frontends.scripts.omegaconf import omegaconf_module
from vramlint.frontends.scripts.yaml_files import yaml_module

FRONTEND = Frontend(name="scripts", native_modules=(yaml_module, omegaconf_module, hydra_module, click_module,
                                                    typer_module, fire_module, tyro_module),
                    function_rules=FUNCTION_RULES)
