use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Container, Pod, Service};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::json;

use super::*;
use crate::volumes::tests::FakeSource;

fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |k| map.get(k).cloned()
}

#[test]
fn expansion_follows_upstream_rules() {
    let l = lookup(&[("A", "va"), ("EMPTY", "")]);
    for (input, want) in [
        ("$(A)", "va"),
        ("x-$(A)-y", "x-va-y"),
        ("$(B)", "$(B)"),
        ("$$(A)", "$(A)"),
        ("$$", "$"),
        ("$$$(A)", "$va"),
        ("$x", "$x"),
        ("$(A", "$(A"),
        ("$(A$(A)", "$(A$(A)"),
        ("a$", "a$"),
        ("$()", "$()"),
        ("$(EMPTY)|", "|"),
        ("é$é", "é$é"),
        ("$(A)$(A)", "vava"),
        ("no refs", "no refs"),
    ] {
        assert_eq!(expand(input, &l), want, "{input}");
    }
}

fn pod() -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "ns", "uid": "u-1",
                     "labels": {"app": "web", "tier": "a\"b"}, "annotations": {"note": "x"}},
        "spec": {"nodeName": "", "serviceAccountName": "sa", "containers": [{
            "name": "c",
            "resources": {"limits": {"cpu": "500m"}, "requests": {"cpu": "250m", "memory": "100Mi"}},
            "envFrom": [
                {"configMapRef": {"name": "cm"}, "prefix": "CM_"},
                {"secretRef": {"name": "sec"}},
                {"configMapRef": {"name": "gone", "optional": true}}
            ],
            "env": [
                {"name": "FIRST", "value": "$(CM_k1)/$(LATER)/$(KUBERNETES_SERVICE_HOST)/$$(FIRST)"},
                {"name": "LATER", "value": "later"},
                {"name": "FROM_CM", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k1"}}},
                {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "password"}}},
                {"name": "OPT_KEY", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "nope", "optional": true}}},
                {"name": "OPT_OBJ", "valueFrom": {"secretKeyRef": {"name": "none", "key": "k", "optional": true}}},
                {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "NS", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}},
                {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
                {"name": "LABELS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels"}}},
                {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                {"name": "NOTE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['note']"}}},
                {"name": "NONE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['none']"}}},
                {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
                {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
                {"name": "HOST_IPS", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIPs"}}},
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "POD_IPS", "valueFrom": {"fieldRef": {"fieldPath": "status.podIPs"}}},
                {"name": "CPU_LIMIT_M", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}},
                {"name": "CPU_LIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
                {"name": "CPU_REQ", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "0"}}},
                {"name": "MEM_LIMIT_MI", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                {"name": "MEM_REQ", "valueFrom": {"resourceFieldRef": {"resource": "requests.memory"}}},
                {"name": "EPH_REQ", "valueFrom": {"resourceFieldRef": {"resource": "requests.ephemeral-storage"}}},
                {"name": "EMPTY"},
                {"name": "CM_k1", "value": "overridden"}
            ]
        }]}
    }))
    .unwrap()
}

fn source() -> FakeSource {
    let src = FakeSource::default();
    src.add_config_map("ns", "cm", &[("k1", "v1"), ("bad=key", "x"), ("dotted.key", "ok")]);
    src.add_secret("ns", "sec", &[("password", "s3cret"), ("tab\tkey", "x")]);
    src
}

fn ctx() -> EnvContext {
    EnvContext {
        node_name: "node-1".into(),
        host_ips: vec!["10.0.0.1".into(), "fd00::1".into()],
        pod_ips: vec!["10.42.0.5".into(), "fd42::5".into()],
        service_env: vec![("KUBERNETES_SERVICE_HOST".into(), "10.43.0.1".into()), ("ONLY_SVC".into(), "1".into())],
        node_allocatable: BTreeMap::from([
            ("cpu".into(), Quantity("4".into())),
            ("memory".into(), Quantity("8Gi".into())),
        ]),
    }
}

