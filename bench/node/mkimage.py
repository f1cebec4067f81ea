#!/usr/bin/env python3
"""Writes a `docker save` archive of a busybox image (Debian's busybox-static and its applet
links) to argv[1], and its root filesystem layer to argv[2] (for the runc floor)."""
import hashlib, io, json, sys, tarfile

APPLETS = "sh ls cat echo true sleep httpd wget env hostname nslookup".split()

def layer():
    bb = open("/bin/busybox", "rb").read()
    buf = io.BytesIO()
    t = tarfile.open(fileobj=buf, mode="w")
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "root"]:
        ti = tarfile.TarInfo(d); ti.type = tarfile.DIRTYPE; ti.mode = 0o1777 if d == "tmp" else 0o755
        t.addfile(ti)
    ti = tarfile.TarInfo("bin/busybox"); ti.size = len(bb); ti.mode = 0o755
    t.addfile(ti, io.BytesIO(bb))
    for a in APPLETS:
        ti = tarfile.TarInfo("bin/" + a); ti.type = tarfile.SYMTYPE; ti.linkname = "busybox"
        t.addfile(ti)
    pw = b"root:x:0:0:root:/root:/bin/sh\n"
    ti = tarfile.TarInfo("etc/passwd"); ti.size = len(pw); ti.mode = 0o644
    t.addfile(ti, io.BytesIO(pw))
    t.close()
    return buf.getvalue()

l = layer()
diff = "sha256:" + hashlib.sha256(l).hexdigest()
cfg = json.dumps({"architecture": "amd64", "os": "linux",
                  "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"], "WorkingDir": "/"},
                  "rootfs": {"type": "layers", "diff_ids": [diff]}}).encode()
name = hashlib.sha256(cfg).hexdigest() + ".json"
out = tarfile.open(sys.argv[1], "w")
for n, c in [("layer0/layer.tar", l), (name, cfg),
             ("manifest.json", json.dumps([{"Config": name, "RepoTags": ["busybox:bench"], "Layers": ["layer0/layer.tar"]}]).encode())]:
    ti = tarfile.TarInfo(n); ti.size = len(c); out.addfile(ti, io.BytesIO(c))
out.close()
open(sys.argv[2], "wb").write(l)
