//! A container's environment, as upstream's kubelet builds it (`makeEnvironmentVariables`):
//! service links, `envFrom` ConfigMaps and Secrets, then `env` entries in order, with
//! `$(VAR)` references expanded against what is already defined.
//!
//! The pod worker calls [`container_env`] right before `CreateContainer`; an [`EnvError`] becomes
//! the container's `CreateContainerConfigError` message, so its text is upstream's word for word.
//! The downward-API helpers here ([`field_value`], [`resource_value`]) are shared with the
//! `downwardAPI` and `projected` volumes.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Container, Pod, ResourceFieldSelector, Service};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use skiff_api::field::go_quote;

use crate::volumes::{ObjectSource, SourceError};

#[cfg(test)]
mod tests;

/// Why a container's environment could not be built. The `Display` text is upstream's message.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// A referenced ConfigMap or Secret does not exist and the reference is not optional.
    /// `kind` is `configmap` or `secret`, as upstream's object cache words it.
    #[error("{kind} \"{name}\" not found")]
    NotFound { kind: &'static str, name: String },
    /// A `configMapKeyRef`/`secretKeyRef` names a key the object lacks.
    #[error("couldn't find key {key} in {kind} {namespace}/{name}")]
    MissingKey { kind: &'static str, namespace: String, name: String, key: String },
    /// A `fieldRef` or `resourceFieldRef` could not be resolved.
    #[error("{0}")]
    Field(String),
    /// Reading a ConfigMap, Secret or the Services from the API failed.
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// What the kubelet knows about the node and the pod that the pod spec does not say.
#[derive(Clone, Debug, Default)]
pub struct EnvContext {
    /// `spec.nodeName` as the kubelet knows it (the pod's copy is used when set).
    pub node_name: String,
    /// The node's addresses, preferred family first (`status.hostIP` is the first).
    pub host_ips: Vec<String>,
    /// The pod's addresses, preferred family first (empty before the sandbox has them).
    pub pod_ips: Vec<String>,
    /// Service link variables, from [`service_env`].
    pub service_env: Vec<(String, String)>,
    /// The node's allocatable resources: what `resourceFieldRef` reports for an unset limit.
    pub node_allocatable: BTreeMap<String, Quantity>,
}

/// A container's environment and what upstream would have recorded as warning events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerEnv {
    /// `NAME`, `value` pairs: `envFrom` and `env` in declaration order (a later definition
    /// replaces an earlier one in place), then the service variables not otherwise defined.
    pub vars: Vec<(String, String)>,
    /// Messages for `InvalidEnvironmentVariableNames` warning events (skipped `envFrom` keys).
    pub warnings: Vec<String>,
}

/// Reason of the warning event carrying [`ContainerEnv::warnings`].
pub const INVALID_ENV_NAMES_REASON: &str = "InvalidEnvironmentVariableNames";

/// Build the environment of `container` in `pod`.
pub async fn container_env(
    pod: &Pod,
    container: &Container,
    source: &dyn ObjectSource,
    ctx: &EnvContext,
) -> Result<ContainerEnv, EnvError> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut env = OrderedEnv::default();
    let mut warnings = Vec::new();
    // Each object is read once per container, as upstream caches them for the call.
    let mut config_maps: HashMap<String, Option<BTreeMap<String, String>>> = HashMap::new();
    let mut secrets: HashMap<String, Option<BTreeMap<String, String>>> = HashMap::new();

    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.as_deref().unwrap_or("");
        let (kind, name, optional, data) = if let Some(r) = &from.config_map_ref {
            let data = config_map_data(source, &mut config_maps, namespace, &r.name).await?;
            ("configMap", &r.name, r.optional.unwrap_or(false), data)
        } else if let Some(r) = &from.secret_ref {
            let data = secret_data(source, &mut secrets, namespace, &r.name).await?;
            ("secret", &r.name, r.optional.unwrap_or(false), data)
        } else {
            continue;
        };
        let Some(data) = data else {
            if optional {
                continue;
            }
            let kind = if kind == "secret" { "secret" } else { "configmap" };
            return Err(EnvError::NotFound { kind, name: name.clone() });
        };
        let mut invalid = Vec::new();
        for (k, v) in data {
            let key = format!("{prefix}{k}");
            if is_env_var_name(&key) {
                env.set(key, v);
            } else {
                invalid.push(key);
            }
        }
        if !invalid.is_empty() {
            invalid.sort();
            warnings.push(format!(
                "Keys [{}] from the EnvFrom {kind} {namespace}/{name} were skipped since they are considered invalid \
                 environment variable names.",
                invalid.join(", ")
            ));
        }
    }

    let service_env: HashMap<&str, &str> = ctx.service_env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    for var in container.env.iter().flatten() {
        let literal = var.value.as_deref().unwrap_or("");
        let value = if !literal.is_empty() {
            expand(literal, |name| env.get(name).or_else(|| service_env.get(name).copied()).map(str::to_string))
        } else if let Some(from) = &var.value_from {
            if let Some(f) = &from.field_ref {
                field_value(pod, f.api_version.as_deref(), &f.field_path, Some(ctx)).map_err(EnvError::Field)?
            } else if let Some(r) = &from.resource_field_ref {
                resource_value(pod, container, r, &ctx.node_allocatable).map_err(EnvError::Field)?
            } else if let Some(r) = &from.config_map_key_ref {
                let data = config_map_data(source, &mut config_maps, namespace, &r.name).await?;
                match key_ref(
                    data,
                    ("configmap", "ConfigMap"),
                    namespace,
                    &r.name,
                    &r.key,
                    r.optional.unwrap_or(false),
                )? {
                    Some(v) => v,
                    None => continue,
                }
            } else if let Some(r) = &from.secret_key_ref {
                let data = secret_data(source, &mut secrets, namespace, &r.name).await?;
                match key_ref(data, ("secret", "Secret"), namespace, &r.name, &r.key, r.optional.unwrap_or(false))? {
                    Some(v) => v,
                    None => continue,
                }
            } else {
                String::new()
            }
        } else {
            String::new()
        };
        env.set(var.name.clone(), value);
    }

    let mut service_rest: Vec<(String, String)> =
        ctx.service_env.iter().filter(|(k, _)| env.get(k).is_none()).cloned().collect();
    service_rest.sort();
    let mut vars = env.vars;
    vars.extend(service_rest);
    Ok(ContainerEnv { vars, warnings })
}

