"""The size bounds the codebase keeps: no module of blockhub/ over 300 lines and no
function over 50, so that each stays readable in one sitting."""

import ast
import pathlib

from twisted.trial.unittest import SynchronousTestCase

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "blockhub"
MAX_MODULE, MAX_FUNCTION = 300, 50


class BoundsTests(SynchronousTestCase):
    def test_modules_and_functions_stay_small(self):
        too_long = []
        for path in sorted(PACKAGE.rglob("*.py")):
            text = path.read_text()
            name = path.relative_to(PACKAGE.parent)
            if len(text.splitlines()) > MAX_MODULE:
                too_long.append(f"{name}: {len(text.splitlines())} lines")
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    length = node.end_lineno - node.lineno + 1
                    if length > MAX_FUNCTION:
                        too_long.append(f"{name}: {node.name} is {length} lines")
        self.assertEqual(too_long, [])
