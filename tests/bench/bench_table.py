# SPDX-License-Identifier: GPL-2.0-or-later
"""The one table the benchmark prints: a Markdown table whose columns are padded, so it
reads in a terminal and pastes into docs/performance.md as it is. Sections are rows of
their own, printed in the order of their numbers whatever order they ran in."""

COLUMNS = ["measurement", "median", "p90", "p99 / spread", "notes", "target", "verdict"]


def fmt(v, unit=""):
    """Three significant digits or so; thousands separated."""
    if v is None or v == "":
        return ""
    v = float(v)
    a = abs(v)
    if a >= 1000:
        s = format(round(v), ",")
    elif a >= 100:
        s = "%.0f" % v
    elif a >= 10:
        s = "%.1f" % v
    elif a >= 0.1:
        s = "%.2f" % v
    else:
        s = "%.3f" % v
    return s + unit


def verdict(ok):
    """None: no target for this row."""
    return "" if ok is None else ("met" if ok else "**missed**")


class Table:
    def __init__(self):
        self.sections = []

    def section(self, title):
        self.sections.append((title, []))

    def row(self, what, median="", p90="", p99="", note="", target="", verdict=""):
        self.sections[-1][1].append([what, median, p90, p99, note, target, verdict])

    def render(self):
        rows = []
        for title, body in sorted(self.sections, key=lambda s: s[0].split(" ", 1)[0]):
            rows.append(["**%s**" % title] + [""] * (len(COLUMNS) - 1))
            rows.extend(body)
        # a section title spans the row: it does not widen the first column
        width = [max([len(COLUMNS[i])] + [len(r[i]) for r in rows if not (i == 0 and r[0].startswith("**"))])
                 for i in range(len(COLUMNS))]
        right = {1, 2, 3}

        def line(cells):
            out = []
            for i, c in enumerate(cells):
                out.append(c.rjust(width[i]) if i in right else c.ljust(width[i]))
            return "| " + " | ".join(out) + " |"

        text = [line(COLUMNS), "|" + "|".join(("-" * (w + 1) + ":") if i in right else "-" * (w + 2)
                                             for i, w in enumerate(width)) + "|"]
        text += [line(r) for r in rows]
        return "\n".join(text)
