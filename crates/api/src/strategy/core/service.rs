//! Services: `SetDefaults_Service`, the service strategy's handling of the linked
//! `clusterIP`/`clusterIPs` fields and of values allocated earlier (`patchAllocatedValues`,
//! `dropTypeDependentFields`), and `ValidateService` / `ValidateServiceUpdate`.
//!
//! Allocating cluster IPs and node ports is the API server's job, not this strategy's.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    ClientIPConfig, LoadBalancerStatus, Service, ServicePort, ServiceSpec, ServiceStatus, SessionAffinityConfig,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::field::{ErrorList, FieldError, Path};
use crate::strategy::common::{Raw, default_str, default_to, enum_value, go_strings, validate_labels};
use crate::strategy::{KindStrategy, NameRule};
use crate::validation;

const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
/// Upstream's `MaxClientIPServiceAffinitySeconds`.
const MAX_AFFINITY_SECONDS: i32 = 86400;

fn svc_type(spec: &ServiceSpec) -> &str {
    spec.type_.as_deref().filter(|t| !t.is_empty()).unwrap_or("ClusterIP")
}

fn is_headless(spec: &ServiceSpec) -> bool {
    spec.cluster_ips.as_deref().is_some_and(|ips| ips.len() == 1 && ips[0] == "None")
}

fn needs_cluster_ip(spec: &ServiceSpec) -> bool {
    svc_type(spec) != "ExternalName"
}

fn needs_node_port(spec: &ServiceSpec) -> bool {
    match svc_type(spec) {
        "NodePort" => true,
        "LoadBalancer" => spec.allocate_load_balancer_node_ports != Some(false),
        _ => false,
    }
}

fn needs_health_check(spec: &ServiceSpec) -> bool {
    svc_type(spec) == "LoadBalancer" && spec.external_traffic_policy.as_deref() == Some("Local")
}

fn externally_accessible(spec: &ServiceSpec) -> bool {
    match svc_type(spec) {
        "LoadBalancer" | "NodePort" => true,
        "ClusterIP" => spec.external_ips.as_ref().is_some_and(|ips| !ips.is_empty()),
        _ => false,
    }
}

impl KindStrategy for Service {
    fn name_rule() -> NameRule {
        NameRule::Rfc1035Label
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(ServiceStatus { load_balancer: Some(LoadBalancerStatus::default()), conditions: None });
        let spec = self.spec.get_or_insert_with(ServiceSpec::default);
        if let Some(ip) = spec.cluster_ip.clone().filter(|ip| !ip.is_empty())
            && spec.cluster_ips.as_ref().is_none_or(Vec::is_empty)
        {
            spec.cluster_ips = Some(vec![ip]);
        }
    }

    fn prepare_for_update(&mut self, old: &Self) {
        let empty = ServiceSpec::default();
        let old = old.spec.as_ref().unwrap_or(&empty);
        let new = self.spec.get_or_insert_with(ServiceSpec::default);
        patch_allocated_values(new, old);
        normalize_cluster_ips(new, old);
        drop_type_dependent_fields(new, old);
    }

