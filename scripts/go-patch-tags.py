#!/usr/bin/env python3
"""Print the `patchStrategy` / `patchMergeKey` struct tags of the k8s.io/api types compiled into a
Go binary (e.g. the kubectl 1.33 on the machine image), as rows for the hand-written PATCH table in
crates/api/src/openapi/ext.rs. Used to write and cross-check that table; not run by the build.

Go keeps every struct type's fields and tags in its runtime type data (reflection needs them), so
walking the `.typelink` table of a non-PIE amd64 ELF binary recovers them without the sources.
Inline (`json:",inline"`) structs are flattened into their parent, as OpenAPI does.

Usage: scripts/go-patch-tags.py [BINARY] [GROUP/VERSION ...]
(default /usr/lib/google-cloud-sdk/bin/kubectl.1.33 and the group-versions Skiff serves).
"""
import re
import struct
import sys

GROUPS = ["core/v1", "apps/v1", "autoscaling/v1", "autoscaling/v2", "batch/v1", "certificates/v1",
          "coordination/v1", "discovery/v1", "events/v1", "networking/v1", "node/v1", "policy/v1",
          "rbac/v1", "scheduling/v1", "storage/v1", "admissionregistration/v1"]
META = "k8s.io/apimachinery/pkg/apis/meta/v1"


class Binary:
    def __init__(self, path):
        self.data = open(path, "rb").read()
        d = self.data
        shoff = struct.unpack_from("<Q", d, 0x28)[0]
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", d, 0x3A)
        raw = [struct.unpack_from("<IIQQQQ", d, shoff + i * shentsize) for i in range(shnum)]
        strtab_off = raw[shstrndx][4]
        self.sections = {}
        for name, typ, _flags, addr, off, size in raw:
            end = d.index(b"\0", strtab_off + name)
            self.sections[d[strtab_off + name:end].decode()] = (addr, off, size, typ)
        self.types_base = self.sections[".rodata"][0]

    def off(self, va):
        for addr, off, size, typ in self.sections.values():
            if addr and typ != 8 and addr <= va < addr + size:  # 8 = SHT_NOBITS
                return off + va - addr
        raise ValueError(hex(va))

    def u64(self, va):
        return struct.unpack_from("<Q", self.data, self.off(va))[0]

    def i32(self, va):
        return struct.unpack_from("<i", self.data, self.off(va))[0]

    def varint(self, o):
        v = shift = 0
        while True:
            b = self.data[o]
            o += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return v, o

    def name(self, va):
        """A runtime `abi.Name`: flags byte, varint length, bytes, then optional tag."""
        o = self.off(va)
        flags = self.data[o]
        n, p = self.varint(o + 1)
        name = self.data[p:p + n].decode("utf-8", "replace")
        tag = ""
        if flags & 2:
            t, p = self.varint(p + n)
            tag = self.data[p:p + t].decode("utf-8", "replace")
        return name, tag

    def type_info(self, va):
        """(kind, tflag, name) of an `abi.Type` (48 bytes on amd64)."""
        tflag = self.data[self.off(va + 20)]
        kind = self.data[self.off(va + 23)] & 0x1F
        name = self.name(self.types_base + self.i32(va + 40))[0]
        return kind, tflag, name[1:] if tflag & 2 else name


def struct_types(b):
    """{(package path, type name): [(field, tag, field type name)]} for every reachable struct."""
    out, seen = {}, set()

    def walk(va):
        if va in seen:
            return
        seen.add(va)
        kind, tflag, name = b.type_info(va)
        if kind in (22, 23, 17):  # pointer, slice, array: element at +48
            walk(b.u64(va + 48))
        elif kind == 21:  # map: key at +48, element at +56
            walk(b.u64(va + 48))
            walk(b.u64(va + 56))
        elif kind == 25:  # struct: PkgPath name at +48, fields slice at +56
            pkg = b.name(b.u64(va + 48))[0] if b.u64(va + 48) else ""
            if tflag & 1 and not pkg:  # uncommon type after the struct header holds the package
                pp = b.i32(va + 80)
                pkg = b.name(b.types_base + pp)[0] if pp else ""
            fields = []
            for i in range(b.u64(va + 64)):
                fva = b.u64(va + 56) + 24 * i
                fname, tag = b.name(b.u64(fva))
                ftype = b.u64(fva + 8)
                fields.append((fname, tag, b.type_info(ftype)[2]))
                walk(ftype)
            out[(pkg, name)] = fields

    addr, off, size, _ = b.sections[".typelink"]
    for i in range(size // 4):
        try:
            walk(b.types_base + struct.unpack_from("<i", b.data, off + 4 * i)[0])
        except (ValueError, IndexError, struct.error):
            continue
    return out


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "/usr/lib/google-cloud-sdk/bin/kubectl.1.33"
    groups = sys.argv[2:] or GROUPS
    types = struct_types(Binary(path))
    packages = {"k8s.io/api/" + g for g in groups} | {META}

    def flat(pkg, fields):
        for fname, tag, ftype in fields:
            if 'json:",inline"' in tag:
                yield from flat(pkg, types.get((pkg, ftype), []))
            else:
                yield fname, tag

    rows = []
    for (pkg, name), fields in types.items():
        if pkg not in packages:
            continue
        schema = "io." + pkg.replace("k8s.io/", "k8s.").replace("/", ".") + "." + name.split(".", 1)[1]
        for _fname, tag in flat(pkg, fields):
            strategy = re.search(r'patchStrategy:"([^"]*)"', tag)
            key = re.search(r'patchMergeKey:"([^"]*)"', tag)
            json_name = re.search(r'json:"([^",]*)', tag)
            if (strategy or key) and json_name:
                key_text = f'Some("{key.group(1)}")' if key else "None"
                rows.append(f'    ("{schema}", "{json_name.group(1)}", "{strategy.group(1) if strategy else ""}", {key_text}),')
    print("\n".join(sorted(rows)))


if __name__ == "__main__":
    main()
