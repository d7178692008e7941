"""What a node pack imports, read with ``ast`` (what ``pyisolate init`` plans a manifest from).

Run as a script with the host Python: ``python -I pack_scan.py <pack dir>``. It prints one JSON
object:

- ``imports``: each top-level module the pack's ``.py`` files import absolutely (``import a.b``,
  ``from a import b``, anywhere in a file: inside functions and ``try`` blocks too), with where
  (``"nodes.py:3"``); relative imports, strings and comments are not imports;
- ``own``: the pack's own module names (its files and folders), which are not dependencies;
- ``stdlib``: ``sys.stdlib_module_names`` (3.10+);
- ``distributions``: for each imported module installed in this Python's environment, the
  distributions that provide it (``importlib.metadata.packages_distributions``);
- ``errors``: files that do not parse, with the reason.

Standard library only; nothing of the pack is imported or run.
"""

import ast
import json
import os
import sys

SKIP_DIRS = {"__pycache__", "node_modules"}


def python_files(root):
    """Every ``.py`` file under ``root`` (relative, sorted), skipping hidden and cache folders."""
    found = []
    seen = set()
    for current, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(current)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for name in files:
            if name.endswith(".py"):
                found.append(os.path.relpath(os.path.join(current, name), root).replace(os.sep, "/"))
    return sorted(found)


def imports_of(tree):
    """``(top-level module, line)`` for each absolute import in a parsed module."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0], node.lineno


def scan(root):
    files = python_files(root)
    imports = {}
    errors = []
    own = {os.path.basename(os.path.abspath(root))}
    for rel in files:
        for part in rel.split("/"):
            own.add(part[:-3] if part.endswith(".py") else part)
        path = os.path.join(root, rel)
        try:
            with open(path, "rb") as f:
                tree = ast.parse(f.read(), filename=rel)
        except (SyntaxError, ValueError, OSError) as e:
            errors.append({"file": rel, "message": "%s: %s" % (type(e).__name__, e)})
            continue
        for module, line in imports_of(tree):
            imports.setdefault(module, []).append("%s:%d" % (rel, line))
    try:
        import importlib.metadata as md

        provided = md.packages_distributions()
    except Exception:  # Python 3.9, or broken metadata
        provided = {}
    return {
        "python": ".".join(str(v) for v in sys.version_info[:3]),
        "files": len(files),
        "imports": imports,
        "own": sorted(own),
        "stdlib": sorted(getattr(sys, "stdlib_module_names", ())),
        "distributions": {m: sorted(set(provided[m])) for m in imports if m in provided},
        "errors": errors,
    }


if __name__ == "__main__":
    if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
        sys.stderr.write("usage: pack_scan.py <pack dir>\n")
        sys.exit(2)
    json.dump(scan(sys.argv[1]), sys.stdout)
    sys.stdout.write("\n")
