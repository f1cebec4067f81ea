//! Pod spec → CRI requests: the sandbox config (hostname, DNS, ports, namespaces, sysctls,
//! pod cgroup per QoS class) and a container's resources and security settings, as upstream's
//! `kuberuntime_sandbox.go` / `kuberuntime_container_linux.go` derive them.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::{Container, Pod};
use skiff_runtime::cri::{
    DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS, DnsConfig, NamespaceOptions, PodSandboxConfig, PortMapping, Protocol,
    Resources, SeccompProfile, SecurityContext,
};

use crate::KubeletConfig;

/// Labels every sandbox and container carries, as upstream's kubelet sets them.
pub(crate) const POD_NAME_LABEL: &str = "io.kubernetes.pod.name";
pub(crate) const POD_NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";
pub(crate) const POD_UID_LABEL: &str = "io.kubernetes.pod.uid";
pub(crate) const CONTAINER_NAME_LABEL: &str = "io.kubernetes.container.name";

/// The CFS period the kubelet uses (100 ms).
const CPU_PERIOD_US: u64 = 100_000;
/// Upstream's minimum cpu.shares.
const MIN_SHARES: u64 = 2;

pub(crate) fn name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or_default()
}
pub(crate) fn namespace(pod: &Pod) -> &str {
    pod.metadata.namespace.as_deref().unwrap_or("default")
}
pub(crate) fn uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or_default()
}

/// `<logs_dir>/<ns>_<name>_<uid>`, like `/var/log/pods`.
pub(crate) fn log_directory(config: &KubeletConfig, pod: &Pod) -> PathBuf {
    config.logs_dir.join(format!("{}_{}_{}", namespace(pod), name(pod), uid(pod)))
}

/// `<pods_dir>/<uid>`: volumes, termination-message files.
pub(crate) fn pod_dir(config: &KubeletConfig, pod: &Pod) -> PathBuf {
    config.pods_dir.join(uid(pod))
}

/// A sidecar: an init container with `restartPolicy: Always` (runs alongside the others).
pub(crate) fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

pub(crate) fn qos_class(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.qos_class.as_deref()).unwrap_or("BestEffort")
}

/// The pod's cgroup under the node's root: `pod<uid>` (Guaranteed), `burstable/pod<uid>`,
/// `besteffort/pod<uid>`.
pub(crate) fn cgroup_parent(pod: &Pod) -> String {
    let leaf = format!("pod{}", uid(pod));
    match qos_class(pod) {
        "Guaranteed" => leaf,
        "Burstable" => format!("burstable/{leaf}"),
        _ => format!("besteffort/{leaf}"),
    }
}

fn milli(q: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>) -> Option<i128> {
    q.and_then(|q| skiff_api::quantity::milli_value(&q.0)).filter(|v| *v > 0)
}

fn request(c: &Container, res: &str) -> Option<i128> {
    milli(c.resources.as_ref().and_then(|r| r.requests.as_ref()).and_then(|r| r.get(res)))
}

fn limit(c: &Container, res: &str) -> Option<i128> {
    milli(c.resources.as_ref().and_then(|r| r.limits.as_ref()).and_then(|r| r.get(res)))
}

fn shares(milli_cpu: i128) -> u64 {
    ((milli_cpu.max(0) as u64) * 1024 / 1000).max(MIN_SHARES)
}

fn quota(milli_cpu: i128) -> i64 {
    ((milli_cpu as i64) * CPU_PERIOD_US as i64 / 1000).max(1000)
}

/// A container's cgroup settings and OOM score, from its requests and limits.
pub(crate) fn container_resources(pod: &Pod, c: &Container, node_memory: u64) -> Resources {
    let qos = qos_class(pod);
    let cpu_request = request(c, "cpu").or_else(|| limit(c, "cpu"));
    let memory_request = request(c, "memory").map(|m| m / 1000);
    let oom = match qos {
        "Guaranteed" => -997,
        "BestEffort" => 1000,
        _ => {
            let req = memory_request.unwrap_or(0).max(0) as u64;
            let adj = if node_memory == 0 { 999 } else { 1000 - (1000u128 * req as u128 / node_memory as u128) as i64 };
            adj.clamp(2, 999) as i32
        }
    };
    Resources {
        cpu_shares: Some(cpu_request.map(shares).unwrap_or(MIN_SHARES)),
        cpu_quota: limit(c, "cpu").map(quota),
        cpu_period: limit(c, "cpu").map(|_| CPU_PERIOD_US),
        memory_limit: limit(c, "memory").map(|m| (m / 1000) as i64),
        pids_limit: None,
        hugepages: BTreeMap::new(),
        oom_score_adj: Some(oom),
    }
}

