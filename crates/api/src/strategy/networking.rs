//! Strategies for networking.k8s.io/v1 kinds: NetworkPolicy (policyTypes and protocol
//! defaults, peers and ports), Ingress (rules, paths, backends), IngressClass, and the
//! ServiceCIDR / IPAddress allocator objects.

use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, IPAddress, Ingress, IngressBackend, IngressClass, IngressStatus, NetworkPolicy, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec, ServiceCIDR, ServiceCIDRStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::field::{ErrorList, FieldError, Path};
use crate::strategy::common::{Raw, default_str, default_to, enum_value, go_strings, validate_label_selector};
use crate::strategy::{KindStrategy, NameRule};
use crate::validation;

#[cfg(test)]
mod tests;

impl KindStrategy for NetworkPolicy {
    fn default(&mut self) {
        let spec = self.spec.get_or_insert_with(NetworkPolicySpec::default);
        default_to(&mut spec.pod_selector, LabelSelector::default());
        for p in spec
            .ingress
            .iter_mut()
            .flatten()
            .flat_map(|r| r.ports.iter_mut().flatten())
            .chain(spec.egress.iter_mut().flatten().flat_map(|r| r.ports.iter_mut().flatten()))
        {
            default_str(&mut p.protocol, "TCP");
        }
        if spec.policy_types.as_ref().is_none_or(Vec::is_empty) {
            let mut types = vec!["Ingress".to_string()];
            if spec.egress.as_ref().is_some_and(|e| !e.is_empty()) {
                types.push("Egress".to_string());
            }
            spec.policy_types = Some(types);
        }
    }

    fn validate(&self) -> ErrorList {
        let spec = self.spec.clone().unwrap_or_default();
        let p = Path::new("spec");
        let mut errs = ErrorList::new();
        if let Some(sel) = &spec.pod_selector {
            errs.extend(validate_label_selector(sel, &p.child("podSelector")));
        }
        for (i, rule) in spec.ingress.iter().flatten().enumerate() {
            let rp = p.child("ingress").index(i);
            for (j, port) in rule.ports.iter().flatten().enumerate() {
                errs.extend(validate_np_port(port, &rp.child("ports").index(j)));
            }
            for (j, peer) in rule.from.iter().flatten().enumerate() {
                errs.extend(validate_peer(peer, &rp.child("from").index(j)));
            }
        }
        for (i, rule) in spec.egress.iter().flatten().enumerate() {
            let rp = p.child("egress").index(i);
            for (j, port) in rule.ports.iter().flatten().enumerate() {
                errs.extend(validate_np_port(port, &rp.child("ports").index(j)));
            }
            for (j, peer) in rule.to.iter().flatten().enumerate() {
                errs.extend(validate_peer(peer, &rp.child("to").index(j)));
            }
        }
        let types = spec.policy_types.as_deref().unwrap_or_default();
        for (i, t) in types.iter().enumerate() {
            errs.extend(enum_value(Some(t), &["Egress", "Ingress"], false, &p.child("policyTypes").index(i)));
        }
        if types.len() > 2 {
            errs.push(FieldError::invalid(
                &p.child("policyTypes"),
                Raw(go_strings(Some(types))),
                "may not specify more than two policyTypes",
            ));
        }
        errs
    }
}

fn validate_np_port(port: &NetworkPolicyPort, path: &Path) -> ErrorList {
    let mut errs = enum_value(port.protocol.as_deref(), &["SCTP", "TCP", "UDP"], false, &path.child("protocol"));
    match (&port.port, port.end_port) {
        (Some(IntOrString::Int(p)), end) => {
            for m in validation::port_num(i64::from(*p)) {
                errs.push(FieldError::invalid(&path.child("port"), *p, m));
            }
            if let Some(e) = end {
                if e < *p {
                    errs.push(FieldError::invalid(
                        &path.child("endPort"),
                        e,
                        "must be greater than or equal to `port`",
                    ));
                }
                for m in validation::port_num(i64::from(e)) {
                    errs.push(FieldError::invalid(&path.child("endPort"), e, m));
                }
            }
        }
        (Some(IntOrString::String(s)), end) => {
            if end.is_some() {
                errs.push(FieldError::invalid(
                    &path.child("endPort"),
                    end.unwrap_or(0),
                    "may not be specified when `port` is non-numeric",
                ));
            }
            errs.extend(validation::invalid_each(&path.child("port"), s, validation::port_name(s)));
        }
        (None, Some(e)) => {
            errs.push(FieldError::invalid(
                &path.child("endPort"),
                e,
                "may not be specified when `port` is not specified",
            ));
        }
        (None, None) => {}
    }
    errs
}