    fn default(&mut self) {
        let spec = self.spec.get_or_insert_with(ServiceSpec::default);
        default_str(&mut spec.session_affinity, "None");
        if spec.session_affinity.as_deref() == Some("ClientIP")
            && spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .is_none()
        {
            spec.session_affinity_config =
                Some(SessionAffinityConfig { client_ip: Some(ClientIPConfig { timeout_seconds: Some(10800) }) });
        }
        default_str(&mut spec.type_, "ClusterIP");
        for p in spec.ports.iter_mut().flatten() {
            default_str(&mut p.protocol, "TCP");
            let unset = match &p.target_port {
                None => true,
                Some(IntOrString::Int(0)) => true,
                Some(IntOrString::String(s)) => s.is_empty(),
                Some(_) => false,
            };
            if unset {
                p.target_port = Some(IntOrString::Int(p.port));
            }
        }
        if externally_accessible(spec) {
            default_str(&mut spec.external_traffic_policy, "Cluster");
        }
        let ty = svc_type(spec).to_string();
        if ty != "ExternalName" {
            default_to(&mut spec.internal_traffic_policy, "Cluster".to_string());
        }
        if ty == "LoadBalancer" {
            default_to(&mut spec.allocate_load_balancer_node_ports, true);
            for ing in self
                .status
                .iter_mut()
                .flat_map(|s| s.load_balancer.iter_mut())
                .flat_map(|lb| lb.ingress.iter_mut().flatten())
            {
                if ing.ip.as_deref().is_some_and(|ip| !ip.is_empty()) {
                    default_to(&mut ing.ip_mode, "VIP".to_string());
                }
            }
        }
        // The families and policy the allocator would record for a single-stack IPv4 cluster.
        if ty != "ExternalName" {
            let headless_without_selector = is_headless(spec) && spec.selector.as_ref().is_none_or(BTreeMap::is_empty);
            if spec.ip_family_policy.is_none() {
                let policy = if headless_without_selector { "RequireDualStack" } else { "SingleStack" };
                spec.ip_family_policy = Some(policy.to_string());
            }
            if spec.ip_families.as_ref().is_none_or(Vec::is_empty) {
                let v6 = spec
                    .cluster_ips
                    .as_ref()
                    .and_then(|ips| ips.first())
                    .and_then(|ip| validation::parse_ip(ip))
                    .is_some_and(|ip| ip.is_ipv6());
                spec.ip_families = Some(vec![if v6 { "IPv6" } else { "IPv4" }.to_string()]);
            }
        }
    }

    fn validate(&self) -> ErrorList {
        let empty = ServiceSpec::default();
        let spec = self.spec.as_ref().unwrap_or(&empty);
        validate_service(spec)
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let empty = ServiceSpec::default();
        let new = self.spec.as_ref().unwrap_or(&empty);
        let old = old.spec.as_ref().unwrap_or(&empty);
        let mut errs = ErrorList::new();
        errs.extend(cluster_ips_update(old, new));
        errs.extend(ip_families_update(old, new));
        if svc_type(old) == "LoadBalancer"
            && svc_type(new) == "LoadBalancer"
            && old.load_balancer_class != new.load_balancer_class
        {
            errs.push(FieldError::invalid(
                &Path::new("spec").child("loadBalancerClass"),
                Raw(new.load_balancer_class.as_deref().map_or("null".into(), |c| format!("{c:?}"))),
                "may not change once set",
            ));
        }
        if needs_health_check(old)
            && needs_health_check(new)
            && old.health_check_node_port != new.health_check_node_port
        {
            errs.push(FieldError::forbidden(&Path::new("spec").child("healthCheckNodePort"), "field is immutable"));
        }
        errs
    }

    fn validate_status_update(&self, _old: &Value) -> ErrorList {
        let mut errs = ErrorList::new();
        let empty = ServiceSpec::default();
        let spec = self.spec.as_ref().unwrap_or(&empty);
        let ingress_path = Path::new("status").child("loadBalancer").child("ingress");
        let ingress = self.status.as_ref().and_then(|s| s.load_balancer.as_ref()).and_then(|l| l.ingress.as_ref());
        let Some(ingress) = ingress.filter(|i| !i.is_empty()) else { return errs };
        if svc_type(spec) != "LoadBalancer" {
            errs.push(FieldError::forbidden(&ingress_path, "may only be used when `spec.type` is 'LoadBalancer'"));
            return errs;
        }
        for (i, ing) in ingress.iter().enumerate() {
            let p = ingress_path.index(i);
            let ip = ing.ip.as_deref().unwrap_or_default();
            if !ip.is_empty() {
                errs.extend(validation::invalid_each(&p.child("ip"), ip, validation::ip(ip)));
            }
            match (&ing.ip_mode, ip.is_empty()) {
                (None, false) => {
                    errs.push(FieldError::required(&p.child("ipMode"), "must be specified when `ip` is set"))
                }
                (Some(_), true) => {
                    errs.push(FieldError::forbidden(&p.child("ipMode"), "may not be specified when `ip` is not set"))
                }
                (Some(m), false) if m != "VIP" && m != "Proxy" => {
                    errs.push(FieldError::not_supported(&p.child("ipMode"), m, &["Proxy", "VIP"]))
                }
                _ => {}
            }
            if let Some(h) = ing.hostname.as_deref().filter(|h| !h.is_empty()) {
                errs.extend(validation::invalid_each(&p.child("hostname"), h, validation::dns1123_subdomain(h)));
                if validation::parse_ip(h).is_some() {
                    errs.push(FieldError::invalid(&p.child("hostname"), h, "must be a DNS name, not an IP address"));
                }
            }
        }
        errs
    }
}