/// The pod cgroup's settings: summed requests as shares; limits when every container has one.
fn pod_resources(pod: &Pod) -> Resources {
    let Some(spec) = &pod.spec else { return Resources::default() };
    let cs = &spec.containers;
    let cpu: i128 = cs.iter().filter_map(|c| request(c, "cpu").or_else(|| limit(c, "cpu"))).sum();
    let all = |res: &str| -> Option<i128> {
        let v: Option<Vec<i128>> = cs.iter().map(|c| limit(c, res)).collect();
        v.map(|v| v.into_iter().sum())
    };
    let overhead = |res: &str| milli(spec.overhead.as_ref().and_then(|o| o.get(res))).unwrap_or(0);
    let cpu_limit = all("cpu").map(|v| v + overhead("cpu"));
    Resources {
        cpu_shares: Some(shares(cpu + overhead("cpu"))),
        cpu_quota: cpu_limit.map(quota),
        cpu_period: cpu_limit.map(|_| CPU_PERIOD_US),
        memory_limit: all("memory").map(|v| ((v + overhead("memory")) / 1000) as i64),
        ..Default::default()
    }
}

/// Reads a resolv.conf: (nameservers, searches, options).
pub(crate) fn parse_resolv_conf(text: &str) -> DnsConfig {
    let mut dns = DnsConfig::default();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or_default();
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => dns.servers.extend(words.next().map(str::to_string)),
            Some("search") | Some("domain") => dns.searches = words.map(str::to_string).collect(),
            Some("options") => dns.options.extend(words.map(str::to_string)),
            _ => {}
        }
    }
    dns
}

/// The pod's DNS settings per `dnsPolicy` and `dnsConfig` (upstream's `dns.GetPodDNS`).
pub(crate) fn pod_dns(pod: &Pod, config: &KubeletConfig) -> DnsConfig {
    let spec = pod.spec.as_ref();
    let host_network = spec.and_then(|s| s.host_network).unwrap_or(false);
    let policy = spec.and_then(|s| s.dns_policy.as_deref()).unwrap_or("ClusterFirst");
    let host = || parse_resolv_conf(&std::fs::read_to_string(&config.resolv_conf).unwrap_or_default());
    let cluster = |host: DnsConfig| {
        let d = &config.cluster_domain;
        let mut searches = vec![format!("{}.svc.{d}", namespace(pod)), format!("svc.{d}"), d.clone()];
        for s in host.searches {
            if !searches.contains(&s) {
                searches.push(s);
            }
        }
        DnsConfig {
            servers: config.cluster_dns.iter().map(IpAddr::to_string).collect(),
            searches,
            options: vec!["ndots:5".into()],
        }
    };
    let mut dns = match policy {
        "None" => DnsConfig::default(),
        "Default" => host(),
        "ClusterFirstWithHostNet" if !config.cluster_dns.is_empty() => cluster(host()),
        "ClusterFirst" if !host_network && !config.cluster_dns.is_empty() => cluster(host()),
        // ClusterFirst with host network, or no cluster DNS configured: the host's resolvers.
        _ => host(),
    };
    if let Some(extra) = spec.and_then(|s| s.dns_config.as_ref()) {
        for s in extra.nameservers.iter().flatten() {
            if !dns.servers.contains(s) {
                dns.servers.push(s.clone());
            }
        }
        for s in extra.searches.iter().flatten() {
            if !dns.searches.contains(s) {
                dns.searches.push(s.clone());
            }
        }
        for o in extra.options.iter().flatten() {
            let rendered = match &o.value {
                Some(v) => format!("{}:{v}", o.name.as_deref().unwrap_or_default()),
                None => o.name.clone().unwrap_or_default(),
            };
            let key = o.name.as_deref().unwrap_or_default();
            dns.options.retain(|x| x.split(':').next() != Some(key));
            dns.options.push(rendered);
        }
    }
    // Upstream's limits: 3 nameservers, 32 search domains.
    dns.servers.truncate(3);
    dns.searches.truncate(32);
    dns
}

/// The pod's hostname: `spec.hostname`, else its name, cut to 63 characters as upstream.
pub(crate) fn hostname(pod: &Pod) -> String {
    let h = pod.spec.as_ref().and_then(|s| s.hostname.clone()).unwrap_or_else(|| name(pod).to_string());
    let mut h: String = h.chars().take(63).collect();
    while h.ends_with(['-', '.']) {
        h.pop();
    }
    h
}

