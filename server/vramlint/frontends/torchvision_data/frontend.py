"""The torchvision data frontend's registration (frontends/interface.py): vramlint's own
`torchvision.datasets` (datasets.py: each dataset's image size, e.g. CIFAR10's 3x32x32) and
`torchvision.transforms` / `transforms.v2` (transforms.py: what each does to the shape), served
instead of torchvision's source, which reads the datasets' files. `torchvision.models` stays
torchvision's own source. torch.utils.data (DataLoader, the batch) is the torch frontend's
(frontends/torch/data.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vramlint.frontends.interface import Frontend
from vramlint.frontends.torchvision_data import datasets, transforms

if TYPE_CHECKING:
    from vramlint.engine.loader import Loader
    from vramlint.engine.values import ModuleValue


def torchvision_data_module(loader: Loader, dotted: str) -> ModuleValue | None:
    if dotted in datasets.MODULES:
        return datasets.datasets_module(loader, dotted)
    if dotted in transforms.MODULES:
        return transforms.transforms_module(loader, dotted)
    return None


FRONTEND = Frontend(name="torchvision_data", native_modules=(torchvision_data_module,))
