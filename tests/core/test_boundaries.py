"""Plugins and examples use the kernel's public API (``kore.runtime``), never
its private state, and the kernel's modules import each other without
cycles."""

import ast
import functools
import os

import pytest

from kore_testing import ROOT

CORE = os.path.join(ROOT, "core", "kore")


def _python_files(top):
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")
                       and d not in ("__pycache__", "build", "dist")
                       and not d.endswith(".egg-info")]
        for name in filenames:
            if name.endswith(".py"):
                yield os.path.join(dirpath, name)


def _imports(path):
    """(module, line) for every import in ``path``, function-level ones too;
    ``from kore import _state`` gives ``kore._state``."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                continue
            yield node.module, node.lineno
            for alias in node.names:
                yield "%s.%s" % (node.module, alias.name), node.lineno


def _private_state_imports(top):
    found = []
    for path in _python_files(top):
        for module, line in _imports(path):
            if module == "kore._state" or module.startswith("kore._state."):
                found.append("%s:%d" % (os.path.relpath(path, ROOT), line))
    return found


PLUGIN_DIRS = sorted(d for d in os.listdir(os.path.join(ROOT, "plugins"))
                     if os.path.isdir(os.path.join(ROOT, "plugins", d)))


@pytest.mark.parametrize("plugin", PLUGIN_DIRS)
def test_plugin_does_not_import_kernel_private_state(plugin):
    """kore._state may change at any release; kore.runtime is the contract."""
    found = _private_state_imports(os.path.join(ROOT, "plugins", plugin))
    assert found == [], ("import kore.runtime instead of kore._state "
                         "(option(), registry(), worker(), hook(), notify()): %s"
                         % ", ".join(found))


def test_examples_do_not_import_kernel_private_state():
    found = _private_state_imports(os.path.join(ROOT, "examples"))
    assert found == [], "use kore.runtime instead of kore._state: %s" % ", ".join(found)


def _module_name(path, root=CORE):
    rel = os.path.relpath(path, os.path.dirname(root))[:-3].replace(os.sep, ".")
    return rel[:-len(".__init__")] if rel.endswith(".__init__") else rel


def _runtime_nodes(tree):
    """Every node except those under ``if TYPE_CHECKING:`` (annotations
    only, never imported when the program runs)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and getattr(child.test, "id", None) == "TYPE_CHECKING":
                todo.extend(child.orelse)
                continue
            todo.append(child)


def _is_module(name, root=CORE):
    rel = os.path.join(os.path.dirname(root), *name.split("."))
    return os.path.isfile(rel + ".py") or os.path.isfile(os.path.join(rel, "__init__.py"))


def _kernel_graph():
    return _package_graph(CORE)


@functools.lru_cache(maxsize=None)
def _package_graph(root):
    """pkg.X -> {pkg.Y} from every import statement of the package at
    ``root``, relative ones resolved, function-level ones included (they
    are edges all the same), ``if TYPE_CHECKING:`` ones left out."""
    top = os.path.basename(root)
    graph = {}
    for path in _python_files(root):
        name = _module_name(path, root)
        package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
        edges = graph.setdefault(name, set())
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        for node in _runtime_nodes(tree):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    up = parts[:len(parts) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                subs = ["%s.%s" % (base, a.name) for a in node.names]
                # "from . import x" names module x, not its package
                targets = subs if any(_is_module(t, root) for t in subs) else [base] + subs
            for t in targets:
                if t.startswith(top + ".") or t == top:
                    edges.add(t)
    known = set(graph)
    return {m: {e for e in es if e in known and e != m} for m, es in graph.items()}


def _cycle_through(graph, start, packages=("kore", "kore.aio")):
    stack = [(start, [start])]
    seen = set()
    while stack:
        node, path = stack.pop()
        for nxt in graph.get(node, ()):
            if nxt == start:
                return path + [start]
            if nxt not in seen and nxt not in packages:
                seen.add(nxt)
                stack.append((nxt, path + [nxt]))
    return None


KERNEL_MODULES = sorted(_module_name(p) for p in _python_files(CORE)
                        if not p.endswith("__init__.py"))


@pytest.mark.parametrize("module", KERNEL_MODULES)
def test_no_import_cycle(module):
    """No kernel module reaches itself through imports, function-level ones
    included.  The packages (``kore``, ``kore.aio``) are left out: every
    module imports its package implicitly, and they re-export names."""
    graph = _kernel_graph()
    assert module in graph, module
    cycle = _cycle_through(graph, module)
    assert cycle is None, " -> ".join(cycle)


def test_the_cycle_check_sees_the_split_modules():
    for name in ("kore.arbiter", "kore.workerproc", "kore.lifecycle", "kore.reload",
                 "kore.ipc", "kore.runtime", "kore.plugins", "kore.drivers"):
        assert name in KERNEL_MODULES


def test_cycle_finder_finds_a_lazy_cycle():
    graph = {"kore.a": {"kore.b"}, "kore.b": {"kore.c"}, "kore.c": {"kore.a"}, "kore.d": set()}
    assert _cycle_through(graph, "kore.a") == ["kore.a", "kore.b", "kore.c", "kore.a"]
    assert _cycle_through(graph, "kore.d") is None


PLUGIN_PACKAGES = sorted(
    os.path.join(ROOT, "plugins", d, "kore_" + d) for d in PLUGIN_DIRS
    if os.path.isdir(os.path.join(ROOT, "plugins", d, "kore_" + d)))


@pytest.mark.parametrize("root", PLUGIN_PACKAGES, ids=os.path.basename)
def test_no_import_cycle_in_plugins(root):
    """The same rule inside each plugin package (the http plugin's old
    conn <-> listen and conn <-> request cycles, hidden in function-level
    imports, are what this keeps out)."""
    graph = _package_graph(root)
    top = os.path.basename(root)
    packages = {m for m in graph if os.path.isfile(
        os.path.join(os.path.dirname(root), *m.split("."), "__init__.py"))} | {top}
    for module in sorted(graph):
        if module in packages:
            continue
        cycle = _cycle_through(graph, module, packages)
        assert cycle is None, " -> ".join(cycle)
