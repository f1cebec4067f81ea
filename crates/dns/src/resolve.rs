//! The answer to one question, computed from an [`Index`] snapshot without I/O: the records
//! CoreDNS's `kubernetes` plugin serves (plugin/kubernetes: `parse.go`, `kubernetes.go`
//! `Records`/`findServices`/`findPods`, `reverse.go`, `handler.go`; plugin/backend_lookup.go
//! for how A/AAAA/SRV/CNAME/PTR/SOA records are put together), or "not ours: forward it".
//!
//! The grammar under the cluster zone (`parseRequest`), read right to left:
//! `[_port._proto. | endpoint.] service . namespace . (svc|pod) . zone`; one label more than
//! that, or a fourth label that is neither `svc` nor `pod`, is a name that does not exist.

use std::collections::HashSet;
use std::net::IpAddr;

use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::rdata::{A, AAAA, CNAME, PTR, SRV, TXT};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};

use crate::index::{Index, Port, ServiceKind};

/// The schema version `dns-version.<zone>` answers (CoreDNS's `DNSSchemaVersion`).
const DNS_SCHEMA_VERSION: &str = "1.1.0";
/// TTL of the `dns-version` record (fixed in CoreDNS and in the specification's example).
const DNS_VERSION_TTL: u32 = 28800;
/// Longest CNAME chain followed inside the zone (CoreDNS stops after 8 records).
const MAX_CNAME_CHAIN: usize = 7;

/// What to do with a question.
#[derive(Debug)]
pub(crate) enum Resolution {
    /// The cluster answers (authoritatively).
    Answer(Response),
    /// Not the cluster's: ask the upstream nameservers.
    Forward,
}

/// An authoritative response.
#[derive(Debug, PartialEq)]
pub(crate) struct Response {
    /// `NoError` (with answers, or empty for NODATA), `NXDomain`, `ServFail` (a miss before
    /// the caches have synced) or `Refused` (zone transfers).
    pub(crate) rcode: ResponseCode,
    pub(crate) answers: Vec<Record>,
    /// The zone's SOA in negative responses, as CoreDNS's `BackendError`.
    pub(crate) authorities: Vec<Record>,
    pub(crate) additionals: Vec<Record>,
    /// The answer ends in a CNAME to a name outside the zone (an ExternalName Service): the
    /// server resolves the target upstream and appends those records.
    pub(crate) chase: Option<Box<Chase>>,
}

/// A CNAME target to resolve upstream.
#[derive(Debug, PartialEq)]
pub(crate) struct Chase {
    pub(crate) target: Name,
    pub(crate) qtype: RecordType,
    /// What the response becomes if the upstream lookup fails: CoreDNS then drops the CNAME
    /// and answers NODATA.
    pub(crate) soa: Record,
}

impl Response {
    fn records(answers: Vec<Record>, additionals: Vec<Record>) -> Response {
        Response { rcode: ResponseCode::NoError, answers, authorities: Vec::new(), additionals, chase: None }
    }

    fn nodata(ix: &Index) -> Response {
        Response {
            rcode: ResponseCode::NoError,
            answers: Vec::new(),
            authorities: vec![soa(ix)],
            additionals: Vec::new(),
            chase: None,
        }
    }

    /// The name does not exist: NXDOMAIN, or SERVFAIL while the caches have not synced (the
    /// name may exist; a client must not cache the miss).
    fn nxdomain(ix: &Index) -> Response {
        let rcode = if ix.synced { ResponseCode::NXDomain } else { ResponseCode::ServFail };
        Response { rcode, answers: Vec::new(), authorities: vec![soa(ix)], additionals: Vec::new(), chase: None }
    }
}