/// Insertion-ordered variables; redefining one keeps its first position, like a map would keep
/// only the last value.
#[derive(Default)]
struct OrderedEnv {
    vars: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl OrderedEnv {
    fn set(&mut self, name: String, value: String) {
        match self.index.get(&name) {
            Some(&i) => self.vars[i].1 = value,
            None => {
                self.index.insert(name.clone(), self.vars.len());
                self.vars.push((name, value));
            }
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.index.get(name).map(|&i| self.vars[i].1.as_str())
    }
}

/// The value of `key` in a ConfigMap's or Secret's `data` (`None`: the object is missing);
/// `Ok(None)` when an optional reference finds nothing. `kind` is how upstream names the
/// kind in its two messages.
fn key_ref(
    data: Option<BTreeMap<String, String>>,
    kind: (&'static str, &'static str),
    namespace: &str,
    name: &str,
    key: &str,
    optional: bool,
) -> Result<Option<String>, EnvError> {
    let Some(data) = data else {
        return if optional { Ok(None) } else { Err(EnvError::NotFound { kind: kind.0, name: name.to_string() }) };
    };
    match data.get(key) {
        Some(v) => Ok(Some(v.clone())),
        None if optional => Ok(None),
        None => Err(EnvError::MissingKey {
            kind: kind.1,
            namespace: namespace.to_string(),
            name: name.to_string(),
            key: key.to_string(),
        }),
    }
}

async fn config_map_data(
    source: &dyn ObjectSource,
    cache: &mut HashMap<String, Option<BTreeMap<String, String>>>,
    namespace: &str,
    name: &str,
) -> Result<Option<BTreeMap<String, String>>, EnvError> {
    if let Some(d) = cache.get(name) {
        return Ok(d.clone());
    }
    // Environment variables only see `data`, not `binaryData`, as upstream.
    let data = source.config_map(namespace, name).await?.map(|cm| cm.data.unwrap_or_default());
    cache.insert(name.to_string(), data.clone());
    Ok(data)
}

async fn secret_data(
    source: &dyn ObjectSource,
    cache: &mut HashMap<String, Option<BTreeMap<String, String>>>,
    namespace: &str,
    name: &str,
) -> Result<Option<BTreeMap<String, String>>, EnvError> {
    if let Some(d) = cache.get(name) {
        return Ok(d.clone());
    }
    let data = source.secret(namespace, name).await?.map(|s| {
        s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned())).collect()
    });
    cache.insert(name.to_string(), data.clone());
    Ok(data)
}

/// Whether `name` may be an environment variable name. Kubernetes 1.33 relaxes the rule
/// (`RelaxedEnvironmentVariableValidation`, on by default) to any printable ASCII except `=`.
fn is_env_var_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b'=')
}