fn validate_peer(peer: &NetworkPolicyPeer, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut n = 0;
    if let Some(s) = &peer.pod_selector {
        n += 1;
        errs.extend(validate_label_selector(s, &path.child("podSelector")));
    }
    if let Some(s) = &peer.namespace_selector {
        n += 1;
        errs.extend(validate_label_selector(s, &path.child("namespaceSelector")));
    }
    if let Some(b) = &peer.ip_block {
        n += 1;
        let bp = path.child("ipBlock");
        if b.cidr.is_empty() {
            errs.push(FieldError::required(&bp.child("cidr"), ""));
        } else {
            errs.extend(validation::invalid_each(&bp.child("cidr"), &b.cidr, validation::cidr(&b.cidr)));
            for (i, e) in b.except.iter().flatten().enumerate() {
                let ep = bp.child("except").index(i);
                let msgs = validation::cidr(e);
                if !msgs.is_empty() {
                    errs.extend(validation::invalid_each(&ep, e, msgs));
                } else if !cidr_strictly_contains(&b.cidr, e) {
                    errs.push(FieldError::invalid(&ep, e, "must be a strict subset of `cidr`"));
                }
            }
        }
    }
    if n == 0 {
        errs.push(FieldError::required(path, "must specify a peer"));
    } else if peer.ip_block.is_some() && n > 1 {
        errs.push(FieldError::forbidden(path, "may not specify both ipBlock and another peer"));
    }
    errs
}

/// Whether `inner` is a strict subset of `outer` (both valid CIDRs of the same family).
fn cidr_strictly_contains(outer: &str, inner: &str) -> bool {
    let parse = |c: &str| -> Option<(u128, u8, bool)> {
        let (addr, bits) = c.split_once('/')?;
        let bits: u8 = bits.parse().ok()?;
        match validation::parse_ip(addr)? {
            std::net::IpAddr::V4(a) => Some((u128::from(u32::from(a)) << 96, bits, false)),
            std::net::IpAddr::V6(a) => Some((u128::from(a), bits, true)),
        }
    };
    let (Some((oa, ob, o6)), Some((ia, ib, i6))) = (parse(outer), parse(inner)) else { return false };
    if o6 != i6 || ib <= ob {
        return false;
    }
    let shift = if o6 { 128 - u32::from(ob) } else { 32 - u32::from(ob) + 96 };
    let mask = if shift >= 128 { 0 } else { u128::MAX << shift };
    oa & mask == ia & mask
}

// ------------------------------------------------------------------------------------------------
// Ingress
// ------------------------------------------------------------------------------------------------

const WILDCARD_MSG: &str = "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which \
must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. \
'*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

fn host(h: &str, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if validation::parse_ip(h).is_some() {
        errs.push(FieldError::invalid(path, h, "must be a DNS name, not an IP address"));
    }
    if h.contains('*') {
        let ok = h.strip_prefix("*.").is_some_and(|rest| validation::dns1123_subdomain(rest).is_empty());
        if !ok {
            errs.push(FieldError::invalid(path, h, WILDCARD_MSG));
        }
        return errs;
    }
    errs.extend(validation::invalid_each(path, h, validation::dns1123_subdomain(h)));
    errs
}