/// Resolve `qname` (in the case the client sent it; owner names keep it) for `qtype`.
pub(crate) fn resolve(ix: &Index, qname: &Name, qtype: RecordType) -> Resolution {
    let mut owner = qname.clone();
    owner.set_fqdn(true);
    let lower = owner.to_lowercase();
    if ix.zone.zone_of(&lower) {
        return Resolution::Answer(cluster(ix, &owner, &lower, qtype));
    }
    // The reverse zones fall through (`fallthrough in-addr.arpa ip6.arpa`): only PTRs of
    // addresses the cluster knows are answered here.
    if qtype == RecordType::PTR
        && let Some(ip) = reverse_ip(&lower)
    {
        let answers = ptr(ix, &owner, ip);
        if !answers.is_empty() {
            return Resolution::Answer(Response::records(answers, Vec::new()));
        }
    }
    Resolution::Forward
}

/// A question under the cluster zone (CoreDNS's `ServeDNS` switch on the type).
fn cluster(ix: &Index, owner: &Name, lower: &Name, qtype: RecordType) -> Response {
    let labels = relative(ix, lower);
    match qtype {
        RecordType::AXFR | RecordType::IXFR => Response {
            rcode: ResponseCode::Refused,
            answers: Vec::new(),
            authorities: Vec::new(),
            additionals: Vec::new(),
            chase: None,
        },
        // SOA exists at the apex only; below it every name answers NODATA, existing or not.
        RecordType::SOA if labels.is_empty() => Response::records(vec![soa(ix)], Vec::new()),
        RecordType::SOA => Response::nodata(ix),
        // CoreDNS answers the apex NS with `ns.dns.<zone>` and its own pod's addresses, which a
        // host process does not have: NODATA.
        RecordType::NS if labels.is_empty() => Response::nodata(ix),
        RecordType::TXT => {
            if labels == ["dns-version"] {
                let txt = RData::TXT(TXT::new(vec![DNS_SCHEMA_VERSION.to_string()]));
                return Response::records(vec![Record::from_rdata(owner.clone(), DNS_VERSION_TTL, txt)], Vec::new());
            }
            // CoreDNS: NODATA when the name has records of another type, else NXDOMAIN (so an
            // existing namespace or the apex, which have none, read as NXDOMAIN for TXT).
            match lookup(ix, &labels) {
                Ok(entries) if !entries.is_empty() => Response::nodata(ix),
                _ => Response::nxdomain(ix),
            }
        }
        RecordType::A | RecordType::AAAA => match address(ix, owner, lower, qtype, &[]) {
            Err(NameError) => Response::nxdomain(ix),
            Ok((answers, _)) if answers.is_empty() => Response::nodata(ix),
            Ok((answers, chase)) => Response {
                chase: chase.map(|target| Box::new(Chase { target, qtype, soa: soa(ix) })),
                ..Response::records(answers, Vec::new())
            },
        },
        RecordType::SRV => srv(ix, owner, &labels),
        RecordType::CNAME => match lookup(ix, &labels) {
            Err(NameError) => Response::nxdomain(ix),
            Ok(entries) => match entries.into_iter().next() {
                Some(Entry { host: Host::Name(target), .. }) => Response::records(
                    vec![Record::from_rdata(owner.clone(), ix.ttl, RData::CNAME(CNAME(target)))],
                    Vec::new(),
                ),
                _ => Response::nodata(ix),
            },
        },
        // Every other type (MX, PTR inside the zone, NS below the apex, …): the name exists or
        // not, and has no such records.
        _ => match lookup(ix, &labels) {
            Err(NameError) => Response::nxdomain(ix),
            Ok(_) => Response::nodata(ix),
        },
    }
}

/// A label that is not UTF-8: it names nothing in the index (Kubernetes names are ASCII), so
/// any one stand-in that matches no name will do.
const NOT_UTF8: &str = "\u{fffd}";

/// The labels of `lower` left of the zone, left to right, borrowed from it.
fn relative<'a>(ix: &Index, lower: &'a Name) -> Vec<&'a str> {
    let keep = lower.num_labels().saturating_sub(ix.zone.num_labels());
    lower.iter().take(usize::from(keep)).map(|l| std::str::from_utf8(l).unwrap_or(NOT_UTF8)).collect()
}