/// Upstream's `$(VAR)` expansion: `$(NAME)` becomes the looked-up value or stays verbatim when
/// `lookup` has none, `$$` is an escaped `$`, a `$` before anything else (or at the end) is
/// kept, and an unterminated `$(` is kept as is.
pub fn expand(input: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        match after.chars().next() {
            None => {
                out.push('$');
                rest = after;
            }
            Some('$') => {
                out.push('$');
                rest = &after[1..];
            }
            Some('(') => match after.find(')') {
                Some(end) => {
                    let name = &after[1..end];
                    match lookup(name) {
                        Some(v) => out.push_str(&v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &after[end + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = &after[1..];
                }
            },
            Some(c) => {
                out.push('$');
                out.push(c);
                rest = &after[c.len_utf8()..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Service link variables a pod in `namespace` sees, like upstream's `getServiceEnvVarMap` and
/// `envvars.FromServices`: the `kubernetes` Service of `default` always; the other Services of
/// the pod's namespace when `enable_service_links`. `services` may hold Services of any namespace;
/// those without a cluster IP (headless, ExternalName) are skipped. Sorted by name.
pub fn service_env(services: &[Service], namespace: &str, enable_service_links: bool) -> Vec<(String, String)> {
    let mut chosen: BTreeMap<&str, &Service> = BTreeMap::new();
    for svc in services {
        let Some(spec) = &svc.spec else { continue };
        let ip = spec.cluster_ip.as_deref().unwrap_or("");
        if ip.is_empty() || ip == "None" {
            continue;
        }
        let name = svc.metadata.name.as_deref().unwrap_or("");
        let ns = svc.metadata.namespace.as_deref().unwrap_or("");
        if ns == "default" && name == "kubernetes" {
            // As upstream, a same-named Service of the pod's own namespace takes precedence.
            chosen.entry(name).or_insert(svc);
        } else if ns == namespace && enable_service_links {
            chosen.insert(name, svc);
        }
    }
    let mut vars = BTreeMap::new();
    for (name, svc) in chosen {
        let Some(spec) = &svc.spec else { continue };
        let ip = spec.cluster_ip.as_deref().unwrap_or("");
        let ports = spec.ports.as_deref().unwrap_or(&[]);
        let Some(first) = ports.first() else { continue };
        let prefix = service_var_name(name);
        vars.insert(format!("{prefix}_SERVICE_HOST"), ip.to_string());
        vars.insert(format!("{prefix}_SERVICE_PORT"), first.port.to_string());
        for p in ports {
            if let Some(pn) = p.name.as_deref().filter(|n| !n.is_empty()) {
                vars.insert(format!("{prefix}_SERVICE_PORT_{}", service_var_name(pn)), p.port.to_string());
            }
        }
        for (i, p) in ports.iter().enumerate() {
            let proto = p.protocol.as_deref().filter(|s| !s.is_empty()).unwrap_or("TCP");
            let lower = proto.to_ascii_lowercase();
            let url = format!("{lower}://{ip}:{}", p.port);
            if i == 0 {
                vars.insert(format!("{prefix}_PORT"), url.clone());
            }
            let pp = format!("{prefix}_PORT_{}_{}", p.port, proto.to_ascii_uppercase());
            vars.insert(format!("{pp}_PROTO"), lower);
            vars.insert(format!("{pp}_PORT"), p.port.to_string());
            vars.insert(format!("{pp}_ADDR"), ip.to_string());
            vars.insert(pp, url);
        }
    }
    vars.into_iter().collect()
}

fn service_var_name(name: &str) -> String {
    name.replace('-', "_").to_ascii_uppercase()
}

/// The service link variables of `pod`, read through `source` (the pod's namespace and
/// `default`), honouring `enableServiceLinks` (default true).
pub async fn service_env_for(pod: &Pod, source: &dyn ObjectSource) -> Result<Vec<(String, String)>, SourceError> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let enable = pod.spec.as_ref().and_then(|s| s.enable_service_links).unwrap_or(true);
    let mut services = source.services("default").await?;
    if enable && namespace != "default" {
        services.extend(source.services(namespace).await?);
    }
    Ok(service_env(&services, namespace, enable))
}

/// The value of a downward-API `fieldRef`. Without `ctx` (volumes) only `metadata.*` paths are
/// allowed, as upstream's volume plugin; with it, the node and pod addresses too. `Err` is the
/// message upstream reports.
pub(crate) fn field_value(
    pod: &Pod,
    api_version: Option<&str>,
    path: &str,
    ctx: Option<&EnvContext>,
) -> Result<String, String> {
    if let Some(v) = api_version.filter(|v| !v.is_empty() && *v != "v1") {
        return Err(format!("unsupported pod version: {v}"));
    }
    let meta = &pod.metadata;
    if let Some((field, key)) = subscript(path) {
        let map = match field {
            "metadata.labels" => &meta.labels,
            "metadata.annotations" => &meta.annotations,
            _ => return Err(format!("field label not supported: {path}")),
        };
        return Ok(map.as_ref().and_then(|m| m.get(key)).cloned().unwrap_or_default());
    }
    let empty = String::new();
    match path {
        "metadata.name" => return Ok(meta.name.clone().unwrap_or_default()),
        "metadata.namespace" => return Ok(meta.namespace.clone().unwrap_or_default()),
        "metadata.uid" => return Ok(meta.uid.clone().unwrap_or_default()),
        "metadata.labels" => return Ok(format_map(meta.labels.as_ref())),
        "metadata.annotations" => return Ok(format_map(meta.annotations.as_ref())),
        _ => {}
    }
    let Some(ctx) = ctx else { return Err(format!("unsupported fieldPath: {path}")) };
    let spec = pod.spec.as_ref();
    Ok(match path {
        "spec.nodeName" => {
            spec.and_then(|s| s.node_name.clone()).filter(|n| !n.is_empty()).unwrap_or_else(|| ctx.node_name.clone())
        }
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()).unwrap_or_default(),
        "status.hostIP" => ctx.host_ips.first().unwrap_or(&empty).clone(),
        "status.hostIPs" => ctx.host_ips.join(","),
        "status.podIP" => ctx.pod_ips.first().unwrap_or(&empty).clone(),
        "status.podIPs" => ctx.pod_ips.join(","),
        _ => return Err(format!("field label not supported: {path}")),
    })
}

/// `metadata.labels['key']` → (`metadata.labels`, `key`).
fn subscript(path: &str) -> Option<(&str, &str)> {
    let inner = path.strip_suffix("']")?;
    let (field, key) = inner.split_once("['")?;
    Some((field, key))
}

/// Upstream's `FormatMap`: `key="value"` lines sorted by key, values quoted like Go's `%q`.
pub(crate) fn format_map(map: Option<&BTreeMap<String, String>>) -> String {
    map.into_iter().flatten().map(|(k, v)| format!("{k}={}", go_quote(v))).collect::<Vec<_>>().join("\n")
}

/// The value of a downward-API `resourceFieldRef` for `container` (or the container it names),
/// divided by the divisor and rounded up, as upstream's `ExtractContainerResourceValue`. Unset
/// limits of cpu, memory and ephemeral-storage report the node's allocatable amount.
pub(crate) fn resource_value(
    pod: &Pod,
    container: &Container,
    sel: &ResourceFieldSelector,
    allocatable: &BTreeMap<String, Quantity>,
) -> Result<String, String> {
    let container = match sel.container_name.as_deref().filter(|n| !n.is_empty()) {
        Some(name) if name != container.name => find_container(pod, name)?,
        _ => container,
    };
    resource_value_of(container, sel, allocatable)
}

pub(crate) fn find_container<'a>(pod: &'a Pod, name: &str) -> Result<&'a Container, String> {
    let spec = pod.spec.as_ref();
    spec.into_iter()
        .flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten()))
        .find(|c| c.name == name)
        .ok_or_else(|| format!("container {name} not found"))
}

fn resource_value_of(
    container: &Container,
    sel: &ResourceFieldSelector,
    allocatable: &BTreeMap<String, Quantity>,
) -> Result<String, String> {
    let divisor = match sel.divisor.as_ref().map(|q| q.0.as_str()).filter(|d| !d.is_empty()) {
        None => 1000,
        Some(d) => match skiff_api::quantity::milli_value(d) {
            Some(0) | None => 1000,
            Some(m) => m,
        },
    };
    let (field, resource) =
        sel.resource.split_once('.').ok_or_else(|| format!("unsupported container resource : {}", sel.resource))?;
    let supported = matches!(resource, "cpu" | "memory" | "ephemeral-storage") || resource.starts_with("hugepages-");
    if !supported || !matches!(field, "limits" | "requests") {
        return Err(format!("unsupported container resource : {}", sel.resource));
    }
    let res = container.resources.as_ref();
    let list =
        if field == "limits" { res.and_then(|r| r.limits.as_ref()) } else { res.and_then(|r| r.requests.as_ref()) };
    let mut value = list.and_then(|l| l.get(resource)).map(|q| q.0.clone());
    if value.is_none() && field == "limits" && !resource.starts_with("hugepages-") {
        value = allocatable.get(resource).map(|q| q.0.clone());
    }
    let milli = match value {
        None => 0,
        Some(v) => skiff_api::quantity::milli_value(&v).ok_or_else(|| format!("invalid quantity {v:?}"))?,
    };
    // CPU divides milli-values; bytes divide whole values (`Value()` rounds milli-units up).
    let (num, den) =
        if resource == "cpu" { (milli, divisor) } else { (ceil_div(milli, 1000), ceil_div(divisor, 1000)) };
    Ok(ceil_div(num, den.max(1)).to_string())
}

fn ceil_div(a: i128, b: i128) -> i128 {
    let q = a / b;
    if a % b != 0 && (a > 0) == (b > 0) { q + 1 } else { q }
}
