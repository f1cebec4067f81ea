#!/usr/bin/env python3
"""Generate crates/api/src/protobuf/schema.rs: the Kubernetes protobuf message table.

The API server decodes `application/vnd.kubernetes.protobuf` request bodies into JSON by walking a
table of messages (see crates/api/src/protobuf.rs). The table is joined here from three sources that
are all on a developer machine, so no .proto file is needed:

1. k8s-pb 0.9.0 (cargo registry): prost-generated structs, one per protobuf message, with
   `#[prost(<type>, <optional|repeated|map>, tag = "N")]` attributes. Gives tags, wire types,
   repeated/map and the referenced message of every field. The field names are snake_case there.
2. k8s-openapi 0.29.0 (cargo registry), `v1_33` first then newer version trees for fields newer than
   1.33: the JSON field names (`serialize_field(&mut state, "volumeID", ...)`) and the definition
   names (`io.k8s.api.core.v1.AWSElasticBlockStoreVolumeSource`), matched to the protobuf fields by
   comparing lowercase names without `_`, `-` and `$` within the same type.
3. kubectl 1.32 (a Go binary, on the developer machines at the default path): the Go struct field types and `json:` tags that the Go
   runtime keeps for reflection. They tell what protobuf cannot: whether a scalar field is a Go
   pointer (a present zero is meaningful: `replicas: 0`) or a plain value with `omitempty` (a present
   zero means "unset" and Go's JSON would leave it out: `hostNetwork: false`), and which message
   fields are embedded with `json:",inline"` (Volume.volumeSource). Fields newer than 1.32 keep
   every present value.

Usage:
    python3 scripts/gen-protobuf-schema.py [--kubectl PATH] > crates/api/src/protobuf/schema.rs

The report (counts, unmatched names) goes to stderr.
"""

import argparse
import glob
import os
import re
import struct
import sys
from collections import defaultdict

REGISTRY = os.path.expanduser("~/.cargo/registry/src")
KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"
OPENAPI_VERSIONS = ["v1_33", "v1_34", "v1_35", "v1_36", "v1_37"]

# Messages whose JSON form is not an object. Keyed by the definition name.
SHAPES = {
    "io.k8s.apimachinery.pkg.api.resource.Quantity": "Quantity",
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": "IntOrString",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Time": "Time",
    "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime": "MicroTime",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Duration": "Duration",
    "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1": "RawJson",
    "io.k8s.apimachinery.pkg.runtime.RawExtension": "RawJson",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON": "RawJson",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray": "SchemaOrArray",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool": "SchemaOrBool",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray": "SchemaOrStringArray",
}
# Named string slices (`type Verbs []string`) are wrapped in a message with `repeated string items = 1`
# on the wire; their JSON is the plain array.
ITEMS_WRAPPERS = {"Verbs", "ExtraValue"}
# Packages every Kubernetes object needs even when k8s-openapi has few definitions in them.
ALWAYS_PACKAGES = {
    "io.k8s.apimachinery.pkg.apis.meta.v1",
    "io.k8s.apimachinery.pkg.runtime",
    "io.k8s.apimachinery.pkg.util.intstr",
    "io.k8s.apimachinery.pkg.api.resource",
}

# JSON names that neither k8s-openapi nor kubectl 1.32 know and camelCase would get wrong.
JSON_NAME_OVERRIDES = {
    ("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.ConversionRequest", "desired_api_version"):
        "desiredAPIVersion",
}

SCALARS = {"string": "Str", "bytes": "Bytes", "bool": "Bool", "int32": "I32", "int64": "I64", "double": "F64"}


def log(*args):
    print(*args, file=sys.stderr)


def crate_dir(name):
    found = sorted(glob.glob(os.path.join(REGISTRY, "*", name)))
    if not found:
        sys.exit(f"{name} is not in the cargo registry ({REGISTRY}); run `cargo fetch` in the workspace first")
    return found[-1]


def norm(name):
    return re.sub(r"[_\-$]", "", name).lower()


# ---------------------------------------------------------------------------------------------------
# k8s-pb: protobuf messages


def module_to_package(module):
    """`api/core/v1` -> `io.k8s.api.core.v1` (the OpenAPI definition prefix)."""
    parts = module.split("/")
    if parts[0] == "apiextensions_apiserver":
        parts[0] = "apiextensions-apiserver"
    if parts[0] == "kube_aggregator":
        parts[0] = "kube-aggregator"
    return "io.k8s." + ".".join(parts)