/// `<labels>.<zone>`; `None` when that is no valid name (a label over 63 bytes).
fn name_in(ix: &Index, labels: &str) -> Option<Name> {
    Name::from_ascii(format!("{labels}.{}", ix.zone.to_ascii())).ok()
}

/// The zone's SOA, built with the index.
fn soa(ix: &Index) -> Record {
    ix.soa.clone()
}

/// The name does not exist.
#[derive(Debug, PartialEq)]
struct NameError;

/// What a name resolves to: an address, or (ExternalName) another name.
#[derive(Clone, Debug, PartialEq)]
enum Host {
    Ip(IpAddr),
    Name(Name),
}

/// One result of a lookup (CoreDNS's `msg.Service`).
#[derive(Clone, Debug)]
struct Entry<'a> {
    host: Host,
    /// The port, for SRV; `None` for none (no SRV record).
    port: Option<u16>,
    /// The name this entry is known by: the SRV target, and the owner of its address in the
    /// additional section (`<svc>.<ns>.svc.<zone>` or `<hostname>.<svc>.<ns>.svc.<zone>`).
    key: Key<'a>,
}

/// An entry's name, built only when a record needs it (SRV targets and their addresses): for
/// a Service's own address, building the name would cost more than the rest of the answer.
#[derive(Clone, Debug)]
enum Key<'a> {
    /// `<name>.<namespace>.svc.<zone>`, for the labels of a Service that exists (so the name
    /// is valid: it ends the question's name).
    Service { name: &'a str, namespace: &'a str },
    /// Built already.
    Name(Name),
}

impl Key<'_> {
    fn name(&self, ix: &Index) -> Option<Name> {
        match self {
            Key::Service { name, namespace } => name_in(ix, &format!("{name}.{namespace}.svc")),
            Key::Name(name) => Some(name.clone()),
        }
    }
}

/// Parse the labels below the zone and find what they name (`Records`). `Ok(vec![])` is a
/// name that exists with nothing at it (the apex, `svc.<zone>`, `<ns>.svc.<zone>`).
fn lookup<'a>(ix: &Index, labels: &[&'a str]) -> Result<Vec<Entry<'a>>, NameError> {
    let n = labels.len();
    if n == 0 || (n == 1 && (labels[0] == "svc" || labels[0] == "pod")) {
        return Ok(Vec::new());
    }
    let kind = labels[n - 1];
    if kind != "svc" && kind != "pod" {
        return Err(NameError);
    }
    let namespace = labels[n - 2];
    if !ix.namespaces.contains(namespace) {
        return Err(NameError);
    }
    if n == 2 {
        return Ok(Vec::new());
    }
    let name = labels[n - 3];
    let (endpoint, port, protocol) = match n - 3 {
        0 => (None, "", ""),
        1 => (Some(labels[0]), "", ""),
        2 => (None, strip_underscore(labels[0]), strip_underscore(labels[1])),
        _ => return Err(NameError),
    };
    if kind == "pod" {
        // The pod name is all that matters; labels left of it are ignored, as in CoreDNS.
        return pod(ix, namespace, name);
    }
    services(ix, namespace, name, endpoint, port, protocol)
}

fn strip_underscore(label: &str) -> &str {
    label.strip_prefix('_').unwrap_or(label)
}

/// `pods insecure`: `1-2-3-4.<ns>.pod.<zone>` is 1.2.3.4 without looking for the pod;
/// `fd00--1` is fd00::1.
fn pod<'a>(ix: &Index, namespace: &str, name: &str) -> Result<Vec<Entry<'a>>, NameError> {
    let text = if name.matches('-').count() == 3 && !name.contains("--") {
        name.replace('-', ".")
    } else {
        name.replace('-', ":")
    };
    let ip: IpAddr = text.parse().map_err(|_| NameError)?;
    let key = name_in(ix, &format!("{name}.{namespace}.pod")).ok_or(NameError)?;
    Ok(vec![Entry { host: Host::Ip(ip), port: None, key: Key::Name(key) }])
}

