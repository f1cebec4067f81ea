//! Strategies for discovery.k8s.io/v1 kinds: EndpointSlices.

use std::collections::BTreeSet;

use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::field::{ErrorList, FieldError, Path};
use crate::strategy::KindStrategy;
use crate::strategy::common::{default_str, enum_value};
use crate::validation;

/// Upstream's `maxEndpoints`, `maxPorts` and `maxAddresses`.
const MAX_ENDPOINTS: usize = 1000;
const MAX_PORTS: usize = 20000;
const MAX_ADDRESSES: usize = 100;

impl KindStrategy for EndpointSlice {
    fn default(&mut self) {
        for p in self.ports.iter_mut().flatten() {
            if p.name.is_none() {
                p.name = Some(String::new());
            }
            default_str(&mut p.protocol, "TCP");
        }
    }

    fn validate(&self) -> ErrorList {
        let mut errs = enum_value(Some(&self.address_type), &["FQDN", "IPv4", "IPv6"], true, &Path::new("addressType"));
        let ep = Path::new("endpoints");
        if self.endpoints.len() > MAX_ENDPOINTS {
            errs.push(FieldError::too_many(&ep, self.endpoints.len(), MAX_ENDPOINTS));
        }
        for (i, e) in self.endpoints.iter().enumerate() {
            let p = ep.index(i);
            let ap = p.child("addresses");
            if e.addresses.is_empty() {
                errs.push(FieldError::required(&ap, "must contain at least 1 address"));
            } else if e.addresses.len() > MAX_ADDRESSES {
                errs.push(FieldError::too_many(&ap, e.addresses.len(), MAX_ADDRESSES));
            }
            for (j, a) in e.addresses.iter().enumerate() {
                let p = ap.index(j);
                let family_ok = |v6: bool| validation::parse_ip(a).is_some_and(|ip| ip.is_ipv6() == v6);
                match self.address_type.as_str() {
                    "IPv4" if !family_ok(false) => {
                        errs.push(FieldError::invalid(&p, a, "must be a valid IPv4 address"))
                    }
                    "IPv6" if !family_ok(true) => errs.push(FieldError::invalid(&p, a, "must be a valid IPv6 address")),
                    "FQDN" => errs.extend(validation::invalid_each(&p, a, validation::dns1123_subdomain(a))),
                    _ => {}
                }
            }
            if let Some(h) = e.hostname.as_deref() {
                errs.extend(validation::invalid_each(&p.child("hostname"), h, validation::dns1123_label(h)));
            }
            if let Some(n) = e.node_name.as_deref() {
                errs.extend(validation::invalid_each(&p.child("nodeName"), n, validation::dns1123_subdomain(n)));
            }
        }
        let pp = Path::new("ports");
        let ports = self.ports.as_deref().unwrap_or_default();
        if ports.len() > MAX_PORTS {
            errs.push(FieldError::too_many(&pp, ports.len(), MAX_PORTS));
        }
        let mut names = BTreeSet::new();
        for (i, port) in ports.iter().enumerate() {
            let p = pp.index(i);
            let name = port.name.clone().unwrap_or_default();
            if !name.is_empty() {
                errs.extend(validation::invalid_each(&p.child("name"), &name, validation::dns1123_label(&name)));
            }
            if !names.insert(name.clone()) {
                errs.push(FieldError::duplicate(&p.child("name"), &name));
            }
            if let Some(n) = port.port {
                for m in validation::port_num(i64::from(n)) {
                    errs.push(FieldError::invalid(&p.child("port"), n, m));
                }
            }
            errs.extend(enum_value(port.protocol.as_deref(), &["SCTP", "TCP", "UDP"], true, &p.child("protocol")));
            if let Some(ap) = &port.app_protocol {
                errs.extend(validation::invalid_each(&p.child("appProtocol"), ap, validation::qualified_name(ap)));
            }
        }
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        if self.address_type != old.address_type {
            return vec![FieldError::invalid(&Path::new("addressType"), &self.address_type, validation::IMMUTABLE_MSG)];
        }
        Vec::new()
    }
}
