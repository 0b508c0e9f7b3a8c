"""A method is one module: nothing outside attempt_dist/methods/ branches on a method's name.

What is specific to a method (its inputs, PEFT form, table rows, planner cost, what a library
build inherits) is asked of the method (attempt_dist.methods), so a seventh method is its own
file plus its line in METHODS. This scan fails on a method-name literal compared (==, !=, in,
not in, match case), used as a dict key or listed beside another outside methods/.
"""

import ast
from pathlib import Path

from attempt_dist.methods import METHODS, displays

PACKAGE = Path(__file__).resolve().parents[1] / "attempt_dist"
# Named variants (spot-g, spot-t) are a method's too.
NAMES = set(METHODS) | set(displays())


def _literals(node: ast.AST) -> list[str]:
    """Method names among the string constants of `node` (a constant, or a tuple/list/set of them)."""
    items = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else [node]
    return [n.value for n in items if isinstance(n, ast.Constant) and n.value in NAMES]


def name_branches(source: str, where: str) -> list[str]:
    """`where:line: name` for each method-name literal compared, used as a dict key or listed
    beside another (a hand list of methods)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
        elif isinstance(node, ast.Dict):
            # A table keyed by methods has several of them as keys; one key that happens to be
            # spelled like a method ({"task": t, "prompt": c}) is a field name.
            operands = [k for k in node.keys if k is not None]
            if sum(len(_literals(k)) for k in operands) < 2:
                continue
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            # A hand list of methods (("prompt", "spot") have a PEFT form) is a branch waiting to happen.
            if len(_literals(node)) < 2:
                continue
            operands = [node]
        elif isinstance(node, ast.match_case):
            operands = [n.value for n in ast.walk(node.pattern) if isinstance(n, ast.MatchValue)]
        else:
            continue
        line = node.lineno if hasattr(node, "lineno") else node.pattern.lineno
        found += [(line, f"{where}:{line}: {name!r}") for operand in operands for name in _literals(operand)]
    # A listed name inside a comparison is one finding, not two.
    return [text for _, text in sorted(set(found))]


def test_no_method_name_is_compared_outside_methods():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "methods":
            continue
        found += name_branches(path.read_text(), str(relative))
    assert found == [], "ask the method (attempt_dist.methods) instead:\n" + "\n".join(found)


def test_the_scan_sees_each_kind_of_branch():
    source = '''
if cfg.method == "finetune": pass
if method in ("prompt", "spot"): pass
x = {"attempt": 1, "finetune": 2}
row = {"task": t, "prompt": c}
y = "spot-g" != variant
match method:
    case "bitfit": pass
z = f(method="adapter")
w = method == "nonesuch"
PEFT = ["prompt", "spot"]
'''
    found = name_branches(source, "f.py")
    assert found == ["f.py:2: 'finetune'", "f.py:3: 'prompt'", "f.py:3: 'spot'", "f.py:4: 'attempt'",
                     "f.py:4: 'finetune'", "f.py:6: 'spot-g'", "f.py:8: 'bitfit'", "f.py:11: 'prompt'", "f.py:11: 'spot'"]