/// An empty query port or protocol matches any (CoreDNS's `matchPortAndProtocol`).
fn port_matches(port: &str, protocol: &str, p: &Port) -> bool {
    (port.is_empty() || port == p.name) && (protocol.is_empty() || protocol == p.protocol)
}

/// `findServices`: the entries of Service `name` for an (optional) endpoint hostname and
/// port/protocol. No match at all is a name that does not exist.
fn services<'a>(
    ix: &Index,
    namespace: &'a str,
    name: &'a str,
    endpoint: Option<&str>,
    port: &str,
    protocol: &str,
) -> Result<Vec<Entry<'a>>, NameError> {
    let key = (namespace.to_string(), name.to_string());
    let svc = ix.services.get(&key).ok_or(NameError)?;
    let svc_name = Key::Service { name, namespace };
    match &svc.kind {
        ServiceKind::ExternalName(target) => {
            // No endpoints, and no port/protocol names under an ExternalName.
            if endpoint.is_some() || !port.is_empty() || !protocol.is_empty() {
                return Err(NameError);
            }
            Ok(vec![Entry { host: Host::Name(target.clone()), port: None, key: svc_name }])
        }
        ServiceKind::ClusterIp(ips) if endpoint.is_none() => {
            let mut found = false;
            let mut entries = Vec::new();
            for p in svc.ports.iter().filter(|p| port_matches(port, protocol, p)) {
                found = true;
                entries.extend(ips.iter().map(|ip| Entry { host: Host::Ip(*ip), port: p.port, key: svc_name.clone() }));
            }
            if found { Ok(entries) } else { Err(NameError) }
        }
        // A headless Service's names, and endpoint names of any Service, are its published
        // endpoint addresses.
        ServiceKind::Headless | ServiceKind::ClusterIp(_) => {
            let mut entries = Vec::new();
            for subset in ix.endpoints.get(&key).into_iter().flatten() {
                for address in &subset.addresses {
                    if endpoint.is_some_and(|e| e != address.hostname) {
                        continue;
                    }
                    let Some(key) = name_in(ix, &format!("{}.{name}.{namespace}.svc", address.hostname)) else {
                        continue;
                    };
                    for p in subset.ports.iter().filter(|p| port_matches(port, protocol, p)) {
                        entries.push(Entry { host: Host::Ip(address.ip), port: p.port, key: Key::Name(key.clone()) });
                    }
                }
            }
            // No ready endpoint: the name does not exist (the specification says NXDOMAIN).
            if entries.is_empty() { Err(NameError) } else { Ok(entries) }
        }
    }
}

/// A or AAAA records for `owner` (plugin/backend_lookup.go `A`/`AAAA`), following an
/// ExternalName's CNAME inside the zone and handing one that leaves it to the caller.
/// `chain` holds the names already on the CNAME chain.
fn address(
    ix: &Index,
    owner: &Name,
    lower: &Name,
    qtype: RecordType,
    chain: &[Name],
) -> Result<(Vec<Record>, Option<Name>), NameError> {
    let entries = lookup(ix, &relative(ix, lower))?;
    let mut records = Vec::new();
    let mut seen = HashSet::new();
    let mut chase = None;
    for entry in entries {
        match entry.host {
            Host::Ip(ip) => {
                let data = match (qtype, ip) {
                    (RecordType::A, IpAddr::V4(v4)) => RData::A(A(v4)),
                    (RecordType::AAAA, IpAddr::V6(v6)) => RData::AAAA(AAAA(v6)),
                    _ => continue,
                };
                if seen.insert(ip) {
                    records.push(Record::from_rdata(owner.clone(), ix.ttl, data));
                }
            }
            Host::Name(target) => {
                let target_lower = target.to_lowercase();
                // `x CNAME x` (or a name below x) loops; so would a name already on the chain.
                if lower.zone_of(&target_lower) || chain.len() > MAX_CNAME_CHAIN || chain.contains(&target_lower) {
                    continue;
                }
                let cname = Record::from_rdata(owner.clone(), ix.ttl, RData::CNAME(CNAME(target.clone())));
                if ix.zone.zone_of(&target_lower) {
                    let mut next_chain = chain.to_vec();
                    next_chain.push(lower.clone());
                    // Inside the zone: the CNAME only with what it leads to.
                    if let Ok((next, next_chase)) = address(ix, &target, &target_lower, qtype, &next_chain)
                        && !next.is_empty()
                    {
                        records.push(cname);
                        records.extend(next);
                        chase = chase.or(next_chase);
                    }
                } else {
                    records.push(cname);
                    chase = Some(target);
                }
            }
        }
    }
    Ok((records, chase))
}