fn validate_backend(b: &IngressBackend, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    match (&b.resource, &b.service) {
        (Some(_), Some(_)) => errs.push(FieldError::invalid(path, "", "cannot set both resource and service backends")),
        (Some(r), None) => {
            let rp = path.child("resource");
            if r.kind.is_empty() {
                errs.push(FieldError::required(&rp.child("kind"), ""));
            }
            if r.name.is_empty() {
                errs.push(FieldError::required(&rp.child("name"), ""));
            }
            if r.api_group.as_deref().is_none_or(str::is_empty) {
                errs.push(FieldError::required(&rp.child("apiGroup"), ""));
            }
        }
        (None, Some(s)) => {
            let sp = path.child("service");
            if s.name.is_empty() {
                errs.push(FieldError::required(&sp.child("name"), ""));
            } else {
                errs.extend(validation::invalid_each(&sp.child("name"), &s.name, validation::dns1035_label(&s.name)));
            }
            let name = s.port.as_ref().and_then(|p| p.name.clone()).unwrap_or_default();
            let number = s.port.as_ref().and_then(|p| p.number).unwrap_or(0);
            match (name.is_empty(), number == 0) {
                (false, false) => errs.push(FieldError::invalid(path, "", "cannot set both port name & port number")),
                (false, true) => errs.extend(validation::invalid_each(
                    &sp.child("port").child("name"),
                    &name,
                    validation::port_name(&name),
                )),
                (true, false) => {
                    for m in validation::port_num(i64::from(number)) {
                        errs.push(FieldError::invalid(&sp.child("port").child("number"), number, m));
                    }
                }
                (true, true) => errs.push(FieldError::required(path, "port name or number is required")),
            }
        }
        (None, None) => errs.push(FieldError::invalid(path, "", "resource or service backend is required")),
    }
    errs
}

fn validate_path(p: &HTTPIngressPath, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let value = p.path.as_deref().unwrap_or_default();
    match p.path_type.as_str() {
        "" => return vec![FieldError::required(&path.child("pathType"), "pathType must be specified")],
        "Exact" | "Prefix" => {
            if !value.starts_with('/') {
                errs.push(FieldError::invalid(&path.child("path"), value, "must be an absolute path"));
            }
            for seq in ["//", "/./", "/../", "%2f", "%2F"] {
                if value.contains(seq) {
                    errs.push(FieldError::invalid(&path.child("path"), value, format!("must not contain '{seq}'")));
                }
            }
            for suffix in ["/..", "/."] {
                if value.ends_with(suffix) {
                    errs.push(FieldError::invalid(&path.child("path"), value, format!("cannot end with '{suffix}'")));
                }
            }
        }
        "ImplementationSpecific" => {
            if !value.is_empty() && !value.starts_with('/') {
                errs.push(FieldError::invalid(&path.child("path"), value, "must be an absolute path"));
            }
        }
        other => errs.push(FieldError::not_supported(
            &path.child("pathType"),
            other,
            &["Exact", "ImplementationSpecific", "Prefix"],
        )),
    }
    errs.extend(validate_backend(&p.backend, &path.child("backend")));
    errs
}

impl KindStrategy for Ingress {
    fn prepare_for_create(&mut self) {
        self.status = Some(IngressStatus { load_balancer: Some(Default::default()) });
    }

    fn validate(&self) -> ErrorList {
        let spec = self.spec.clone().unwrap_or_default();
        let p = Path::new("spec");
        let mut errs = ErrorList::new();
        let rules = spec.rules.as_deref().unwrap_or_default();
        if spec.default_backend.is_none() && rules.is_empty() {
            errs.push(FieldError::invalid(
                &p,
                Raw("[]networking.IngressRule(nil)".into()),
                "either `defaultBackend` or `rules` must be specified",
            ));
        }
        if let Some(b) = &spec.default_backend {
            errs.extend(validate_backend(b, &p.child("defaultBackend")));
        }
        for (i, r) in rules.iter().enumerate() {
            let rp = p.child("rules").index(i);
            if let Some(h) = r.host.as_deref().filter(|h| !h.is_empty()) {
                errs.extend(host(h, &rp.child("host")));
            }
            if let Some(http) = &r.http {
                let hp = rp.child("http");
                if http.paths.is_empty() {
                    errs.push(FieldError::required(&hp.child("paths"), ""));
                }
                for (j, path) in http.paths.iter().enumerate() {
                    errs.extend(validate_path(path, &hp.child("paths").index(j)));
                }
            }
        }
        for (i, t) in spec.tls.iter().flatten().enumerate() {
            for (j, h) in t.hosts.iter().flatten().enumerate() {
                errs.extend(host(h, &p.child("tls").index(i).child("hosts").index(j)));
            }
        }
        if let Some(c) = &spec.ingress_class_name {
            errs.extend(validation::invalid_each(&p.child("ingressClassName"), c, validation::dns1123_subdomain(c)));
        }
        errs
    }
}