#[tokio::test]
async fn builds_environment_like_upstream() {
    let pod = pod();
    let c: &Container = &pod.spec.as_ref().unwrap().containers[0];
    let env = container_env(&pod, c, &source(), &ctx()).await.unwrap();
    let get = |k: &str| env.vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    // envFrom comes first, with the prefix; env overrides in place.
    assert_eq!(env.vars[0], ("CM_dotted.key".to_string(), "ok".to_string()));
    assert_eq!(get("CM_k1"), Some("overridden"));
    assert_eq!(get("password"), Some("s3cret"));
    assert_eq!(get("FIRST"), Some("v1/$(LATER)/10.43.0.1/$(FIRST)"));
    assert_eq!(get("LATER"), Some("later"));
    assert_eq!(get("FROM_CM"), Some("v1"));
    assert_eq!(get("FROM_SECRET"), Some("s3cret"));
    assert_eq!(get("OPT_KEY"), None);
    assert_eq!(get("OPT_OBJ"), None);
    assert_eq!(get("NAME"), Some("web"));
    assert_eq!(get("NS"), Some("ns"));
    assert_eq!(get("UID"), Some("u-1"));
    assert_eq!(get("LABELS"), Some("app=\"web\"\ntier=\"a\\\"b\""));
    assert_eq!(get("APP"), Some("web"));
    assert_eq!(get("NOTE"), Some("x"));
    assert_eq!(get("NONE"), Some(""));
    assert_eq!(get("NODE"), Some("node-1"));
    assert_eq!(get("SA"), Some("sa"));
    assert_eq!(get("HOST_IP"), Some("10.0.0.1"));
    assert_eq!(get("HOST_IPS"), Some("10.0.0.1,fd00::1"));
    assert_eq!(get("POD_IP"), Some("10.42.0.5"));
    assert_eq!(get("POD_IPS"), Some("10.42.0.5,fd42::5"));
    assert_eq!(get("CPU_LIMIT_M"), Some("500"));
    assert_eq!(get("CPU_LIMIT"), Some("1"), "rounded up");
    assert_eq!(get("CPU_REQ"), Some("1"), "zero divisor means 1");
    assert_eq!(get("MEM_LIMIT_MI"), Some("8192"), "unset limit is node allocatable");
    assert_eq!(get("MEM_REQ"), Some("104857600"));
    assert_eq!(get("EPH_REQ"), Some("0"));
    assert_eq!(get("EMPTY"), Some(""));
    // Service variables not otherwise defined come last.
    assert_eq!(env.vars.last().unwrap(), &("ONLY_SVC".to_string(), "1".to_string()));
    assert_eq!(env.vars.iter().filter(|(k, _)| k == "KUBERNETES_SERVICE_HOST").count(), 1);
    assert_eq!(
        env.warnings,
        vec![
            "Keys [CM_bad=key] from the EnvFrom configMap ns/cm were skipped since they are considered invalid \
             environment variable names.",
            "Keys [tab\tkey] from the EnvFrom secret ns/sec were skipped since they are considered invalid \
             environment variable names.",
        ]
    );
}

fn single(env: serde_json::Value) -> (Pod, Container) {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"containers": [{"name": "c", "env": env}]}
    }))
    .unwrap();
    let c = pod.spec.as_ref().unwrap().containers[0].clone();
    (pod, c)
}

#[tokio::test]
async fn errors_use_upstream_words() {
    let src = source();
    let cases = [
        (
            json!([{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "x", "key": "k"}}}]),
            "configmap \"x\" not found",
        ),
        (
            json!([{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}]),
            "couldn't find key k in ConfigMap ns/cm",
        ),
        (json!([{"name": "X", "valueFrom": {"secretKeyRef": {"name": "x", "key": "k"}}}]), "secret \"x\" not found"),
        (
            json!([{"name": "X", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "k"}}}]),
            "couldn't find key k in Secret ns/sec",
        ),
        (
            json!([{"name": "X", "valueFrom": {"fieldRef": {"apiVersion": "v2", "fieldPath": "metadata.name"}}}]),
            "unsupported pod version: v2",
        ),
        (
            json!([{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.bogus"}}}]),
            "field label not supported: spec.bogus",
        ),
        (
            json!([{"name": "X", "valueFrom": {"resourceFieldRef": {"resource": "limits.gpu"}}}]),
            "unsupported container resource : limits.gpu",
        ),
    ];
    for (env, want) in cases {
        let (pod, c) = single(env);
        let err = container_env(&pod, &c, &src, &EnvContext::default()).await.unwrap_err();
        assert_eq!(err.to_string(), want);
    }
    // envFrom of a missing object that is not optional.
    let mut pod: Pod = single(json!([])).0;
    let spec = pod.spec.as_mut().unwrap();
    spec.containers[0].env_from =
        Some(vec![serde_json::from_value(json!({"secretRef": {"name": "missing"}})).unwrap()]);
    let c = spec.containers[0].clone();
    let err = container_env(&pod, &c, &src, &EnvContext::default()).await.unwrap_err();
    assert_eq!(err.to_string(), "secret \"missing\" not found");
    // An API failure is passed on.
    src.fail("boom");
    let (pod, c) = single(json!([{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k1"}}}]));
    let err = container_env(&pod, &c, &src, &EnvContext::default()).await.unwrap_err();
    assert!(matches!(err, EnvError::Source(_)), "{err:?}");
}

#[tokio::test]
async fn resource_field_ref_of_another_container() {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"containers": [
            {"name": "a", "env": [
                {"name": "B_MEM", "valueFrom": {"resourceFieldRef": {"containerName": "b", "resource": "limits.memory", "divisor": "1Ki"}}},
                {"name": "Z", "valueFrom": {"resourceFieldRef": {"containerName": "zz", "resource": "limits.memory"}}}
            ]},
            {"name": "b", "resources": {"limits": {"memory": "1Mi"}}}
        ]}
    }))
    .unwrap();
    let mut c = pod.spec.as_ref().unwrap().containers[0].clone();
    c.env.as_mut().unwrap().truncate(1);
    let env = container_env(&pod, &c, &FakeSource::default(), &EnvContext::default()).await.unwrap();
    assert_eq!(env.vars, vec![("B_MEM".to_string(), "1024".to_string())]);
    let c = pod.spec.as_ref().unwrap().containers[0].clone();
    let err = container_env(&pod, &c, &FakeSource::default(), &EnvContext::default()).await.unwrap_err();
    assert_eq!(err.to_string(), "container zz not found");
}

fn svc(ns: &str, name: &str, ip: &str, ports: serde_json::Value) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns},
        "spec": {"clusterIP": ip, "ports": ports}
    }))
    .unwrap()
}