def package_to_go(package):
    """`io.k8s.api.core.v1` -> `k8s.io/api/core/v1` (the Go import path)."""
    return "k8s.io/" + package[len("io.k8s."):].replace(".", "/")


FIELD_RE = re.compile(
    r"#\[prost\((?P<attr>[^\]]*)\)\]\s*pub (?P<name>(?:r#)?\w+):\s*(?P<ty>[^;]+?),\s*(?=///|#\[|\Z)", re.S
)


def parse_pb_type_path(ty, module):
    """The message a prost field type refers to, as (package, prost struct name)."""
    ty = re.sub(r"\s+", "", ty).replace(",>", ">")
    for wrapper in ("::core::option::Option<", "::prost::alloc::vec::Vec<", "::prost::alloc::boxed::Box<"):
        while ty.startswith(wrapper):
            ty = ty[len(wrapper):-1]
    if ty.startswith("::prost::alloc::collections::BTreeMap<"):
        ty = ty[len("::prost::alloc::collections::BTreeMap<"):-1]
        ty = ty.split(",", 1)[1]
    path = ty.split("::")
    base = module.split("/")
    while path and path[0] == "super":
        base = base[:-1]
        path = path[1:]
    return module_to_package("/".join(base + path[:-1])), path[-1]


def parse_k8s_pb(root):
    messages = {}  # (package, prost name) -> list of fields
    order = []
    for path in sorted(glob.glob(os.path.join(root, "src", "**", "mod.rs"), recursive=True)):
        module = os.path.relpath(os.path.dirname(path), os.path.join(root, "src"))
        text = open(path, encoding="utf-8").read()
        package = module_to_package(module)
        for m in re.finditer(r"^pub struct (\w+) \{(?:\}|\n(.*?)^\})", text, re.S | re.M):
            name, body = m.group(1), m.group(2) or ""
            fields = []
            for f in FIELD_RE.finditer(body):
                attr = [a.strip() for a in re.split(r",(?![^\"]*\"\s*,)", f.group("attr"))]
                attr_text = f.group("attr")
                tag = int(re.search(r'tag = "(\d+)"', attr_text).group(1))
                field = {"tag": tag, "pb_name": f.group("name").removeprefix("r#"), "ref": None}
                mm = re.match(r'btree_map = "(\w+), (\w+)"', attr_text)
                if mm:
                    key, value = mm.group(1), mm.group(2)
                    assert key == "string", (package, name, attr_text)
                    field["label"] = "Map"
                    field["kind"] = "Msg" if value == "message" else SCALARS[value]
                else:
                    kind = attr[0].split(" ")[0]
                    field["label"] = "Rep" if "repeated" in attr_text else "Opt"
                    field["kind"] = "Msg" if kind == "message" else SCALARS[kind]
                if field["kind"] == "Msg":
                    field["ref"] = parse_pb_type_path(f.group("ty"), module)
                fields.append(field)
            messages[(package, name)] = fields
            order.append((package, name))
    return messages


# ---------------------------------------------------------------------------------------------------
# k8s-openapi: JSON names


def parse_k8s_openapi(root):
    """Per OpenAPI version tree: definition -> JSON field names, and apiVersion -> package."""
    trees = {}
    group_versions = {}
    for version in OPENAPI_VERSIONS:
        defs = {}
        for path in glob.glob(os.path.join(root, "src", version, "**", "*.rs"), recursive=True):
            text = open(path, encoding="utf-8").read()
            m = re.match(r"// Generated from definition (\S+)", text)
            if not m:
                continue
            definition = m.group(1)
            defs[definition] = re.findall(r'serialize_field\(&mut state, "([^"]+)"', text)
            if version == "v1_33":
                av = re.search(r'const API_VERSION: &\'static str = "([^"]+)";', text)
                if av:
                    group_versions.setdefault(av.group(1), set()).add(definition.rsplit(".", 1)[0])
        trees[version] = defs
    # meta/v1's discovery types (APIGroup, APIVersions, ...) also say `v1`; the kinds of `v1` are core's.
    resolved = {}
    for gv, packages in group_versions.items():
        if len(packages) > 1:
            packages = {p for p in packages if p.startswith("io.k8s.api.")}
        assert len(packages) == 1, (gv, packages)
        resolved[gv] = packages.pop()
    return trees, resolved


# ---------------------------------------------------------------------------------------------------
# kubectl: Go struct field types and json tags from the runtime type descriptors (go1.2x, amd64 ELF)


