#!/usr/bin/env python3
"""prom_check.py - check text on stdin against the Prometheus text
exposition format (version 0.0.4), stricter than a scraper where the
format leaves room: every sample's family has # HELP and # TYPE before its
first sample, a family's samples are contiguous, no (name, labels) pair
repeats, counters end in _total, values are numbers. Exit 0 when it holds,
else 1 with the first bad line. Used by test_cli_stat.sh, also where
promtool (Debian package prometheus) is not installed."""
import re
import sys

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r"^(%s)(?:\{((?:%s)(?:,%s)*)?,?\})? (\S+)(?: (-?\d+))?$" % (NAME, LABEL, LABEL))
HELP = re.compile(r"^# HELP (%s) (?:[^\\\n]|\\[\\n])*$" % NAME)
TYPE = re.compile(r"^# TYPE (%s) (counter|gauge|histogram|summary|untyped)$" % NAME)
VALUE = re.compile(r"^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?Inf|NaN)$")


def fail(n, line, why):
    print("line %d: %s: %r" % (n, why, line))
    sys.exit(1)


def main():
    helped, typed, done, seen = {}, {}, set(), set()
    current = None
    samples = 0
    for n, line in enumerate(sys.stdin.read().split("\n"), 1):
        if line == "":
            continue
        if line.startswith("#"):
            m = HELP.match(line) or TYPE.match(line)
            if line.startswith("# HELP ") or line.startswith("# TYPE "):
                if not m:
                    fail(n, line, "bad HELP/TYPE line")
                name = m.group(1)
                table = helped if line.startswith("# HELP") else typed
                if name in table:
                    fail(n, line, "second %s for %s" % (line[2:6], name))
                if name in done or (current and current != name and name in seen):
                    fail(n, line, "family %s after its samples" % name)
                table[name] = m.group(2) if table is typed else True
            continue
        m = SAMPLE.match(line)
        if not m:
            fail(n, line, "not a sample line")
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        if not VALUE.match(value):
            fail(n, line, "bad value")
        if name not in helped or name not in typed:
            fail(n, line, "sample before its HELP and TYPE")
        if typed[name] == "counter" and not name.endswith("_total"):
            fail(n, line, "counter without _total")
        if current != name:
            if current is not None:
                done.add(current)
            if name in done:
                fail(n, line, "family %s not contiguous" % name)
            current = name
        keys = [l.split("=", 1)[0] for l in re.findall(LABEL, labels)]
        if len(keys) != len(set(keys)):
            fail(n, line, "a label twice")
        key = (name, tuple(sorted(re.findall(LABEL, labels))))
        if key in seen:
            fail(n, line, "series repeated")
        seen.add(key)
        seen.add(name)
        samples += 1
    if samples == 0:
        print("no samples")
        sys.exit(1)


main()
