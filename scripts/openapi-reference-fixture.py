#!/usr/bin/env python3
"""Derive the small test fixtures in crates/api/src/openapi/testdata/ from upstream's OpenAPI v3
documents (Kubernetes 1.27, as kept in the kubernetes/kubectl repository's testdata; Apache-2.0).

CI cannot read the full documents (about 2.6 MB), so the tests compare against what this script
extracts from them:

- upstream-1.27-extensions.tsv: the `x-kubernetes-*` extensions of every component schema that has
  any ("" property) and of every property that has any or is a list, map or struct ("{}" if none);
- upstream-1.27-operations.tsv: one line per operation on a resource path: method, path,
  operationId, x-kubernetes-action, GVK, tag, description, the operation's and the path's parameter
  names, request and response content types with their schemas;
- upstream-1.27-patch-pod.json: the whole PATCH operation of /api/v1/namespaces/{namespace}/pods/{name}.

Usage: scripts/openapi-reference-fixture.py [REFERENCE_DIR]
(default /work/shared/reference/openapi-v3-v1.27).
"""
import json
import os
import sys

DOCS = ["api/v1.json", "apis/apps/v1.json", "apis/autoscaling/v1.json", "apis/autoscaling/v2.json"]
OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "api", "src", "openapi", "testdata")
# Paths Skiff does not serve (connect verbs, proxies, subresources outside resources.rs).
SKIP = ("/proxy", "/attach", "/exec", "/portforward", "/log", "/eviction", "/token", "/finalize",
        "/ephemeralcontainers", "componentstatuses", "/bindings")
HEADER = ("# Derived by scripts/openapi-reference-fixture.py from the Kubernetes 1.27 OpenAPI v3 documents\n"
          "# kept in kubernetes/kubectl testdata/openapi/v3 (Apache License 2.0, (c) The Kubernetes Authors).\n")


def short(name):
    for prefix in ("io.k8s.apimachinery.pkg.apis.meta.v1.", "io.k8s.api."):
        if name.startswith(prefix):
            return ("meta." if "apimachinery" in prefix else "") + name[len(prefix):]
    return name


def ref(schema):
    return short(schema["$ref"].rsplit("/", 1)[-1]) if schema and "$ref" in schema else "-"


CT = {"application/json": "json", "application/json;stream=watch": "json-watch",
      "application/vnd.kubernetes.protobuf": "pb", "application/vnd.kubernetes.protobuf;stream=watch": "pb-watch",
      "application/yaml": "yaml", "*/*": "*", "application/apply-patch+yaml": "apply",
      "application/json-patch+json": "json-patch", "application/merge-patch+json": "merge-patch",
      "application/strategic-merge-patch+json": "smp"}


def content(c):
    """`json,pb,yaml=Pod` when every content type has one schema (always, upstream), else per type."""
    schemas = {ref(v.get("schema")) for v in c.values()}
    types = ",".join(sorted(CT.get(ct, ct) for ct in c))
    if len(schemas) == 1:
        return f"{types}={schemas.pop()}"
    return ";".join(f"{CT.get(ct, ct)}={ref(v.get('schema'))}" for ct, v in sorted(c.items()))


def responses(rs):
    """`200,201:json,pb,yaml=Pod 401:` — codes with the same content grouped."""
    groups = {}
    for code, r in sorted(rs.items()):
        groups.setdefault(content(r.get("content", {})) if r.get("content") else "", []).append(code)
    return " ".join(f"{','.join(codes)}:{c}" for c, codes in sorted(groups.items(), key=lambda kv: kv[1]))


def main():
    base = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/reference/openapi-v3-v1.27"
    ext_lines, op_lines, seen = [], [], set()
    for f in DOCS:
        doc = json.load(open(os.path.join(base, f)))
        for name, s in doc["components"]["schemas"].items():
            items = [("", s)] + sorted(s.get("properties", {}).items())
            for prop, ps in items:
                ext = {k: v for k, v in ps.items() if k.startswith("x-kubernetes-")}
                # Lists, maps and structs without extensions are kept too ("{}"), so a test can
                # tell "upstream has none" from "upstream has no such property".
                could_have = prop and (ps.get("type") in ("array", "object") or "allOf" in ps or "$ref" in ps)
                if (ext or could_have) and (name, prop) not in seen:
                    seen.add((name, prop))
                    ext_lines.append(f"{name}\t{prop}\t{json.dumps(ext, sort_keys=True)}")
        for path, item in doc["paths"].items():
            if any(s in path for s in SKIP):
                continue
            path_params = ",".join(sorted(p["name"] for p in item.get("parameters", [])))
            for method in ("get", "put", "post", "delete", "patch"):
                op = item.get(method)
                if not op:
                    continue
                gvk = op.get("x-kubernetes-group-version-kind")
                gvk = f"{gvk['group']}/{gvk['version']}/{gvk['kind']}" if gvk else "-"
                params = ",".join(sorted(p["name"] for p in op.get("parameters", [])))
                body = content(op["requestBody"]["content"]) if "requestBody" in op else "-"
                resp = responses(op["responses"])
                op_lines.append("\t".join([method.upper(), path, op["operationId"], op.get("x-kubernetes-action", "-"),
                                           gvk, ",".join(op.get("tags", [])), op.get("description", ""), params,
                                           path_params, body, resp]))
        if f == "api/v1.json":
            patch = doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"]
            with open(os.path.join(OUT, "upstream-1.27-patch-pod.json"), "w") as out:
                json.dump(patch, out, indent=1, sort_keys=True)
                out.write("\n")
    with open(os.path.join(OUT, "upstream-1.27-extensions.tsv"), "w") as out:
        out.write(HEADER + "# schema\tproperty (empty: the schema itself)\textensions (JSON)\n")
        out.write("\n".join(sorted(ext_lines)) + "\n")
    with open(os.path.join(OUT, "upstream-1.27-operations.tsv"), "w") as out:
        out.write(HEADER + "# method\tpath\toperationId\taction\tgroup/version/kind\ttag\tdescription\t"
                  "operation parameters\tpath parameters\trequest content=schema\tresponses codes:content=schema\n"
                  "# (schema names without io.k8s.api. and with meta. for io.k8s.apimachinery.pkg.apis.meta.v1.)\n")
        out.write("\n".join(sorted(op_lines)) + "\n")


if __name__ == "__main__":
    main()