impl KindStrategy for IngressClass {
    fn validate(&self) -> ErrorList {
        let controller = self.spec.as_ref().and_then(|s| s.controller.clone()).unwrap_or_default();
        let p = Path::new("spec").child("controller");
        let mut errs = ErrorList::new();
        if controller.is_empty() {
            errs.push(FieldError::required(&p, ""));
        } else if controller.len() > 250 {
            errs.push(FieldError::too_long(&p, 250));
        }
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let c = |x: &Self| x.spec.as_ref().and_then(|s| s.controller.clone());
        if c(self) != c(old) {
            return vec![FieldError::invalid(
                &Path::new("spec").child("controller"),
                c(self).unwrap_or_default(),
                validation::IMMUTABLE_MSG,
            )];
        }
        Vec::new()
    }
}

impl KindStrategy for ServiceCIDR {
    fn prepare_for_create(&mut self) {
        self.status = Some(ServiceCIDRStatus::default());
    }

    fn validate(&self) -> ErrorList {
        let cidrs = self.spec.as_ref().and_then(|s| s.cidrs.clone()).unwrap_or_default();
        let p = Path::new("spec").child("cidrs");
        let mut errs = ErrorList::new();
        if cidrs.is_empty() {
            errs.push(FieldError::required(&p, "at least one CIDR required"));
        }
        if cidrs.len() > 2 {
            errs.push(FieldError::invalid(&p, Raw(go_strings(Some(&cidrs))), "may only hold up to 2 values"));
        }
        for (i, c) in cidrs.iter().enumerate() {
            errs.extend(validation::invalid_each(&p.index(i), c, validation::cidr(c)));
        }
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let c = |x: &Self| x.spec.as_ref().and_then(|s| s.cidrs.clone()).unwrap_or_default();
        let (n, o) = (c(self), c(old));
        // A single-stack range may gain a second family; nothing else changes.
        if n != o && !(o.len() == 1 && n.len() == 2 && n[0] == o[0]) {
            return vec![FieldError::invalid(
                &Path::new("spec").child("cidrs"),
                Raw(go_strings(Some(&n))),
                validation::IMMUTABLE_MSG,
            )];
        }
        Vec::new()
    }
}

impl KindStrategy for IPAddress {
    /// IPv6 names contain ':'; the name is checked as an address in `validate`.
    fn name_rule() -> NameRule {
        NameRule::PathSegment
    }

    fn validate(&self) -> ErrorList {
        let mut errs = ErrorList::new();
        let name = self.metadata.name.clone().unwrap_or_default();
        if !name.is_empty() {
            match validation::parse_ip(&name) {
                None => errs.push(FieldError::invalid(
                    &Path::new("metadata").child("name"),
                    &name,
                    "must be a valid IP address",
                )),
                Some(ip) if ip.to_string() != name => errs.push(FieldError::invalid(
                    &Path::new("metadata").child("name"),
                    &name,
                    format!("must be in canonical form ({:?})", ip.to_string()),
                )),
                Some(_) => {}
            }
        }
        let pr = self.spec.as_ref().map(|s| &s.parent_ref);
        let pp = Path::new("spec").child("parentRef");
        match pr {
            None => errs.push(FieldError::required(&pp, "")),
            Some(r) => {
                if r.resource.is_empty() {
                    errs.push(FieldError::required(&pp.child("resource"), ""));
                }
                if r.name.is_empty() {
                    errs.push(FieldError::required(&pp.child("name"), ""));
                }
            }
        }
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let r = |x: &Self| x.spec.as_ref().map(|s| s.parent_ref.clone());
        if r(self) != r(old) {
            return vec![FieldError::invalid(
                &Path::new("spec").child("parentRef"),
                Raw("networking.ParentReference{...}".into()),
                validation::IMMUTABLE_MSG,
            )];
        }
        Vec::new()
    }
}