/// Values the allocator chose earlier survive an update that leaves them out.
fn patch_allocated_values(new: &mut ServiceSpec, old: &ServiceSpec) {
    if needs_cluster_ip(old) && needs_cluster_ip(new) {
        if new.cluster_ip.as_deref().is_none_or(str::is_empty) {
            new.cluster_ip.clone_from(&old.cluster_ip);
        }
        if new.cluster_ips.as_ref().is_none_or(Vec::is_empty) && old.cluster_ips.as_ref().is_some_and(|v| !v.is_empty())
        {
            new.cluster_ips.clone_from(&old.cluster_ips);
        }
    }
    if needs_node_port(old) && needs_node_port(new) {
        let used_by = |s: &ServiceSpec| -> BTreeSet<i32> {
            s.ports.iter().flatten().filter_map(|p| p.node_port).filter(|n| *n != 0).collect()
        };
        let used: BTreeSet<i32> = used_by(old).intersection(&used_by(new)).copied().collect();
        let by_name: BTreeMap<String, i32> = old
            .ports
            .iter()
            .flatten()
            .map(|p| (p.name.clone().unwrap_or_default(), p.node_port.unwrap_or(0)))
            .collect();
        for p in new.ports.iter_mut().flatten() {
            if p.node_port.unwrap_or(0) == 0 {
                let old_val = by_name.get(p.name.as_deref().unwrap_or_default()).copied().unwrap_or(0);
                if old_val != 0 && !used.contains(&old_val) {
                    p.node_port = Some(old_val);
                }
            }
        }
    }
    if needs_health_check(old) && needs_health_check(new) && new.health_check_node_port.unwrap_or(0) == 0 {
        new.health_check_node_port = old.health_check_node_port;
    }
}

/// Upstream's `normalizeClusterIPs` for updates.
fn normalize_cluster_ips(new: &mut ServiceSpec, old: &ServiceSpec) {
    let same_ips = |a: &ServiceSpec, b: &ServiceSpec| {
        a.cluster_ips.as_deref().unwrap_or_default() == b.cluster_ips.as_deref().unwrap_or_default()
    };
    let old_ip = old.cluster_ip.clone().unwrap_or_default();
    let new_ip = new.cluster_ip.clone().unwrap_or_default();
    if old.cluster_ips.as_ref().is_some_and(|v| !v.is_empty())
        && new.cluster_ips.as_ref().is_none_or(Vec::is_empty)
        && old_ip == new_ip
    {
        new.cluster_ips.clone_from(&old.cluster_ips);
    }
    if old_ip != new_ip {
        if !old_ip.is_empty() && new_ip.is_empty() {
            if same_ips(old, new) {
                new.cluster_ips = None;
            }
        } else if same_ips(old, new) {
            new.cluster_ips = Some(vec![new_ip]);
        }
    }
}

/// Upstream's `dropTypeDependentFields`: fields only meaningful for the old type are cleared
/// when the type changes, unless the user changed them too.
fn drop_type_dependent_fields(new: &mut ServiceSpec, old: &ServiceSpec) {
    if svc_type(new) == svc_type(old) {
        return;
    }
    if !needs_cluster_ip(new) && needs_cluster_ip(old) {
        if new.cluster_ip == old.cluster_ip {
            new.cluster_ip = None;
        }
        if new.cluster_ips == old.cluster_ips {
            new.cluster_ips = None;
        }
        if new.ip_families == old.ip_families {
            new.ip_families = None;
        }
        if new.ip_family_policy == old.ip_family_policy {
            new.ip_family_policy = None;
        }
    }
    if !needs_node_port(new) && needs_node_port(old) {
        let old_ports: BTreeMap<(i32, String), i32> = old
            .ports
            .iter()
            .flatten()
            .map(|p| ((p.port, p.protocol.clone().unwrap_or_default()), p.node_port.unwrap_or(0)))
            .collect();
        for p in new.ports.iter_mut().flatten() {
            let key = (p.port, p.protocol.clone().unwrap_or_else(|| "TCP".to_string()));
            if p.node_port.is_some() && old_ports.get(&key).copied() == p.node_port {
                p.node_port = None;
            }
        }
    }
    if !needs_health_check(new) && needs_health_check(old) && new.health_check_node_port == old.health_check_node_port {
        new.health_check_node_port = None;
    }
    if svc_type(new) != "LoadBalancer" {
        if new.allocate_load_balancer_node_ports == old.allocate_load_balancer_node_ports {
            new.allocate_load_balancer_node_ports = None;
        }
        if new.load_balancer_class == old.load_balancer_class {
            new.load_balancer_class = None;
        }
    }
    if !externally_accessible(new) && new.external_traffic_policy == old.external_traffic_policy {
        new.external_traffic_policy = None;
    }
    if svc_type(new) == "ExternalName" && new.internal_traffic_policy == old.internal_traffic_policy {
        new.internal_traffic_policy = None;
    }
}

