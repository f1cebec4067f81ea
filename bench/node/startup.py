#!/usr/bin/env python3
"""Pod startup latency (issue 5): creates N pods at R pods/s through the API and times each from
its create request to the first watch event that shows it Running; then deletes them.
Usage: startup.py KUBECONFIG N RATE PREFIX. Prints one latency (ms) per line."""
import base64, http.client, json, os, ssl, sys, tempfile, threading, time

def kubeconfig(path):
    # The skiff kubeconfig is YAML with one cluster and one user; read the few fields we need.
    text = open(path).read()
    lines = [l.strip() for l in text.splitlines()]
    def field(key):
        for i, line in enumerate(lines):
            if line.startswith(key + ":"):
                v = line.split(":", 1)[1].strip().strip('"')
                # A folded scalar (`>-`) continues on the next line.
                return lines[i + 1] if v in (">-", ">", "|", "") else v
    server = field("server")
    tmp = tempfile.mkdtemp()
    files = {}
    for k in ["certificate-authority-data", "client-certificate-data", "client-key-data"]:
        p = os.path.join(tmp, k)
        open(p, "wb").write(base64.b64decode(field(k)))
        files[k] = p
    ctx = ssl.create_default_context(cafile=files["certificate-authority-data"])
    ctx.load_cert_chain(files["client-certificate-data"], files["client-key-data"])
    host, port = server.replace("https://", "").rsplit(":", 1)
    return host, int(port), ctx

def main():
    kc, n, rate, prefix = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    host, port, ctx = kubeconfig(kc)
    created, running = {}, {}
    done = threading.Event()

    def watch():
        c = http.client.HTTPSConnection(host, port, context=ctx)
        c.request("GET", "/api/v1/namespaces/default/pods?watch=1&labelSelector=bench%3D" + prefix)
        r = c.getresponse()
        while not done.is_set():
            line = r.readline()
            if not line:
                break
            ev = json.loads(line)
            pod = ev["object"]
            name = pod["metadata"]["name"]
            if pod.get("status", {}).get("phase") == "Running" and name not in running:
                running[name] = time.monotonic()
                if len(running) == n:
                    done.set()

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    time.sleep(0.5)
    c = http.client.HTTPSConnection(host, port, context=ctx)
    start = time.monotonic()
    for i in range(n):
        name = f"{prefix}-{i}"
        body = json.dumps({"apiVersion": "v1", "kind": "Pod",
                           "metadata": {"name": name, "labels": {"bench": prefix}},
                           "spec": {"terminationGracePeriodSeconds": 0, "containers": [{
                               "name": "c", "image": "busybox:bench", "imagePullPolicy": "Never",
                               "command": ["sleep", "3600"]}]}})
        target = start + i / rate
        time.sleep(max(0, target - time.monotonic()))
        created[name] = time.monotonic()
        c.request("POST", "/api/v1/namespaces/default/pods", body, {"Content-Type": "application/json"})
        r = c.getresponse(); r.read()
        if r.status != 201:
            sys.exit(f"create {name}: {r.status}")
    done.wait(120)
    for name, t0 in created.items():
        if name in running:
            print(f"{(running[name] - t0) * 1000:.1f}")
        else:
            print("missing", name, file=sys.stderr)

main()