/// SRV records (plugin/backend_lookup.go `SRV`): priority 0, the weight split evenly (100/n,
/// at least 1), targets named by the entry, their addresses in the additional section.
/// ExternalName entries have no SRV.
fn srv(ix: &Index, owner: &Name, labels: &[&str]) -> Response {
    let entries: Vec<Entry> = match lookup(ix, labels) {
        Err(NameError) => return Response::nxdomain(ix),
        Ok(entries) => entries.into_iter().filter(|e| matches!(e.host, Host::Ip(_))).collect(),
    };
    let weight = srv_weight(entries.len());
    let mut answers = Vec::new();
    let mut additionals = Vec::new();
    let mut seen_srv = HashSet::new();
    let mut seen_address = HashSet::new();
    for entry in entries {
        let (Host::Ip(ip), Some(port)) = (&entry.host, entry.port) else { continue };
        let Some(key) = entry.key.name(ix) else { continue };
        if seen_srv.insert((key.clone(), port)) {
            let data = RData::SRV(SRV::new(0, weight, port, key.clone()));
            answers.push(Record::from_rdata(owner.clone(), ix.ttl, data));
        }
        if seen_address.insert((key.clone(), *ip)) {
            let data = match ip {
                IpAddr::V4(v4) => RData::A(A(*v4)),
                IpAddr::V6(v6) => RData::AAAA(AAAA(*v6)),
            };
            additionals.push(Record::from_rdata(key, ix.ttl, data));
        }
    }
    if answers.is_empty() { Response::nodata(ix) } else { Response::records(answers, additionals) }
}

/// CoreDNS: every entry weighs 100 within its priority (all are 0), normalized to 100 in
/// total and floored.
fn srv_weight(entries: usize) -> u16 {
    if entries == 0 {
        return 0;
    }
    let share = 100.0 / (100.0 * entries as f64) * 100.0;
    (share.floor() as u16).max(1)
}

/// The address of a full-length `in-addr.arpa.`/`ip6.arpa.` name.
fn reverse_ip(lower: &Name) -> Option<IpAddr> {
    let net = lower.parse_arpa_name().ok()?;
    (net.prefix_len() == net.max_prefix_len()).then(|| net.addr())
}

/// PTR records for `ip` (plugin/kubernetes/reverse.go): the Service with that ClusterIP, or
/// else every published endpoint with that address, as `<hostname>.<svc>.<ns>.svc.<zone>`.
fn ptr(ix: &Index, owner: &Name, ip: IpAddr) -> Vec<Record> {
    let ptr = |target: Name| Record::from_rdata(owner.clone(), ix.ttl, RData::PTR(PTR(target)));
    if let Some((namespace, name)) = ix.service_ips.get(&ip)
        && let Some(target) = name_in(ix, &format!("{name}.{namespace}.svc"))
    {
        return vec![ptr(target)];
    }
    let mut seen = HashSet::new();
    let mut records = Vec::new();
    for ((namespace, service), hostname) in ix.endpoint_ips.get(&ip).into_iter().flatten() {
        if let Some(target) = name_in(ix, &format!("{hostname}.{service}.{namespace}.svc"))
            && seen.insert(target.clone())
        {
            records.push(ptr(target));
        }
    }
    records
}

#[cfg(test)]
mod tests;