#[test]
fn service_links_match_envvars_go() {
    let services = vec![
        svc("default", "kubernetes", "10.43.0.1", json!([{"name": "https", "port": 443}])),
        svc(
            "ns",
            "my-db",
            "10.43.0.9",
            json!([{"name": "sql", "port": 5432}, {"name": "dns-udp", "port": 53, "protocol": "UDP"}]),
        ),
        svc("ns", "headless", "None", json!([{"port": 80}])),
        svc("ns", "external", "", json!([{"port": 80}])),
        svc("other", "elsewhere", "10.43.0.7", json!([{"port": 80}])),
    ];
    let env: BTreeMap<String, String> = service_env(&services, "ns", true).into_iter().collect();
    let want: BTreeMap<String, String> = [
        ("KUBERNETES_SERVICE_HOST", "10.43.0.1"),
        ("KUBERNETES_SERVICE_PORT", "443"),
        ("KUBERNETES_SERVICE_PORT_HTTPS", "443"),
        ("KUBERNETES_PORT", "tcp://10.43.0.1:443"),
        ("KUBERNETES_PORT_443_TCP", "tcp://10.43.0.1:443"),
        ("KUBERNETES_PORT_443_TCP_PROTO", "tcp"),
        ("KUBERNETES_PORT_443_TCP_PORT", "443"),
        ("KUBERNETES_PORT_443_TCP_ADDR", "10.43.0.1"),
        ("MY_DB_SERVICE_HOST", "10.43.0.9"),
        ("MY_DB_SERVICE_PORT", "5432"),
        ("MY_DB_SERVICE_PORT_SQL", "5432"),
        ("MY_DB_SERVICE_PORT_DNS_UDP", "53"),
        ("MY_DB_PORT", "tcp://10.43.0.9:5432"),
        ("MY_DB_PORT_5432_TCP", "tcp://10.43.0.9:5432"),
        ("MY_DB_PORT_5432_TCP_PROTO", "tcp"),
        ("MY_DB_PORT_5432_TCP_PORT", "5432"),
        ("MY_DB_PORT_5432_TCP_ADDR", "10.43.0.9"),
        ("MY_DB_PORT_53_UDP", "udp://10.43.0.9:53"),
        ("MY_DB_PORT_53_UDP_PROTO", "udp"),
        ("MY_DB_PORT_53_UDP_PORT", "53"),
        ("MY_DB_PORT_53_UDP_ADDR", "10.43.0.9"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(env, want);

    // Without service links only the master service remains.
    let env = service_env(&services, "ns", false);
    assert!(env.iter().all(|(k, _)| k.starts_with("KUBERNETES_")), "{env:?}");
    assert_eq!(env.len(), 8);
}

#[tokio::test]
async fn service_env_for_reads_both_namespaces() {
    let src = FakeSource::default();
    src.add_service(svc("default", "kubernetes", "10.43.0.1", json!([{"name": "https", "port": 443}])));
    src.add_service(svc("ns", "web", "10.43.0.2", json!([{"port": 80}])));
    let (pod, _) = single(json!([]));
    let env = service_env_for(&pod, &src).await.unwrap();
    assert!(env.contains(&("WEB_SERVICE_HOST".to_string(), "10.43.0.2".to_string())));
    assert!(env.contains(&("KUBERNETES_SERVICE_HOST".to_string(), "10.43.0.1".to_string())));
    let mut pod = pod;
    pod.spec.as_mut().unwrap().enable_service_links = Some(false);
    let env = service_env_for(&pod, &src).await.unwrap();
    assert!(!env.iter().any(|(k, _)| k.starts_with("WEB_")));
}