fn validate_service(spec: &ServiceSpec) -> ErrorList {
    let mut errs = ErrorList::new();
    let sp = Path::new("spec");
    let ty = spec.type_.as_deref().unwrap_or_default();
    let ports = spec.ports.as_deref().unwrap_or_default();
    let headless = is_headless(spec);
    if ports.is_empty() && !headless && ty != "ExternalName" {
        errs.push(FieldError::required(&sp.child("ports"), ""));
    }
    let cluster_ips = spec.cluster_ips.as_deref().unwrap_or_default();
    match ty {
        "LoadBalancer" | "NodePort" if headless => errs.push(FieldError::invalid(
            &sp.child("clusterIPs").index(0),
            &cluster_ips[0],
            format!("may not be set to 'None' for {ty} services"),
        )),
        "ExternalName" => {
            if !cluster_ips.is_empty() {
                errs.push(FieldError::forbidden(&sp.child("clusterIPs"), "may not be set for ExternalName services"));
            }
            if spec.ip_families.as_ref().is_some_and(|f| !f.is_empty()) {
                errs.push(FieldError::forbidden(&sp.child("ipFamilies"), "may not be set for ExternalName services"));
            }
            if spec.ip_family_policy.is_some() {
                errs.push(FieldError::forbidden(
                    &sp.child("ipFamilyPolicy"),
                    "may not be set for ExternalName services",
                ));
            }
            let name = spec.external_name.as_deref().unwrap_or_default();
            let cname = name.strip_suffix('.').unwrap_or(name);
            if cname.is_empty() {
                errs.push(FieldError::required(&sp.child("externalName"), ""));
            } else {
                errs.extend(validation::invalid_each(
                    &sp.child("externalName"),
                    cname,
                    validation::dns1123_subdomain(cname),
                ));
            }
        }
        _ => {}
    }
    let mut names = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        errs.extend(validate_port(p, ports.len() > 1, &mut names, &sp.child("ports").index(i)));
    }
    if let Some(sel) = &spec.selector {
        errs.extend(validate_labels(sel, &sp.child("selector")));
    }
    let affinity = spec.session_affinity.as_deref().unwrap_or_default();
    errs.extend(enum_value(Some(affinity), &["ClientIP", "None"], true, &sp.child("sessionAffinity")));
    let cfg_path = sp.child("sessionAffinityConfig");
    if affinity == "ClientIP" {
        match spec.session_affinity_config.as_ref() {
            None => errs.push(FieldError::required(&cfg_path, "when session affinity type is ClientIP")),
            Some(c) => match c.client_ip.as_ref() {
                None => errs
                    .push(FieldError::required(&cfg_path.child("clientIP"), "when session affinity type is ClientIP")),
                Some(ip) => match ip.timeout_seconds {
                    None => errs.push(FieldError::required(
                        &cfg_path.child("clientIP").child("timeoutSeconds"),
                        "when session affinity type is ClientIP",
                    )),
                    Some(t) if t <= 0 || t > MAX_AFFINITY_SECONDS => errs.push(FieldError::invalid(
                        &cfg_path.child("clientIP").child("timeoutSeconds"),
                        t,
                        format!("must be greater than 0 and less than {MAX_AFFINITY_SECONDS}"),
                    )),
                    Some(_) => {}
                },
            },
        }
    } else if affinity == "None" && spec.session_affinity_config.is_some() {
        errs.push(FieldError::forbidden(&cfg_path, "must not be set when session affinity is None"));
    }
    errs.extend(cluster_ips_related(spec));
    for (i, ip) in spec.external_ips.iter().flatten().enumerate() {
        let p = sp.child("externalIPs").index(i);
        let e = validation::invalid_each(&p, ip, validation::ip(ip));
        if e.is_empty() {
            errs.extend(non_special_ip(ip, &p));
        }
        errs.extend(e);
    }
    errs.extend(enum_value(Some(ty), TYPES, true, &sp.child("type")));
    if ty == "ClusterIP" {
        for (i, p) in ports.iter().enumerate() {
            if p.node_port.unwrap_or(0) != 0 {
                errs.push(FieldError::forbidden(
                    &sp.child("ports").index(i).child("nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    let mut node_ports = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let np = p.node_port.unwrap_or(0);
        if np != 0 && !node_ports.insert((p.protocol.clone(), np)) {
            errs.push(FieldError::duplicate(&sp.child("ports").index(i).child("nodePort"), np));
        }
    }
    let mut seen = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let proto = p.protocol.clone().unwrap_or_default();
        if !seen.insert((proto.clone(), p.port)) {
            errs.push(FieldError::duplicate(
                &sp.child("ports").index(i),
                Raw(format!(
                    "core.ServicePort{{Name:\"\", Protocol:{proto:?}, AppProtocol:(*string)(nil), Port:{}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
                    p.port
                )),
            ));
        }
    }
    let ranges = spec.load_balancer_source_ranges.as_deref().unwrap_or_default();
    if !ranges.is_empty() {
        let p = sp.child("LoadBalancerSourceRanges");
        if ty != "LoadBalancer" {
            errs.push(FieldError::forbidden(&p, "may only be used when `type` is 'LoadBalancer'"));
        }
        for (i, r) in ranges.iter().enumerate() {
            let r = r.trim();
            errs.extend(validation::invalid_each(&p.index(i), r, validation::cidr(r)));
        }
    }
    if spec.allocate_load_balancer_node_ports.is_some() && ty != "LoadBalancer" {
        errs.push(FieldError::forbidden(
            &sp.child("allocateLoadBalancerNodePorts"),
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if ty == "LoadBalancer" && spec.allocate_load_balancer_node_ports.is_none() {
        // sic: upstream reports this one without the `spec.` prefix.
        errs.push(FieldError::required(&Path::new("allocateLoadBalancerNodePorts"), ""));
    }
    if let Some(c) = &spec.load_balancer_class {
        if ty == "LoadBalancer" {
            errs.extend(validation::invalid_each(&sp.child("loadBalancerClass"), c, validation::qualified_name(c)));
        } else {
            errs.push(FieldError::forbidden(
                &sp.child("loadBalancerClass"),
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
    }
    let etp = spec.external_traffic_policy.as_deref().unwrap_or_default();
    if !externally_accessible(spec) {
        if !etp.is_empty() {
            errs.push(FieldError::invalid(
                &sp.child("externalTrafficPolicy"),
                etp,
                "may only be set for externally-accessible services",
            ));
        }
    } else {
        errs.extend(enum_value(Some(etp), &["Cluster", "Local"], true, &sp.child("externalTrafficPolicy")));
    }
    let hc = spec.health_check_node_port.unwrap_or(0);
    if !needs_health_check(spec) {
        if hc != 0 {
            errs.push(FieldError::invalid(
                &sp.child("healthCheckNodePort"),
                hc,
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            ));
        }
    } else if hc != 0 {
        // A zero value is filled in by the API server's allocator.
        for m in validation::port_num(i64::from(hc)) {
            errs.push(FieldError::invalid(&sp.child("healthCheckNodePort"), hc, m));
        }
    }
    match &spec.internal_traffic_policy {
        None if matches!(ty, "NodePort" | "LoadBalancer" | "ClusterIP") => {
            errs.push(FieldError::required(&sp.child("internalTrafficPolicy"), ""))
        }
        Some(p) => errs.extend(enum_value(Some(p), &["Cluster", "Local"], true, &sp.child("internalTrafficPolicy"))),
        None => {}
    }
    if let Some(td) = &spec.traffic_distribution
        && td != "PreferClose"
    {
        errs.push(FieldError::not_supported(&sp.child("trafficDistribution"), td, &["PreferClose"]));
    }
    errs
}

fn validate_port(p: &ServicePort, require_name: bool, names: &mut BTreeSet<String>, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = p.name.as_deref().unwrap_or_default();
    if require_name && name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else if !name.is_empty() {
        errs.extend(validation::invalid_each(&path.child("name"), name, validation::dns1123_label(name)));
        if !names.insert(name.to_string()) {
            errs.push(FieldError::duplicate(&path.child("name"), name));
        }
    }
    for m in validation::port_num(i64::from(p.port)) {
        errs.push(FieldError::invalid(&path.child("port"), p.port, m));
    }
    errs.extend(enum_value(p.protocol.as_deref(), PROTOCOLS, true, &path.child("protocol")));
    if let Some(tp) = &p.target_port {
        errs.extend(super::pod_spec::port_num_or_name(tp, &path.child("targetPort")));
    }
    if let Some(ap) = &p.app_protocol {
        errs.extend(validation::invalid_each(&path.child("appProtocol"), ap, validation::qualified_name(ap)));
    }
    errs
}

/// `ValidateNonSpecialIP`.
pub(crate) fn non_special_ip(ip: &str, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(addr) = validation::parse_ip(ip) else {
        return vec![FieldError::invalid(path, ip, "must be a valid IP address")];
    };
    if addr.is_unspecified() {
        errs.push(FieldError::invalid(path, ip, format!("may not be unspecified ({ip})")));
    }
    if addr.is_loopback() {
        errs.push(FieldError::invalid(path, ip, "may not be in the loopback range (127.0.0.0/8, ::1/128)"));
    }
    let link_local = match addr {
        std::net::IpAddr::V4(a) => a.is_link_local(),
        std::net::IpAddr::V6(a) => (a.segments()[0] & 0xffc0) == 0xfe80,
    };
    if link_local {
        errs.push(FieldError::invalid(path, ip, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"));
    }
    let ll_multicast = match addr {
        std::net::IpAddr::V4(a) => a.octets()[..3] == [224, 0, 0],
        std::net::IpAddr::V6(a) => (a.segments()[0] & 0xff0f) == 0xff02,
    };
    if ll_multicast {
        errs.push(FieldError::invalid(
            path,
            ip,
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        ));
    }
    errs
}

/// `ValidateServiceClusterIPsRelatedFields`.
fn cluster_ips_related(spec: &ServiceSpec) -> ErrorList {
    let mut errs = ErrorList::new();
    if svc_type(spec) == "ExternalName" {
        return errs;
    }
    let sp = Path::new("spec");
    let ips_path = sp.child("clusterIPs");
    let ips = spec.cluster_ips.as_deref().unwrap_or_default();
    let ip = spec.cluster_ip.as_deref().unwrap_or_default();
    let shown = || Raw(go_strings(spec.cluster_ips.as_deref()));
    if !ip.is_empty() {
        if ips.is_empty() {
            errs.push(FieldError::required(&ips_path, ""));
        } else if ips[0] != ip {
            errs.push(FieldError::invalid(&ips_path, shown(), "first value must match `clusterIP`"));
        }
    } else if !ips.is_empty() {
        errs.push(FieldError::invalid(&ips_path, shown(), "must be empty when `clusterIP` is not specified"));
    }
    let mut seen = BTreeSet::new();
    for (i, f) in spec.ip_families.iter().flatten().enumerate() {
        let p = sp.child("ipFamilies").index(i);
        if f != "IPv4" && f != "IPv6" {
            errs.push(FieldError::not_supported(&p, f, &["IPv4", "IPv6"]));
        }
        if !seen.insert(f.as_str()) {
            errs.push(FieldError::duplicate(&p, f));
        }
    }
    if let Some(p) = &spec.ip_family_policy {
        errs.extend(enum_value(
            Some(p),
            &["PreferDualStack", "RequireDualStack", "SingleStack"],
            false,
            &sp.child("ipFamilyPolicy"),
        ));
    }
    let mut invalid = false;
    for (i, cip) in ips.iter().enumerate() {
        if i == 0 && cip == "None" {
            if ips.len() > 1 {
                invalid = true;
                errs.push(FieldError::invalid(&ips_path, shown(), "'None' must be the first and only value"));
            }
            continue;
        }
        let e = validation::invalid_each(&ips_path.index(i), cip, validation::ip(cip));
        invalid |= !e.is_empty();
        errs.extend(e);
    }
    if ips.len() > 2 {
        errs.push(FieldError::invalid(&ips_path, shown(), "may only hold up to 2 values"));
    }
    if invalid {
        return errs;
    }
    if ips.len() > 1 {
        let v6: Vec<bool> = ips.iter().map(|ip| validation::parse_ip(ip).is_some_and(|a| a.is_ipv6())).collect();
        if v6.len() != 2 || v6[0] == v6[1] {
            errs.push(FieldError::invalid(&ips_path, shown(), "may specify no more than one IP for each IP family"));
        }
    }
    if !is_headless(spec) {
        for (i, (cip, fam)) in ips.iter().zip(spec.ip_families.iter().flatten()).enumerate() {
            let is6 = validation::parse_ip(cip).is_some_and(|a| a.is_ipv6());
            if fam == "IPv4" && is6 {
                errs.push(FieldError::invalid(
                    &ips_path.index(i),
                    cip,
                    format!("expected an IPv4 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
            if fam == "IPv6" && !is6 {
                errs.push(FieldError::invalid(
                    &ips_path.index(i),
                    cip,
                    format!("expected an IPv6 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
        }
    }
    errs
}

/// `validateUpgradeDowngradeClusterIPs`.
fn cluster_ips_update(old: &ServiceSpec, new: &ServiceSpec) -> ErrorList {
    let mut errs = ErrorList::new();
    if svc_type(new) == "ExternalName" || svc_type(old) == "ExternalName" || (is_headless(old) && is_headless(new)) {
        return errs;
    }
    let p = Path::new("spec").child("clusterIPs");
    let o = old.cluster_ips.as_deref().unwrap_or_default();
    let n = new.cluster_ips.as_deref().unwrap_or_default();
    let shown = || Raw(go_strings(new.cluster_ips.as_deref()));
    if o.len() == n.len() {
        for (i, ip) in o.iter().enumerate() {
            if *ip != n[i] {
                errs.push(FieldError::invalid(&p.index(i), shown(), "may not change once set"));
            }
        }
    } else if o.len() > n.len() {
        if n.is_empty() {
            errs.push(FieldError::invalid(&p.index(0), shown(), "primary clusterIP can not be unset"));
        }
        if !o.is_empty() && !n.is_empty() && n[0] != o[0] {
            errs.push(FieldError::invalid(&p.index(0), shown(), "may not change once set"));
        }
        if n.len() == 1 && new.ip_family_policy.as_deref() != Some("SingleStack") {
            errs.push(FieldError::invalid(
                &Path::new("spec").child("ipFamilyPolicy"),
                Raw(new.ip_family_policy.as_deref().map_or("null".into(), |p| format!("{p:?}"))),
                "must be set to 'SingleStack' when releasing the secondary clusterIP",
            ));
        }
    } else if !o.is_empty() && n[0] != o[0] {
        errs.push(FieldError::invalid(&p.index(0), shown(), "may not change once set"));
    }
    errs
}

/// `validateUpgradeDowngradeIPFamilies`.
fn ip_families_update(old: &ServiceSpec, new: &ServiceSpec) -> ErrorList {
    let mut errs = ErrorList::new();
    if svc_type(new) == "ExternalName" || svc_type(old) == "ExternalName" || is_headless(old) || is_headless(new) {
        return errs;
    }
    let p = Path::new("spec").child("ipFamilies").index(0);
    let o = old.ip_families.as_deref().unwrap_or_default();
    let n = new.ip_families.as_deref().unwrap_or_default();
    let shown = Raw(go_strings(new.ip_families.as_deref()));
    if o.len() == n.len() {
        if o != n {
            errs.push(FieldError::invalid(&p, shown, "may not change once set"));
        }
    } else if !o.is_empty() && !n.is_empty() && n[0] != o[0] {
        errs.push(FieldError::invalid(&p, Raw(go_strings(new.cluster_ips.as_deref())), "may not change once set"));
    }
    errs
}
