"""Writes the Kubernetes JSON schemas of one version in kubeconform's layout.

    python scripts/tools/k8s_schemas.py VERSION DIR

The schemas come from the kubernetes-validate package (pinned in pyproject.toml), which ships
them for many Kubernetes versions, strict (no unknown fields) and split: every kind's file
refers into one shared `_definitions.json` by an absolute `$ref`. kubeconform wants one
standalone file per kind, named `<kind>-<group>-<version>.json` (`deployment-apps-v1.json`,
`service-v1.json`): each file written here is the kind's schema with the definitions it
reaches copied into its own `$defs`, and every `$ref` (`/api/_definitions.json#/$defs/X` in
the kind's file, `#/$defs/X` within the definitions) pointing there.
"""

from __future__ import annotations

import json
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.add(ref.rsplit("/", 1)[-1])
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found


def _local(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: "#/$defs/" + value.rsplit("/", 1)[-1]
            if key == "$ref" and isinstance(value, str)
            else _local(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_local(value) for value in node]
    return node


def standalone(kind_schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    wanted, todo = set(), list(_refs(kind_schema))
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo += _refs(definitions[name])
    schema: dict[str, Any] = _local({k: v for k, v in kind_schema.items() if k != "$id"})
    schema["$defs"] = {name: _local(definitions[name]) for name in sorted(wanted)}
    return schema


def main(version: str, out: Path) -> int:
    source = files("kubernetes_validate") / "kubernetes-json-schema" / f"v{version}-local-strict"
    definitions = json.loads((source / "_definitions.json").read_text())["$defs"]
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    for entry in source.iterdir():
        if entry.name.startswith("_") or not entry.name.endswith(".json"):
            continue
        schema = json.loads(entry.read_text())
        if "x-kubernetes-group-version-kind" not in schema:
            continue  # a part of a kind, not a kind kubeconform looks up
        (out / entry.name).write_text(json.dumps(standalone(schema, definitions)))
        written += 1
    print(f"k8s_schemas: {written} kinds of Kubernetes {version} in {out}")
    return 0 if written else 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], Path(sys.argv[2])))
