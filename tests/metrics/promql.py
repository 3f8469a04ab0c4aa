"""What a PromQL expression (or a Grafana variable query) reads: metric names and label names.

Not a PromQL parser: it removes what cannot be a metric name (strings, label matchers, range and
subquery selectors, grouping clauses, offsets, numbers, Grafana variables, keywords), then every
identifier left that is not called like a function is a metric name. Good enough for dashboards,
and tested against the shapes they use, including deliberately wrong names.
"""

from __future__ import annotations

import re

KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset",
            "bool", "inf", "nan", "atan2"}
GROUPING = r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)"

_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_NAME_MATCHER = re.compile(r'__name__\s*=\s*"((?:\\.|[^"\\])*)"')
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^{}]*)\}")
_MATCHER_LABEL = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+|\[\[\w+\]\]")
_NUMBER = re.compile(r"(?<![\w:.])(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)")
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def _strip_strings(expr: str) -> str:
    return _STRING.sub('""', expr)


def metric_names(expr: str) -> set[str]:
    """Every metric name `expr` selects."""
    expr = re.sub(r"#[^\n]*", "", expr)  # comments
    names = {m.group(1) for m in _NAME_MATCHER.finditer(expr)}  # {__name__="x"}
    expr = _strip_strings(expr)
    expr = re.sub(r"\{[^{}]*\}", " ", expr)  # label matchers
    expr = re.sub(r"\[[^\[\]]*\]", " ", expr)  # range and subquery selectors
    expr = re.sub(r"\boffset\s+-?[\w$]+", " ", expr, flags=re.I)
    expr = re.sub(r"@\s*(?:start\s*\(\s*\)|end\s*\(\s*\)|[\d.]+)", " ", expr)
    expr = re.sub(GROUPING, " ", expr, flags=re.I)
    expr = re.sub(r"\b(?:group_left|group_right)\b", " ", expr, flags=re.I)
    expr = _VARIABLE.sub(" 1 ", expr)
    expr = _NUMBER.sub(" ", expr)
    for m in _IDENT.finditer(expr):
        word = m.group(0)
        if word.lower() in KEYWORDS:
            continue
        if re.match(r"\s*\(", expr[m.end():]):  # a function or an aggregation
            continue
        names.add(word)
    return names


def selector_labels(expr: str) -> dict[str, set[str]]:
    """{metric name: label names its selectors match on} (selectors with a name only)."""
    out: dict[str, set[str]] = {}
    for m in _SELECTOR.finditer(_strip_strings(expr)):
        name = m.group(1)
        if name and name.lower() not in KEYWORDS:
            out.setdefault(name, set()).update(label for label in _MATCHER_LABEL.findall(m.group(2)) if label != "__name__")
    return out


def grouping_labels(expr: str) -> set[str]:
    """Label names in by/without/on/ignoring/group_* clauses."""
    out = set()
    for m in re.finditer(GROUPING, _strip_strings(expr), flags=re.I):
        out.update(label.strip() for label in m.group(1).split(",") if label.strip())
    return out


def variable_query_expr(query: str) -> str | None:
    """The PromQL inside a Grafana Prometheus variable query, or None when it selects no metric."""
    query = query.strip()
    m = re.fullmatch(r"label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)", query, flags=re.S)
    if m:
        return m.group(1)
    if re.fullmatch(r"label_values\(\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)|label_names\(\s*\)|metrics\(.*\)", query, flags=re.S):
        return None
    m = re.fullmatch(r"query_result\((.*)\)", query, flags=re.S)
    return m.group(1) if m else query


def exposed_names(text: str) -> dict[str, set[str] | None]:
    """From a /metrics page (text format 0.0.4): {queryable series name: label names on its samples}.

    A family with no sample yet still counts, with None for its labels (its TYPE line says what it
    will expose): a counter by its `_total` name, a histogram as `_bucket`/`_sum`/`_count`, a
    summary as itself, `_sum` and `_count`, a gauge or untyped family as itself.
    """
    out: dict[str, set[str] | None] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(None, 3)
            if kind == "histogram":
                series = [name + "_bucket", name + "_sum", name + "_count"]
            elif kind == "summary":
                series = [name, name + "_sum", name + "_count"]
            elif kind == "counter":
                series = [name if name.endswith("_total") else name + "_total"]
            else:
                series = [name]
            for s in series:
                out.setdefault(s, None)
        elif line and not line.startswith("#"):
            m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?", line)
            labels = set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', m.group(2) or ""))
            out[m.group(1)] = (out.get(m.group(1)) or set()) | labels
    return out


SCRAPE_LABELS = {"instance", "job"}  # added by Prometheus to every scraped series


def problems(expr: str, exposed: dict[str, set[str] | None]) -> list[str]:
    """Why `expr` would not find what it means to on a node exposing `exposed` (empty: it would)."""
    out = []
    names = metric_names(expr)
    for name in sorted(names - set(exposed)):
        out.append(f"{name}: no such series")
    for name, labels in selector_labels(expr).items():
        seen = exposed.get(name)
        if seen is None:
            if name in exposed:
                out.append(f"{name}: no sample, so its labels cannot be checked")
            continue
        for label in sorted(labels - seen - SCRAPE_LABELS):
            out.append(f"{name}: no label {label!r} (it has {sorted(seen)})")
    seen_any = set().union(*(exposed.get(n) or set() for n in names)) if names else set()
    for label in sorted(grouping_labels(expr) - seen_any - SCRAPE_LABELS):
        out.append(f"grouping by {label!r}, which none of {sorted(names)} has")
    return out