/// `RunPodSandbox` request for `pod`, restart `attempt`.
pub(crate) fn sandbox_config(pod: &Pod, config: &KubeletConfig, attempt: u32) -> PodSandboxConfig {
    let spec = pod.spec.clone().unwrap_or_default();
    let mut labels = pod.metadata.labels.clone().unwrap_or_default();
    labels.insert(POD_NAME_LABEL.into(), name(pod).into());
    labels.insert(POD_NAMESPACE_LABEL.into(), namespace(pod).into());
    labels.insert(POD_UID_LABEL.into(), uid(pod).into());
    let mut port_mappings = Vec::new();
    for c in &spec.containers {
        for p in c.ports.iter().flatten() {
            let Some(host_port) = p.host_port.filter(|p| *p > 0) else { continue };
            port_mappings.push(PortMapping {
                protocol: match p.protocol.as_deref() {
                    Some("UDP") => Protocol::Udp,
                    Some("SCTP") => Protocol::Sctp,
                    _ => Protocol::Tcp,
                },
                container_port: p.container_port as u16,
                host_port: host_port as u16,
                host_ip: p.host_ip.as_deref().and_then(|h| h.parse().ok()),
            });
        }
    }
    let sec = spec.security_context.clone().unwrap_or_default();
    PodSandboxConfig {
        name: name(pod).into(),
        namespace: namespace(pod).into(),
        uid: uid(pod).into(),
        attempt,
        hostname: hostname(pod),
        log_directory: log_directory(config, pod),
        dns: pod_dns(pod, config),
        port_mappings,
        labels,
        annotations: pod.metadata.annotations.clone().unwrap_or_default(),
        namespaces: NamespaceOptions {
            host_network: spec.host_network.unwrap_or(false),
            host_pid: spec.host_pid.unwrap_or(false),
            host_ipc: spec.host_ipc.unwrap_or(false),
            share_process_namespace: spec.share_process_namespace.unwrap_or(false),
        },
        cgroup_parent: cgroup_parent(pod),
        sysctls: sec.sysctls.iter().flatten().map(|s| (s.name.clone(), s.value.clone())).collect(),
        host_aliases: spec
            .host_aliases
            .iter()
            .flatten()
            .filter_map(|a| Some((a.ip.parse().ok()?, a.hostnames.clone().unwrap_or_default())))
            .collect(),
        resources: Some(pod_resources(pod)),
    }
}

/// The container's security settings: pod-level defaults overridden by the container's.
pub(crate) fn security(pod: &Pod, c: &Container, image_user: Option<&str>) -> Result<SecurityContext, String> {
    let psc = pod.spec.as_ref().and_then(|s| s.security_context.clone()).unwrap_or_default();
    let csc = c.security_context.clone().unwrap_or_default();
    let privileged = csc.privileged.unwrap_or(false);
    let run_as_user = csc.run_as_user.or(psc.run_as_user);
    let run_as_group = csc.run_as_group.or(psc.run_as_group);
    if csc.run_as_non_root.or(psc.run_as_non_root).unwrap_or(false) {
        let image_uid = image_user.and_then(|u| u.split(':').next()).filter(|u| !u.is_empty());
        match (run_as_user, image_uid) {
            (Some(0), _) => {
                return Err(format!(
                    "container's runAsUser breaks non-root policy (pod: \"{}_{}({})\", container: {})",
                    name(pod),
                    namespace(pod),
                    uid(pod),
                    c.name
                ));
            }
            (Some(_), _) => {}
            (None, Some(u)) if u.parse::<u32>().is_ok_and(|n| n != 0) => {}
            (None, Some(u)) if u.parse::<u32>().is_err() => {
                return Err(format!(
                    "container has runAsNonRoot and image has non-numeric user ({u}), cannot verify user is non-root (pod: \"{}_{}({})\", container: {})",
                    name(pod),
                    namespace(pod),
                    uid(pod),
                    c.name
                ));
            }
            _ => {
                return Err(format!(
                    "container has runAsNonRoot and image will run as root (pod: \"{}_{}({})\", container: {})",
                    name(pod),
                    namespace(pod),
                    uid(pod),
                    c.name
                ));
            }
        }
    }
    let seccomp_of = |p: &k8s_openapi::api::core::v1::SeccompProfile| match p.type_.as_str() {
        "RuntimeDefault" => SeccompProfile::RuntimeDefault,
        "Localhost" => SeccompProfile::Localhost(PathBuf::from(p.localhost_profile.clone().unwrap_or_default())),
        _ => SeccompProfile::Unconfined,
    };
    // Upstream's default (the kubelet's SeccompDefault off) is Unconfined.
    let seccomp = csc
        .seccomp_profile
        .as_ref()
        .or(psc.seccomp_profile.as_ref())
        .map(seccomp_of)
        .unwrap_or(SeccompProfile::Unconfined);
    let unmasked = csc.proc_mount.as_deref() == Some("Unmasked");
    let caps = csc.capabilities.clone().unwrap_or_default();
    let mut groups: Vec<u32> = psc.supplemental_groups.iter().flatten().map(|g| *g as u32).collect();
    if let Some(fs) = psc.fs_group {
        groups.push(fs as u32);
    }
    Ok(SecurityContext {
        privileged,
        capabilities_add: caps.add.unwrap_or_default(),
        capabilities_drop: caps.drop.unwrap_or_default(),
        run_as_user: run_as_user.map(|u| u as u32),
        run_as_group: run_as_group.map(|g| g as u32),
        run_as_username: None,
        supplemental_groups: groups,
        readonly_rootfs: csc.read_only_root_filesystem.unwrap_or(false),
        no_new_privileges: !csc.allow_privilege_escalation.unwrap_or(true) && !privileged,
        seccomp,
        masked_paths: if privileged || unmasked {
            vec![]
        } else {
            DEFAULT_MASKED_PATHS.iter().map(|s| s.to_string()).collect()
        },
        readonly_paths: if privileged || unmasked {
            vec![]
        } else {
            DEFAULT_READONLY_PATHS.iter().map(|s| s.to_string()).collect()
        },
    })
}

