use k8s_openapi::api::core::v1::{
    Container, ContainerPort, PodCondition, PodSpec, PodStatus, ServicePort, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::*;

fn svc(name: &str, target: IntOrString) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            uid: Some("svc-uid".into()),
            labels: Some([("app".to_string(), "web".to_string())].into()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            selector: Some([("app".to_string(), "web".to_string())].into()),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                target_port: Some(target),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            cluster_ip: Some("10.43.0.20".into()),
            ..Default::default()
        }),
        status: None,
    }
}

fn pod(name: &str, ip: &str, ready: bool, port: i32) -> Arc<Pod> {
    Arc::new(Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            uid: Some(format!("{name}-uid")),
            labels: Some([("app".to_string(), "web".to_string())].into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            node_name: Some("n1".into()),
            containers: vec![Container {
                name: "c".into(),
                ports: Some(vec![ContainerPort {
                    name: Some("web".into()),
                    container_port: port,
                    protocol: Some("TCP".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: Some(PodStatus {
            phase: Some("Running".into()),
            pod_ip: (!ip.is_empty()).then(|| ip.to_string()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    })
}

fn zones() -> BTreeMap<String, Option<String>> {
    [("n1".to_string(), Some("zone-a".to_string()))].into()
}

fn conditions(e: &SliceEndpoint) -> (bool, bool, bool) {
    let c = e.conditions.clone().unwrap();
    (c.ready.unwrap(), c.serving.unwrap(), c.terminating.unwrap())
}

#[test]
fn ready_not_ready_terminating_and_ipless_pods() {
    let mut deleting = (*pod("c", "10.42.0.7", true, 8080)).clone();
    deleting.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()));
    let mut other = (*pod("d", "10.42.0.8", true, 8080)).clone();
    other.metadata.labels = Some([("app".to_string(), "db".to_string())].into());
    let pods = vec![
        pod("a", "10.42.0.5", true, 8080),
        pod("b", "10.42.0.6", false, 8080),
        Arc::new(deleting),
        Arc::new(other),
        pod("e", "", true, 8080),
    ];
    let d = desired(&svc("web", IntOrString::Int(8080)), &pods, &zones());
    assert_eq!(d.slices.len(), 1);
    let (ports, eps) = &d.slices[0];
    assert_eq!(ports[0].port, Some(8080));
    assert_eq!(ports[0].name.as_deref(), Some("http"));
    let by_ip: BTreeMap<&str, &SliceEndpoint> = eps.iter().map(|e| (e.addresses[0].as_str(), e)).collect();
    assert_eq!(by_ip.len(), 3, "the db pod and the pod without an IP are not endpoints");
    assert_eq!(conditions(by_ip["10.42.0.5"]), (true, true, false));
    assert_eq!(conditions(by_ip["10.42.0.6"]), (false, false, false));
    assert_eq!(conditions(by_ip["10.42.0.7"]), (false, true, true), "terminating pods are never ready");
    assert_eq!(by_ip["10.42.0.5"].zone.as_deref(), Some("zone-a"));
    assert_eq!(by_ip["10.42.0.5"].node_name.as_deref(), Some("n1"));
    assert_eq!(by_ip["10.42.0.5"].target_ref.as_ref().unwrap().name.as_deref(), Some("a"));
    // Endpoints: the terminating pod is left out, the not-ready one listed apart.
    let subset = &d.subsets[0];
    let ips = |a: &Option<Vec<EndpointAddress>>| a.iter().flatten().map(|x| x.ip.clone()).collect::<Vec<_>>();
    assert_eq!(ips(&subset.addresses), ["10.42.0.5"]);
    assert_eq!(ips(&subset.not_ready_addresses), ["10.42.0.6"]);
    assert_eq!(subset.ports.as_ref().unwrap()[0].port, 8080);
}

#[test]
fn publish_not_ready_addresses_makes_everyone_ready() {
    let mut s = svc("web", IntOrString::Int(8080));
    s.spec.as_mut().unwrap().publish_not_ready_addresses = Some(true);
    let d = desired(&s, &[pod("b", "10.42.0.6", false, 8080)], &zones());
    assert_eq!(conditions(&d.slices[0].1[0]), (true, false, false));
}

#[test]
fn named_ports_resolve_per_pod_into_separate_slices() {
    let pods =
        vec![pod("a", "10.42.0.5", true, 8080), pod("b", "10.42.0.6", true, 9090), pod("c", "10.42.0.9", true, 8080)];
    let d = desired(&svc("web", IntOrString::String("web".into())), &pods, &zones());
    let mut got: Vec<(i32, usize)> = d.slices.iter().map(|(p, e)| (p[0].port.unwrap(), e.len())).collect();
    got.sort();
    assert_eq!(got, [(8080, 2), (9090, 1)]);
    assert_eq!(d.subsets.len(), 2);
    // A pod without the named port still is an endpoint, with no ports.
    let d = desired(&svc("web", IntOrString::String("grpc".into())), &pods[..1], &zones());
    assert!(d.slices[0].0.is_empty());
}

#[test]
fn headless_hostnames_and_large_services() {
    let mut s = svc("db", IntOrString::Int(8080));
    s.spec.as_mut().unwrap().cluster_ip = Some("None".into());
    let mut p = (*pod("db-0", "10.42.0.5", true, 8080)).clone();
    p.spec.as_mut().unwrap().hostname = Some("db-0".into());
    p.spec.as_mut().unwrap().subdomain = Some("db".into());
    let d = desired(&s, &[Arc::new(p.clone())], &zones());
    assert_eq!(d.slices[0].1[0].hostname.as_deref(), Some("db-0"));
    assert_eq!(labels_for(&s, true).get(HEADLESS_LABEL).map(String::as_str), Some(""));
    // Not the pod's subdomain: no hostname.
    let d = desired(&svc("web", IntOrString::Int(8080)), &[Arc::new(p)], &zones());
    assert_eq!(d.slices[0].1[0].hostname, None);
    let many: Vec<Arc<Pod>> =
        (0..250).map(|i| pod(&format!("p{i:03}"), &format!("10.42.{}.{}", i / 200, i % 200 + 1), true, 8080)).collect();
    let d = desired(&svc("web", IntOrString::Int(8080)), &many, &zones());
    let sizes: Vec<usize> = d.slices.iter().map(|(_, e)| e.len()).collect();
    assert_eq!(sizes, [100, 100, 50]);
    let labels = labels_for(&svc("web", IntOrString::Int(8080)), true);
    assert_eq!(labels[SERVICE_NAME_LABEL], "web");
    assert_eq!(labels[MANAGED_BY_LABEL], MANAGED_BY);
    assert_eq!(labels["app"], "web", "the Service's labels are copied");
}

#[test]
fn finished_pods_and_services_without_selectors() {
    let mut done = (*pod("a", "10.42.0.5", false, 8080)).clone();
    done.spec.as_mut().unwrap().restart_policy = Some("Never".into());
    done.status.as_mut().unwrap().phase = Some("Succeeded".into());
    let d = desired(&svc("web", IntOrString::Int(8080)), &[Arc::new(done)], &zones());
    assert!(d.slices.is_empty() && d.subsets.is_empty());
    let mut manual = svc("web", IntOrString::Int(8080));
    manual.spec.as_mut().unwrap().selector = None;
    assert!(!selects(&manual));
    assert_eq!(desired(&manual, &[pod("a", "10.42.0.5", true, 8080)], &zones()), Desired::default());
    let mut ext = svc("web", IntOrString::Int(8080));
    ext.spec.as_mut().unwrap().type_ = Some("ExternalName".into());
    assert!(!selects(&ext));
}
