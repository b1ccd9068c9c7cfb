"""Prints the OpenTelemetry semantic conventions' registry as JSON, for tests/semconv.rs.

The registry is read from the Python package `opentelemetry-semantic-conventions` (installed
by .ci/semconv-up.sh), the way its own users see it:

- every metric is a `create_<name>(meter, ...)` helper; calling it with a meter that only
  records what it is asked for gives the metric's name, instrument and unit;
- every attribute is a module constant; a `<NAME>_TEMPLATE` constant is a prefix
  (`container.label` for `container.label.<key>`); an enumerated attribute has a
  `<Name>Values` enum class;
- the docstring under a constant or enum member says whether the conventions deprecated it
  ("Deprecated: Replaced by ..."); "Deprecated in favor of stable ..." only says that the
  package moved the constant from `_incubating` to its stable modules, which this script
  reads as well (a name in a stable module is stable).

Output: {"version", "metrics": {name: {instrument, unit, stable, deprecated}},
"attributes": {name: {template, stable, deprecated, values: {value: deprecated}}}}, where
`deprecated` is the conventions' note, or null.
"""

import ast
import importlib
import importlib.metadata
import inspect
import json
import pkgutil
import sys
from enum import Enum

PACKAGE = "opentelemetry.semconv"
KINDS = {
    "create_counter": "Counter",
    "create_observable_counter": "Counter",
    "create_up_down_counter": "UpDownCounter",
    "create_observable_up_down_counter": "UpDownCounter",
    "create_gauge": "Gauge",
    "create_observable_gauge": "Gauge",
    "create_histogram": "Histogram",
}


class RecordingMeter:
    """Stands in for a Meter: each create_* call returns what it was asked to create."""

    def __getattr__(self, method):
        if method not in KINDS:
            raise AttributeError(method)

        def create(name, *args, unit="", **kwargs):
            return {"name": name, "instrument": KINDS[method], "unit": unit}

        return create


def modules(package):
    pkg = importlib.import_module(package)
    for info in pkgutil.iter_modules(pkg.__path__):
        yield importlib.import_module(f"{package}.{info.name}")


def docstrings(module):
    """Constant or enum member name -> the string literal right under it."""
    tree = ast.parse(inspect.getsource(module))
    found = {}

    def scan(body, prefix):
        for stmt, nxt in zip(body, body[1:] + [None]):
            if isinstance(stmt, ast.ClassDef):
                scan(stmt.body, f"{stmt.name}.")
                continue
            if isinstance(stmt, ast.AnnAssign):
                target = stmt.target
            elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                target = stmt.targets[0]
            else:
                continue
            if (
                isinstance(target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                found[prefix + target.id] = nxt.value.value.strip()

    scan(tree.body, "")
    return found


def deprecation(doc):
    """The conventions' deprecation note, if the docstring carries one."""
    if doc and doc.startswith("Deprecated:"):
        return " ".join(doc[len("Deprecated:"):].split())
    return None


def values_class(constant):
    # CPU_MODE -> CpuModeValues
    return "".join(w.capitalize() for w in constant.split("_")) + "Values"


def merge(table, name, entry):
    """A name read from a stable and an incubating module is one entry, stable."""
    old = table.get(name)
    if old is None:
        table[name] = entry
        return
    old["stable"] = old["stable"] or entry["stable"]
    old["deprecated"] = old["deprecated"] or entry["deprecated"]
    for k, v in entry.get("values", {}).items():
        old.setdefault("values", {}).setdefault(k, v)


def main():
    metrics, attributes = {}, {}
    for stable, prefix in ((True, PACKAGE), (False, f"{PACKAGE}._incubating")):
        for module in modules(f"{prefix}.metrics"):
            docs = docstrings(module)
            for fname, fn in vars(module).items():
                if not fname.startswith("create_") or not callable(fn):
                    continue
                params = list(inspect.signature(fn).parameters)[1:]
                made = fn(RecordingMeter(), *[None] * len(params))
                constant = next(
                    (c for c, v in vars(module).items() if v == made["name"] and c.isupper()),
                    None,
                )
                merge(
                    metrics,
                    made["name"],
                    {
                        "instrument": made["instrument"],
                        "unit": made["unit"],
                        "stable": stable,
                        "deprecated": deprecation(docs.get(constant)),
                    },
                )
        for module in modules(f"{prefix}.attributes"):
            docs = docstrings(module)
            for constant, value in vars(module).items():
                if not constant.isupper() or not isinstance(value, str):
                    continue
                template = constant.endswith("_TEMPLATE")
                entry = {
                    "template": template,
                    "stable": stable,
                    "deprecated": deprecation(docs.get(constant)),
                    "values": {},
                }
                enum = getattr(module, values_class(constant), None)
                if isinstance(enum, type) and issubclass(enum, Enum):
                    for member in enum:
                        note = deprecation(docs.get(f"{enum.__name__}.{member.name}"))
                        entry["values"][str(member.value)] = note
                merge(attributes, value, entry)
    json.dump(
        {
            "version": importlib.metadata.version("opentelemetry-semantic-conventions"),
            "metrics": metrics,
            "attributes": attributes,
        },
        sys.stdout,
        indent=1,
        sort_keys=True,
    )


if __name__ == "__main__":
    main()
