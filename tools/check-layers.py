#!/usr/bin/env python3
"""check-layers.py - fail when an include or a call points up the layers.

    tools/ perf/ bindings/  ->  bus/  ->  bus/durable/  ->  shm/

Usage: check-layers.py SOURCE_ROOT. Scans every .c and .h under shm/,
bus/durable/, bus/ (with bus/include/), tools/, perf/ and bindings/ (when
present) and prints one line per offence, "file:line: what", then exits 1:

  * an `#include "..."` of a project header from a higher layer (shm ->
    anything outside shm; bus/durable -> bus's private headers; tools,
    perf, bindings -> anything but evbus.h and their own folder's headers);
  * a call from shm/ or bus/durable/ to an evb_ function defined only in a
    higher layer (a dependency an include check cannot see, since
    declarations can be repeated by hand);
  * an include cycle among project headers.

Standard library only, so CI runs it without installing anything.
"""
import os
import re
import sys

LAYERS = ['shm', 'bus/durable', 'bus', 'top']
RANK = {name: i for i, name in enumerate(LAYERS)}
TOP_DIRS = ['tools', 'perf', 'bindings']
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
CALL = re.compile(r'\b(evb_[A-Za-z0-9_]+)\s*\(')
# A definition in this code base: return type and name on one line at
# column 0, no semicolon, not static.
DEFINITION = re.compile(r'^(?!static\b)[A-Za-z_][\w \t\*]*?\b(evb_[A-Za-z0-9_]+)\s*\([^;]*$')


def layer_of(rel):
    """Layer and folder of a path relative to the root, or (None, None)."""
    parts = rel.split('/')
    if parts[0] == 'shm':
        return 'shm', 'shm'
    if parts[0] == 'bus':
        if len(parts) > 2 and parts[1] == 'durable':
            return 'bus/durable', 'bus/durable'
        if len(parts) > 2 and parts[1] == 'include':
            return 'bus', 'bus/include'
        return 'bus', 'bus'
    if parts[0] in TOP_DIRS:
        return 'top', parts[0]
    return None, None


def sources(root):
    out = []
    for top in ['shm', 'bus'] + TOP_DIRS:
        base = os.path.join(root, top)
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for name in sorted(filenames):
                if name.endswith(('.c', '.h')):
                    out.append(os.path.relpath(os.path.join(dirpath, name), root))
    return out


def strip_comments(text):
    """Blank out comments and string literals, keeping line numbers."""
    def blank(m):
        return re.sub(r'[^\n]', ' ', m.group(0))
    return re.sub(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"', blank, text, flags=re.S)


def resolve(root, rel, target, headers):
    """Project path of TARGET included from REL, or None for a non-project one."""
    own = os.path.normpath(os.path.join(os.path.dirname(rel), target))
    if own in headers:
        return own
    # Not beside the includer: the first search directory that has it.
    for d in ['shm', 'bus/durable', 'bus', 'bus/include'] + TOP_DIRS:
        cand = os.path.normpath(os.path.join(d, target))
        if cand in headers:
            return cand
    return None


def include_allowed(rel, dep):
    layer, folder = layer_of(rel)
    dlayer, dfolder = layer_of(dep)
    if layer == 'shm':
        return dlayer == 'shm'
    if layer == 'bus/durable':
        return dlayer in ('shm', 'bus/durable') or dep == 'bus/include/evbus.h'
    if layer == 'bus':
        return dlayer != 'top'
    return dep == 'bus/include/evbus.h' or dfolder == folder


def main(argv):
    if len(argv) != 2:
        print('usage: check-layers.py SOURCE_ROOT', file=sys.stderr)
        return 2
    root = argv[1]
    files = sources(root)
    headers = {f for f in files if f.endswith('.h')}
    text = {}
    for f in files:
        with open(os.path.join(root, f), encoding='utf-8', errors='replace') as fh:
            text[f] = fh.read()
    offences = []
    graph = {h: [] for h in headers}

    for f in files:
        for no, line in enumerate(text[f].splitlines(), 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            dep = resolve(root, f, m.group(1), headers)
            if dep is None:
                continue
            if f in graph:
                graph[f].append((dep, no))
            if not include_allowed(f, dep):
                offences.append('%s:%d: includes %s (%s), a layer above or beside it'
                                % (f, no, m.group(1), dep))

    # Where each evb_ function is defined, by layer.
    defined = {}
    code = {f: strip_comments(text[f]) for f in files}
    for f in files:
        if not f.endswith('.c'):
            continue
        for line in code[f].splitlines():
            m = DEFINITION.match(line)
            if m:
                defined.setdefault(m.group(1), set()).add(f)
    for f in files:
        layer, _ = layer_of(f)
        if layer not in ('shm', 'bus/durable'):
            continue
        for no, line in enumerate(code[f].splitlines(), 1):
            if DEFINITION.match(line):
                continue
            for m in CALL.finditer(line):
                where = defined.get(m.group(1))
                if not where:
                    continue
                if min(RANK[layer_of(w)[0]] for w in where) > RANK[layer]:
                    offences.append('%s:%d: calls %s, defined above in %s'
                                    % (f, no, m.group(1), ', '.join(sorted(where))))

    # Include cycles among headers: depth-first, each cycle reported once.
    state = {}
    seen_cycles = set()

    def visit(h, stack):
        state[h] = 1
        stack.append(h)
        for dep, no in graph.get(h, []):
            if dep not in graph:
                continue
            if state.get(dep) == 1:
                cyc = stack[stack.index(dep):]
                key = frozenset(cyc)
                if key not in seen_cycles:
                    seen_cycles.add(key)
                    offences.append('%s:%d: include cycle %s'
                                    % (h, no, ' -> '.join(cyc + [dep])))
            elif not state.get(dep):
                visit(dep, stack)
        stack.pop()
        state[h] = 2

    for h in sorted(graph):
        if not state.get(h):
            visit(h, [])

    for o in offences:
        print(o)
    return 1 if offences else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