/// Labels of a container: the pod's identity and the container's name.
pub(crate) fn container_labels(pod: &Pod, container: &str) -> BTreeMap<String, String> {
    [
        (POD_NAME_LABEL, name(pod)),
        (POD_NAMESPACE_LABEL, namespace(pod)),
        (POD_UID_LABEL, uid(pod)),
        (CONTAINER_NAME_LABEL, container),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Where a container instance's termination message file lives on the host.
pub(crate) fn termination_message_file(config: &KubeletConfig, pod: &Pod, container: &str, attempt: u32) -> PathBuf {
    pod_dir(config, pod).join("containers").join(container).join(format!("termination-{attempt}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn resources_follow_requests_limits_and_qos() {
        let p = pod(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"containers": [{"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "1Gi"}, "limits": {"cpu": "500m"}}}]},
            "status": {"qosClass": "Burstable"},
        }));
        let r = container_resources(&p, &p.spec.as_ref().unwrap().containers[0], 4 << 30);
        assert_eq!(r.cpu_shares, Some(256));
        assert_eq!(r.cpu_quota, Some(50_000));
        assert_eq!(r.cpu_period, Some(100_000));
        assert_eq!(r.memory_limit, None);
        assert_eq!(r.oom_score_adj, Some(750));
        assert_eq!(cgroup_parent(&p), "burstable/podu1");
        let best = pod(json!({"metadata": {"uid": "u2"}, "spec": {"containers": [{"name": "a"}]}}));
        let r = container_resources(&best, &best.spec.as_ref().unwrap().containers[0], 4 << 30);
        assert_eq!((r.cpu_shares, r.oom_score_adj), (Some(2), Some(1000)));
        assert_eq!(cgroup_parent(&best), "besteffort/podu2");
    }

    #[test]
    fn dns_policies() {
        let dir = tempfile::tempdir().unwrap();
        let resolv = dir.path().join("resolv.conf");
        std::fs::write(&resolv, "nameserver 192.0.2.53\nsearch corp.example\noptions edns0\n").unwrap();
        let mut config = KubeletConfig::new("n", dir.path());
        config.resolv_conf = resolv;
        let p = pod(json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": {"containers": []}}));
        // No cluster DNS: the host's.
        assert_eq!(pod_dns(&p, &config).servers, ["192.0.2.53"]);
        config.cluster_dns = vec!["10.43.0.10".parse().unwrap()];
        let d = pod_dns(&p, &config);
        assert_eq!(d.servers, ["10.43.0.10"]);
        assert_eq!(d.searches, ["ns.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example"]);
        assert_eq!(d.options, ["ndots:5"]);
        let none = pod(json!({"metadata": {"name": "p"}, "spec": {"containers": [], "dnsPolicy": "None",
            "dnsConfig": {"nameservers": ["1.2.3.4"], "searches": ["a.b"], "options": [{"name": "ndots", "value": "2"}]}}}));
        let d = pod_dns(&none, &config);
        assert_eq!(
            (d.servers, d.searches, d.options),
            (vec!["1.2.3.4".to_string()], vec!["a.b".to_string()], vec!["ndots:2".to_string()])
        );
    }

    #[test]
    fn run_as_non_root_is_verified() {
        let p = pod(json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u"},
            "spec": {"securityContext": {"runAsNonRoot": true}, "containers": [{"name": "a"}]}}));
        let c = &p.spec.as_ref().unwrap().containers[0];
        let e = security(&p, c, None).unwrap_err();
        assert!(e.contains("container has runAsNonRoot and image will run as root"), "{e}");
        assert!(security(&p, c, Some("1000")).is_ok());
        assert!(security(&p, c, Some("nobody")).unwrap_err().contains("non-numeric user"));
        let s = security(&p, c, Some("1000")).unwrap();
        assert!(s.masked_paths.contains(&"/proc/kcore".to_string()));
        assert_eq!(s.seccomp, SeccompProfile::Unconfined);
    }
}