class GoBinary:
    KIND_POINTER, KIND_SLICE, KIND_ARRAY, KIND_CHAN, KIND_MAP, KIND_STRUCT = 22, 23, 17, 18, 21, 25

    def __init__(self, path):
        self.data = open(path, "rb").read()
        d = self.data
        assert d[:4] == b"\x7fELF" and d[4] == 2, "not a 64-bit ELF file"
        shoff, = struct.unpack_from("<Q", d, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", d, 0x3A)
        sections = []
        for i in range(shnum):
            name, _typ, _flags, addr, off, size = struct.unpack_from("<IIQQQQ", d, shoff + i * shentsize)
            sections.append([name, addr, off, size])
        stroff = sections[shstrndx][2]
        self.sections = {}
        for name, addr, off, size in sections:
            end = d.index(b"\0", stroff + name)
            self.sections[d[stroff + name:end].decode()] = (addr, off, size)
        self.segments = [(a, o, s) for (a, o, s) in self.sections.values() if a and s]
        self.types_base = self.sections[".rodata"][0]

    def off(self, va):
        for addr, off, size in self.segments:
            if addr <= va < addr + size:
                return off + va - addr
        return None

    def u64(self, va):
        return struct.unpack_from("<Q", self.data, self.off(va))[0]

    def name(self, va):
        d = self.data
        o = self.off(va)
        flags = d[o]
        o += 1
        length, o = self._varint(o)
        text = d[o:o + length].decode("utf-8", "replace")
        o += length
        tag = ""
        if flags & 2:
            tlen, o = self._varint(o)
            tag = d[o:o + tlen].decode("utf-8", "replace")
        return text, tag

    def _varint(self, o):
        value = shift = 0
        while True:
            b = self.data[o]
            o += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return value, o

    def type_info(self, va):
        o = self.off(va)
        kind = self.data[o + 23] & 0x1F
        tflag = self.data[o + 20]
        name_off, = struct.unpack_from("<i", self.data, o + 40)
        name = self.name(self.types_base + name_off)[0]
        if tflag & 2:  # TFlagExtraStar
            name = name[1:]
        return kind, tflag, name

    def structs(self):
        """(Go package path, type name) -> {proto tag: (json name, omitempty, inline, go kind)}."""
        addr, off, size = self.sections[".typelink"]
        links = struct.unpack_from(f"<{size // 4}i", self.data, off)
        stack = [self.types_base + link for link in links]
        seen = set()
        out = {}
        while stack:
            va = stack.pop()
            if va in seen or self.off(va) is None:
                continue
            seen.add(va)
            kind, tflag, name = self.type_info(va)
            if kind in (self.KIND_POINTER, self.KIND_SLICE, self.KIND_ARRAY, self.KIND_CHAN):
                stack.append(self.u64(va + 48))
            elif kind == self.KIND_MAP:
                stack += [self.u64(va + 48), self.u64(va + 56)]
            elif kind == self.KIND_STRUCT:
                fields_va, nfields = self.u64(va + 56), self.u64(va + 64)
                pkg = ""
                if tflag & 1:  # TFlagUncommon: the package path is in the uncommon type after the struct type
                    pkg_off, = struct.unpack_from("<i", self.data, self.off(va) + 80)
                    if pkg_off:
                        pkg = self.name(self.types_base + pkg_off)[0]
                fields = {}
                for i in range(nfields):
                    _fname, tag = self.name(self.u64(fields_va + 24 * i))
                    ftype = self.u64(fields_va + 24 * i + 8)
                    stack.append(ftype)
                    pb = re.search(r'protobuf:"\w+,(\d+),', tag)
                    js = re.search(r'json:"([^"]*)"', tag)
                    if not pb or not js:
                        continue
                    opts = js.group(1).split(",")
                    fields[int(pb.group(1))] = (opts[0], "omitempty" in opts[1:], "inline" in opts[1:],
                                                self.type_info(ftype)[0])
                if pkg and "." in name:
                    out[(pkg, name.rsplit(".", 1)[1])] = fields
        return out


# ---------------------------------------------------------------------------------------------------


def is_inline(go_field, field, parent_json, pb):
    """An embedded Go struct (`json:",inline"`): its fields appear in the parent's JSON object.

    kubectl's tags say so for the types it knows; for newer ones, the parent's OpenAPI definition
    holding all of the child message's fields says so."""
    if go_field:
        return go_field[2]
    child = pb.get(field["ref"], [])
    return parent_json is not None and bool(child) and all(norm(c["pb_name"]) in parent_json for c in child)


def absent_form(go_field, label):
    """What Go's JSON shows for a field missing from the protobuf (Go then holds the zero value).

    `Omit` with `omitempty` (or no Go information); `Null` for a nil pointer, slice or map without
    `omitempty`; `Zero` for a plain value, which Go always prints (`omitempty` does nothing for
    structs): the zero scalar, or the empty message's JSON (`creationTimestamp: null`, `spec: {}`)."""
    if not go_field or label == "Inline":
        return "Omit"
    _json, omitempty, _inline, kind = go_field
    if kind in (GoBinary.KIND_POINTER, GoBinary.KIND_SLICE, GoBinary.KIND_MAP):
        return "Omit" if omitempty else "Null"
    if kind == GoBinary.KIND_STRUCT:
        return "Zero"
    return "Omit" if omitempty else "Zero"


def camel(snake):
    head, *rest = snake.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kubectl", default=KUBECTL, help="kubectl 1.32 binary to read Go struct tags from")
    args = ap.parse_args()

    pb_root = crate_dir("k8s-pb-0.9.0")
    oa_root = crate_dir("k8s-openapi-0.29.0")
    pb = parse_k8s_pb(pb_root)
    trees, group_versions = parse_k8s_openapi(oa_root)
    if not os.path.exists(args.kubectl):
        sys.exit(f"{args.kubectl} not found: the Go type descriptors of kubectl 1.32 are needed (--kubectl PATH)")
    go = GoBinary(args.kubectl).structs()
    log(f"kubectl: {len(go)} Go struct types from {args.kubectl}")

    served = {d.rsplit(".", 1)[0] for d in trees["v1_33"]} | ALWAYS_PACKAGES
    # The OpenAPI definition name of each protobuf message (its case is the upstream proto name;
    # prost lost it: AWSElasticBlockStoreVolumeSource became AwsElasticBlockStoreVolumeSource).
    by_lower = {}
    for version in OPENAPI_VERSIONS:
        for definition in trees[version]:
            by_lower.setdefault(definition.lower(), definition)
    go_by_lower = {}
    for (gopkg, tname) in go:
        go_by_lower.setdefault((gopkg, tname.lower()), tname)

    names = {}
    for (package, pname) in pb:
        if package not in served:
            continue
        definition = by_lower.get(f"{package}.{pname}".lower())
        if definition is None:
            tname = go_by_lower.get((package_to_go(package), pname.lower()), pname)
            definition = f"{package}.{tname}"
        names[(package, pname)] = definition

    ordered = sorted(names.items(), key=lambda kv: kv[1].encode())
    index = {key: i for i, (key, _) in enumerate(ordered)}
    absent_counts = {}
    unmatched, renamed, omit_zero, inline, missing_ref, go_disagree, guessed = [], [], 0, [], [], [], []
    out_messages = []
    for (package, pname), definition in ordered:
        fields = pb[(package, pname)]
        json_names = None
        for version in OPENAPI_VERSIONS:
            if definition in trees[version]:
                json_names = {norm(n): n for n in trees[version][definition]}
                break
        later = {}
        for version in OPENAPI_VERSIONS[1:]:
            for n in trees[version].get(definition, []):
                later.setdefault(norm(n), n)
        go_fields = go.get((package_to_go(package), definition.rsplit(".", 1)[1]), {})
        shape = SHAPES.get(definition, "Object")
        if shape == "Object" and json_names is None and pname in ITEMS_WRAPPERS:
            shape = "Items"
        rows = []
        for f in fields:
            label, kind = f["label"], f["kind"]
            go_field = go_fields.get(f["tag"])
            json = None
            if json_names is not None:
                json = json_names.get(norm(f["pb_name"])) or later.get(norm(f["pb_name"]))
            if json is None and go_field and go_field[0]:
                json = go_field[0]
            json = JSON_NAME_OVERRIDES.get((definition, f["pb_name"]), json)
            if go_field and go_field[0] and go_field[0] != json:
                go_disagree.append(f"{definition}: openapi {json!r} vs Go {go_field[0]!r}")
            if kind == "Msg" and label == "Opt" and json is None and is_inline(go_field, f, json_names, pb):
                label, json = "Inline", ""
                inline.append(f"{definition}.{f['pb_name']}")
            if json is None:
                json = camel(f["pb_name"])
                if json_names is not None and shape == "Object":
                    unmatched.append(f"{definition}.{f['pb_name']} (tag {f['tag']}) -> {json}")
                else:
                    guessed.append(f"{definition}.{json}")
            # A plain (non-pointer) Go value with omitempty: a present zero is Go's "unset".
            if (label == "Opt" and kind != "Msg" and go_field and go_field[1]
                    and go_field[3] != GoBinary.KIND_POINTER):
                label = "OmitEmpty"
                omit_zero += 1
            absent = absent_form(go_field, label)
            absent_counts[absent] = absent_counts.get(absent, 0) + 1
            ref = ""
            if kind == "Msg":
                target = f["ref"]
                if target not in index:
                    missing_ref.append(f"{definition}.{f['pb_name']} -> {target}")
                    continue
                ref = index[target]
            if json_names is not None and json not in json_names.values() and json in later.values():
                renamed.append(f"{definition}.{json} (newer than 1.33)")
            rows.append((f["tag"], json, kind, ref, label, absent))
        out_messages.append((definition, shape, rows))

    emit(out_messages, group_versions, names)

    nfields = sum(len(r) for _, _, r in out_messages)
    log(f"messages: {len(out_messages)}, fields: {nfields}, group versions: {len(group_versions)}")
    log(f"fields whose present zero is dropped (Go value + omitempty): {omit_zero}")
    log(f"what an absent field prints as (Go's zero value, when Go's JSON has no omitempty): {absent_counts}")
    log(f"inline (embedded) message fields: {len(inline)}: {', '.join(inline)}")
    log(f"fields only in OpenAPI trees newer than v1_33: {len(renamed)}")
    for r in renamed:
        log("  " + r)
    log(f"fields of messages unknown to k8s-openapi and kubectl (camelCase of the prost name used): {len(guessed)}")
    log("  " + ", ".join(guessed))
    log(f"fields with no JSON name in their k8s-openapi definition (camelCase of the prost name used): {len(unmatched)}")
    for u in unmatched:
        log("  " + u)
    log(f"OpenAPI and Go JSON names that disagree: {len(go_disagree)}")
    for g in go_disagree:
        log("  " + g)
    log(f"references to messages outside the served packages (field left out): {len(missing_ref)}")
    for m in missing_ref:
        log("  " + m)
    missing_gv = [gv for gv, pkg in group_versions.items() if not any(d.startswith(pkg + ".") for d in names.values())]
    log(f"group versions with no protobuf messages in k8s-pb 0.9.0: {missing_gv}")


def emit(messages, group_versions, names):
    w = sys.stdout.write
    w("// @generated by scripts/gen-protobuf-schema.py from k8s-pb 0.9.0 (prost structs: tags and types),\n")
    w("// k8s-openapi 0.29.0 (v1_33, then newer trees: JSON names) and kubectl 1.32's Go type descriptors\n")
    w("// (pointer/omitempty/inline). Do not edit; regenerate with\n")
    w("//     python3 scripts/gen-protobuf-schema.py > crates/api/src/protobuf/schema.rs\n")
    w("//! The Kubernetes protobuf message table (generated): every message of the served API groups, with\n")
    w("//! its fields' tags, wire types and JSON names, in Go struct order.\n\n")
    w("use super::table::{Kind::*, Label::*, Message, Shape::*, f, m};\n\n")
    w("/// API group version (`apiVersion`) -> definition-name prefix of its kinds.\n")
    w("pub(super) static GROUP_VERSIONS: &[(&str, &str)] = &[\n")
    for gv, pkg in sorted(group_versions.items()):
        w(f'    ("{gv}", "{pkg}"),\n')
    w('    ("meta.k8s.io/v1", "io.k8s.apimachinery.pkg.apis.meta.v1"),\n')
    w("];\n\n")
    w("/// Every message, sorted by definition name; `Msg(n)` is an index into this table.\n")
    w(f"pub(super) static MESSAGES: [Message; {len(messages)}] = [\n")
    for i, (definition, shape, rows) in enumerate(messages):
        if not rows:
            w(f'    /* {i} */ m("{definition}", {shape}, &[]),\n')
            continue
        w(f'    /* {i} */ m("{definition}", {shape}, &[\n')
        for tag, json, kind, ref, label, absent in rows:
            k = f"Msg({ref})" if kind == "Msg" else kind
            suffix = {"Omit": "", "Null": ".null()", "Zero": ".zero()"}[absent]
            w(f'        f({tag}, "{json}", {k}, {label}){suffix},\n')
        w("    ]),\n")
    w("];\n\n")


if __name__ == "__main__":
    main()
