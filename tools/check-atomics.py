#!/usr/bin/env python3
"""check-atomics.py - fail when an atomic in shm/ or bus/ hides its order.

Usage: check-atomics.py SOURCE_ROOT [FILE...].
Scans every .c and .h under
shm/ and bus/ (bus/durable/ included), or only the FILEs given, and prints
one line per offence, "file:line: what", then exits 1 (STYLE 2.7):

  * an implicit seq_cst form: atomic_load( / atomic_store( /
    atomic_exchange( / atomic_fetch_<op>( / atomic_compare_exchange_*( /
    atomic_flag_*( without _explicit, and ++, --, compound or plain
    assignment on an identifier declared _Atomic (not a pointer to one) in
    the same file;
  * an ordered operation - memory_order_acquire, _release, _acq_rel,
    _seq_cst, _consume, their __ATOMIC_* spellings, atomic_thread_fence -
    whose statement has no comment naming an edge label (a capital and
    digits: F1, R2, K4) on its lines or in the WINDOW lines above it;
  * a label that no edge table defines: tables are comment blocks with
    entries of the form " *   F1  what it orders" (the top of shm/claim.c,
    bus/durable/durable.h, bus/cursor_file.c, bus/bus.c); every label such a
    block mentions counts as defined, and a site must name at least one;
  * an edge label that heads entries of two tables (one name, one edge);
  * memory_order_relaxed (or __ATOMIC_RELAXED) with no comment at all on
    its statement's lines or in the WINDOW lines above: relaxed needs its
    reason too ("statistic", "only this thread writes it"). One reason may
    head a run of consecutive relaxed statements.

The window is counted from the first line of the statement, so a label in
the comment just above a call that spans several lines covers every order
argument of it.

There are no exceptions: every site in shm/ and bus/ is labelled (the
edge tables are at the top of shm/claim.c, in bus/durable/durable.h and
bus/cursor_file.c). Standard library only, so CI runs it without
installing anything.
"""
import os
import re
import sys

SCAN_DIRS = ['shm', 'bus']
WINDOW = 6

IMPLICIT = re.compile(
    r'\b(atomic_(?:load|store|exchange|fetch_(?:add|sub|or|xor|and)'
    r'|compare_exchange_(?:strong|weak)|flag_test_and_set|flag_clear))\s*\(')
ORDERED = re.compile(
    r'\b(memory_order_(?:acquire|release|acq_rel|seq_cst|consume)'
    r'|__ATOMIC_(?:ACQUIRE|RELEASE|ACQ_REL|SEQ_CST|CONSUME)'
    r'|atomic_(?:thread|signal)_fence)\b')
RELAXED = re.compile(r'\b(memory_order_relaxed|__ATOMIC_RELAXED)\b')
# An edge label: F1, R2, K4, S2. Language names (C11) are not labels.
LABEL = re.compile(r'\b(?!C(?:89|99|11|17|23)\b)[A-Z][0-9]+\b')
# `_Atomic T name` or `_Atomic(T) name`, not a pointer: the name itself is
# the atomic object, so arithmetic or assignment on it is seq_cst.
ATOMIC_DECL = re.compile(
    r'\b_Atomic\b\s*(?:\([^)]*\)|(?:[A-Za-z_]\w*\s+)*?[A-Za-z_]\w*)\s+([A-Za-z_]\w*)\s*'
    r'(?=[;,=\[)])')


# An entry of an edge table inside a block comment: " *   F1  flushed: ..."
TABLE_ENTRY = re.compile(r'^\s*\*\s+([A-Z][0-9]+)\s{2,}\S')


def edge_tables(root, files):
    """Labels defined by the edge tables of FILES: {label: [file, ...]} for
    entry heads, and the set of every label the table blocks mention."""
    heads, mentioned = {}, set()
    for rel in files:
        with open(os.path.join(root, rel), encoding='utf-8', errors='replace') as fh:
            text = fh.read()
        for block in re.findall(r'/\*.*?\*/', text, flags=re.S):
            lines = block.split('\n')
            entries = [m.group(1) for m in map(TABLE_ENTRY.match, lines) if m]
            if not entries:
                continue
            for label in set(entries):
                heads.setdefault(label, []).append(rel)
            mentioned.update(LABEL.findall(block))
    return heads, mentioned


def split_code_comments(text):
    """Per line: (code with comments and literals blanked, comment text)."""
    code, comment = [], []
    i, n = 0, len(text)
    state = 'code'
    cline, mline = [], []
    while i < n:
        c = text[i]
        nxt = text[i + 1] if i + 1 < n else ''
        if c == '\n':
            code.append(''.join(cline))
            comment.append(''.join(mline))
            cline, mline = [], []
            if state == 'line':
                state = 'code'
            i += 1
            continue
        if state == 'code':
            if c == '/' and nxt == '*':
                state = 'block'
                cline.append('  ')
                i += 2
                continue
            if c == '/' and nxt == '/':
                state = 'line'
                cline.append('  ')
                i += 2
                continue
            if c in '"\'':
                state = c
            cline.append(c)
        elif state == 'block':
            if c == '*' and nxt == '/':
                state = 'code'
                cline.append('  ')
                i += 2
                continue
            mline.append(c)
            cline.append(' ')
        elif state == 'line':
            mline.append(c)
            cline.append(' ')
        else:  # inside a string or character literal
            if c == '\\':
                cline.append('  ')
                i += 2
                continue
            if c == state:
                state = 'code'
                cline.append(c)
            else:
                cline.append(' ')
        i += 1
    code.append(''.join(cline))
    comment.append(''.join(mline))
    return code, comment


