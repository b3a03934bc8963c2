"""Every module of blockhub sits in one of the layers .importlinter checks: a module
left out of the list would escape the layers contract unnoticed."""

import configparser
import os
import pkgutil

from twisted.trial.unittest import SynchronousTestCase

import blockhub

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def listed_layers() -> list[str]:
    config = configparser.ConfigParser()
    config.read(os.path.join(ROOT, ".importlinter"))
    text = config["importlinter:contract:layers"]["layers"]
    return [name.strip() for line in text.splitlines() for name in line.split(":")
            if name.strip()]


def modules() -> list[str]:
    return [info.name for info in pkgutil.walk_packages(blockhub.__path__, "blockhub.")]


class LayersTests(SynchronousTestCase):
    def test_every_module_is_in_a_layer(self):
        layers = listed_layers()
        self.assertIn("blockhub.ids", layers)

        def covered(module):
            return any(module == layer or module.startswith(layer + ".")
                       for layer in layers)

        packages = {"blockhub.gateway", "blockhub.hub", "blockhub.net",
                    "blockhub.gateway.cluster"}  # __init__ only
        left_out = [m for m in modules() if not covered(m) and m not in packages]
        self.assertEqual(left_out, [])
