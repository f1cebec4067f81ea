#!/usr/bin/env python3
"""One proxy mode's figures (see run.sh): programming latency over 30 Services, then `ab`
through a ClusterIP against the pod IP directly, alternating twice, best of each."""
import json, os, re, socket, subprocess, sys, time

kc, mode, requests = sys.argv[1], sys.argv[2], int(sys.argv[3])
kubectl = os.environ.get("KUBECTL", "/usr/lib/google-cloud-sdk/bin/kubectl.1.32")
env = dict(os.environ, KUBECONFIG=kc)

def k(*args, stdin=None):
    return subprocess.run([kubectl, *args], env=env, input=stdin, capture_output=True, text=True, check=True).stdout

def answers(ip, port):
    # A short connect timeout: until the proxy knows the Service, its unallocated ClusterIP
    # drops SYNs (nftables mode), and a long wait would be measured instead of the rules.
    try:
        with socket.create_connection((ip, port), timeout=0.01) as s:
            s.settimeout(1)
            s.sendall(b"GET /hostname HTTP/1.0\r\n\r\n")
            return b"200" in s.recv(64)
    except OSError:
        return False

def pct(values, p):
    v = sorted(values)
    return v[max(0, min(len(v) - 1, (len(v) * p + 99) // 100 - 1))]

latencies = []
for i in range(30):
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"lat-{i}"},
           "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}}
    out = json.loads(k("create", "-f", "-", "-o", "json", stdin=json.dumps(svc)))
    t0 = time.monotonic()
    ip = out["spec"]["clusterIP"]
    while not answers(ip, 80):
        if time.monotonic() - t0 > 30:
            sys.exit(f"{mode}: service lat-{i} never answered")
        time.sleep(0.002)
    latencies.append((time.monotonic() - t0) * 1000)

pod_ip = json.loads(k("get", "pods", "-l", "app=web", "-o", "json"))["items"][0]["status"]["podIP"]
k("scale", "deploy", "web", "--replicas=1")
cluster_ip = json.loads(k("get", "svc", "lat-0", "-o", "json"))["spec"]["clusterIP"]
time.sleep(2)

def ab(url):
    out = subprocess.run(["ab", "-q", "-n", str(requests), "-c", "8", url], capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1))
    p99 = float(re.search(r"\s99%\s+(\d+)", out).group(1))
    return rps, p99

best = {"direct": (0.0, 1e9), "clusterip": (0.0, 1e9)}
for _ in range(2):
    for name, url in (("direct", f"http://{pod_ip}:8080/hostname"), ("clusterip", f"http://{cluster_ip}/hostname")):
        rps, p99 = ab(url)
        best[name] = (max(best[name][0], rps), min(best[name][1], p99))
(d_rps, d_p99), (c_rps, c_p99) = best["direct"], best["clusterip"]
name = "nftables" if mode == "auto" else mode
print(f"| {name} | {pct(latencies, 50):.1f} ms | {pct(latencies, 99):.1f} ms | {d_rps:.0f} | {c_rps:.0f} | "
      f"{c_rps / d_rps:.2f}× | {d_p99:.0f} ms | {c_p99:.0f} ms |")