def statement_span(code, line_idx, col):
    """First and last line (0-based) of the statement holding code[line_idx][col]."""
    # Back to the previous ';', '{' or '}' outside parentheses.
    depth = 0
    li, ci = line_idx, col - 1
    start = line_idx
    found = False
    while li >= 0 and not found:
        line = code[li]
        while ci >= 0:
            ch = line[ci]
            if ch == ')':
                depth += 1
            elif ch == '(':
                depth -= 1
            elif ch in ';{}' and depth <= 0:
                found = True
                break
            ci -= 1
        if found:
            # The statement starts after that character: on this line if
            # anything but blanks follows it, else on the next code line.
            rest = line[ci + 1:]
            start = li if rest.strip() else li + 1
            break
        start = li
        li -= 1
        if li >= 0:
            ci = len(code[li]) - 1
    while start < line_idx and not code[start].strip():
        start += 1
    # Forward to the ';' or '{' that ends it, outside parentheses.
    depth = 0
    li, ci = line_idx, col
    end = line_idx
    while li < len(code):
        line = code[li]
        done = False
        while ci < len(line):
            ch = line[ci]
            if ch == '(':
                depth += 1
            elif ch == ')':
                depth -= 1
            elif ch in ';{' and depth <= 0:
                done = True
                break
            ci += 1
        end = li
        if done:
            break
        li += 1
        ci = 0
    return start, end


def window_comments(comment, start, end):
    lo = max(0, start - WINDOW)
    return comment[lo:end + 1]


def check_file(path, rel, defined):
    with open(path, encoding='utf-8', errors='replace') as fh:
        text = fh.read()
    code, comment = split_code_comments(text)
    out = []

    atomics = set()
    for line in code:
        for m in ATOMIC_DECL.finditer(line):
            atomics.add(m.group(1))
    if atomics:
        names = '|'.join(sorted(re.escape(a) for a in atomics))
        # name++, name += x, name = x (not ==), ++name, --name
        rmw = re.compile(
            r'(?<![\w.>])(?:(?:->|\.)\s*)?\b(' + names + r')\b\s*'
            r'(\+\+|--|[-+*/%&|^]=|<<=|>>=|=(?!=))'
            r'|(\+\+|--)\s*(?:[\w\]\)]+\s*(?:->|\.)\s*)*\b(' + names + r')\b')
        member = re.compile(
            r'(?:->|\.)\s*\b(' + names + r')\b\s*(\+\+|--|[-+*/%&|^]=|<<=|>>=|=(?!=))')
        for no, line in enumerate(code, 1):
            if ATOMIC_DECL.search(line):
                continue  # the declaration (and its initialiser) itself
            hits = set()
            for m in member.finditer(line):
                hits.add((m.group(1), m.group(2)))
            for m in rmw.finditer(line):
                if m.group(1):
                    hits.add((m.group(1), m.group(2)))
                else:
                    hits.add((m.group(4), m.group(3)))
            for name, op in sorted(hits):
                out.append(('%s:%d: `%s` on _Atomic %s is an implicit seq_cst '
                            'access; use atomic_*_explicit with a written order'
                            % (rel, no, op, name)))

    relaxed_lines = set()
    for idx, line in enumerate(code):
        for m in RELAXED.finditer(line):
            start, end = statement_span(code, idx, m.start())
            relaxed_lines.update(range(start, end + 1))

    for idx, line in enumerate(code):
        no = idx + 1
        for m in IMPLICIT.finditer(line):
            out.append(('%s:%d: %s() is implicitly seq_cst; use %s_explicit() with '
                        'a written order' % (rel, no, m.group(1), m.group(1))))
        for m in ORDERED.finditer(line):
            start, end = statement_span(code, idx, m.start())
            near = [l for c in window_comments(comment, start, end)
                    for l in LABEL.findall(c)]
            if not near:
                out.append(('%s:%d: %s without an edge label (e.g. /* F1: ...; pairs '
                            'with ... */) within %d lines above its statement'
                            % (rel, no, m.group(1), WINDOW)))
            elif not any(l in defined for l in near):
                out.append(('%s:%d: %s names %s, which no edge table defines'
                            % (rel, no, m.group(1), ', '.join(sorted(set(near))))))
        for m in RELAXED.finditer(line):
            first, end = statement_span(code, idx, m.start())
            start = first
            # One reason may head a run of relaxed statements (a block of
            # statistics): the window starts above the first of the run.
            while start - 1 in relaxed_lines:
                start -= 1
            if not any(c.strip() for c in window_comments(comment, start, end)):
                out.append(('%s:%d: %s without a comment saying why relaxed is '
                            'enough within %d lines above its statement'
                            % (rel, no, m.group(1), WINDOW)))
    return out


def sources(root):
    out = []
    for top in SCAN_DIRS:
        base = os.path.join(root, top)
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for name in sorted(filenames):
                if name.endswith(('.c', '.h')):
                    out.append(os.path.relpath(os.path.join(dirpath, name), root))
    return out


def main(argv):
    if len(argv) < 2:
        print('usage: check-atomics.py SOURCE_ROOT [FILE...]', file=sys.stderr)
        return 2
    root = argv[1]
    files = argv[2:] or sources(root)
    heads, defined = edge_tables(root, sources(root))
    offences = ['%s: edge label %s heads entries of more than one table (%s)'
                % (where[0], label, ', '.join(where))
                for label, where in sorted(heads.items()) if len(where) > 1]
    for f in files:
        rel = os.path.relpath(f, root) if os.path.isabs(f) else f
        offences += check_file(os.path.join(root, rel), rel, defined)
    for o in offences:
        print(o)
    return 1 if offences else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
