#!/usr/bin/env python3
"""Prove lib/ keeps its layers (docs/architecture.md).

  check-layers.py [--lib DIR] [--archive libivshmem.a]   check the tree (and the built objects)
  check-layers.py --self-test                            show that it catches what it claims to

Checks:
 1. includes: no cycle among the files of lib/ (quoted #include lines, resolved like the
    compiler does), and no file includes a lib-private header of a higher layer;
 2. calls (with --archive): every undefined symbol of an object is defined by an object of the
    same or a lower layer, and objects do not call each other in a cycle.
Exit 0 when clean, 1 with one line per violation.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

# Lowest first. A layer may use itself and anything below it.
LAYERS = {"core": 0, "format": 1, "proto": 1, "guest": 2, "backend": 3, "open": 4, "msg": 5}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_of(rel):
    top = rel.split("/", 1)[0]
    if top not in LAYERS:
        raise SystemExit(f"check-layers: {rel}: not in a layer folder ({', '.join(LAYERS)})")
    return top


def find_cycle(graph):
    """One cycle as a list of nodes, or None (iterative DFS, colours)."""
    colour = {n: 0 for n in graph}
    for start in sorted(graph):
        if colour[start]:
            continue
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        colour[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                colour[node] = 2
                stack.pop()
                path.pop()
                continue
            if nxt not in colour:
                continue
            if colour[nxt] == 1:
                return path[path.index(nxt):] + [nxt]
            if colour[nxt] == 0:
                colour[nxt] = 1
                path.append(nxt)
                stack.append((nxt, iter(sorted(graph[nxt]))))
    return None


def check_includes(lib):
    files = []
    for root, _, names in os.walk(lib):
        files += [os.path.relpath(os.path.join(root, n), lib) for n in names if n.endswith((".c", ".h"))]
    graph, errors = {f: set() for f in files}, []
    for f in files:
        text = open(os.path.join(lib, f), encoding="utf-8").read()
        for inc in INCLUDE.findall(text):
            # Resolved like the compiler: next to the file, then from lib/ (-I lib).
            for cand in (os.path.normpath(os.path.join(os.path.dirname(f), inc)), os.path.normpath(inc)):
                if cand in graph:
                    graph[f].add(cand)
                    if LAYERS[layer_of(cand)] > LAYERS[layer_of(f)]:
                        errors.append(f"include: {f} ({layer_of(f)}) includes {cand} "
                                      f"({layer_of(cand)}), a higher layer")
                    break
    cycle = find_cycle(graph)
    if cycle:
        errors.append("include cycle: " + " -> ".join(cycle))
    return errors


def objects_of(archive):
    out = subprocess.run(["nm", "-A", archive], capture_output=True, text=True, check=True).stdout
    defined, undefined = {}, {}
    for line in out.splitlines():
        # "libivshmem.a:core_region.c.o:0000000000000000 T ivshmem_base"
        m = re.match(r"^[^:]+:([^:]+\.c\.o):\s*(?:[0-9a-f]+)?\s+([A-Za-z])\s+(\S+)$", line)
        if not m:
            continue
        obj, kind, sym = m.groups()
        folder, _, name = obj.partition("_")
        src = f"{folder}/{name[:-2]}"      # core_region.c.o -> core/region.c
        if kind == "U":
            undefined.setdefault(src, set()).add(sym)
        elif kind in "TDBR":
            defined[sym] = src
        defined.setdefault(None, None)
        undefined.setdefault(src, set())
    defined.pop(None, None)
    return defined, undefined


def check_calls(archive):
    defined, undefined = objects_of(archive)
    graph, errors = {o: set() for o in undefined}, []
    for obj, syms in sorted(undefined.items()):
        for sym in sorted(syms):
            dst = defined.get(sym)
            if not dst or dst == obj:
                continue
            graph[obj].add(dst)
            if LAYERS[layer_of(dst)] > LAYERS[layer_of(obj)]:
                errors.append(f"call: {obj} ({layer_of(obj)}) uses {sym} from {dst} "
                              f"({layer_of(dst)}), a higher layer")
    cycle = find_cycle(graph)
    if cycle:
        errors.append("call cycle: " + " -> ".join(cycle))
    return errors


def self_test():
    """The checker must fail on an upward include and on a cycle, and pass a clean tree."""
    with tempfile.TemporaryDirectory(prefix="check-layers-") as top:
        def tree(name, files):
            d = os.path.join(top, name)
            for rel, text in files.items():
                os.makedirs(os.path.join(d, os.path.dirname(rel)), exist_ok=True)
                with open(os.path.join(d, rel), "w") as f:
                    f.write(text)
            return d
        clean = tree("clean", {"core/a.h": "", "core/a.c": '#include "core/a.h"\n',
                               "msg/m.c": '#include "core/a.h"\n'})
        upward = tree("upward", {"core/a.c": '#include "msg/m.h"\n', "msg/m.h": ""})
        cycle = tree("cycle", {"guest/p.h": '#include "q.h"\n', "guest/q.h": '#include "p.h"\n'})
        ok = (not check_includes(clean) and any("higher layer" in e for e in check_includes(upward))
              and any("cycle" in e for e in check_includes(cycle)))
    print("check-layers self-test:", "ok" if ok else "FAILED")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lib", default=os.path.join(os.path.dirname(__file__), "..", "lib"))
    ap.add_argument("--archive", help="the built static library, to check calls too")
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args()
    if a.self_test:
        return self_test()
    errors = check_includes(os.path.normpath(a.lib))
    if a.archive:
        errors += check_calls(a.archive)
    for e in errors:
        print(e)
    what = "includes and calls" if a.archive else "includes"
    print(f"check-layers: {what} of lib/: {'clean' if not errors else f'{len(errors)} violation(s)'}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
