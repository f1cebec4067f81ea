//! Resource arithmetic for scheduling: parsing `Quantity` strings into integers and computing a
//! pod's effective requests the way upstream's `resource.PodRequests` does (regular containers and
//! sidecars run together; classic init containers run one at a time; overhead on top).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// CPU assumed for a container that requests none, when *scoring* (upstream `DefaultMilliCPURequest`).
pub(crate) const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Memory assumed for a container that requests none, when *scoring* (200 MiB, upstream default).
pub(crate) const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// A vector of resource amounts: CPU in millicores, everything else in base units. `repr(C)`:
/// the amounts every fit check reads first, the rarely used map last.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct Resource {
    pub(crate) milli_cpu: i64,
    pub(crate) memory: i64,
    pub(crate) ephemeral_storage: i64,
    /// The `pods` resource (only meaningful for a node's allocatable).
    pub(crate) allowed_pods: i64,
    /// Extended resources, hugepages and other prefixed resources, by name.
    pub(crate) scalar: BTreeMap<String, i64>,
}

impl Resource {
    /// Builds a resource vector from a `requests` / `allocatable` map. Unparsable quantities count
    /// as zero: the API server validated them, so this only guards against garbage.
    pub(crate) fn from_map(map: &BTreeMap<String, Quantity>) -> Resource {
        let mut r = Resource::default();
        for (name, q) in map {
            r.set(name, q);
        }
        r
    }

    fn set(&mut self, name: &str, q: &Quantity) {
        match name {
            "cpu" => self.milli_cpu = milli_value(q).unwrap_or(0),
            "memory" => self.memory = value(q).unwrap_or(0),
            "ephemeral-storage" => self.ephemeral_storage = value(q).unwrap_or(0),
            "pods" => self.allowed_pods = value(q).unwrap_or(0),
            other if is_scalar_resource_name(other) => {
                self.scalar.insert(other.to_string(), value(q).unwrap_or(0));
            }
            _ => {}
        }
    }

    pub(crate) fn add(&mut self, other: &Resource) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        self.allowed_pods += other.allowed_pods;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_default() += v;
        }
    }

    pub(crate) fn sub(&mut self, other: &Resource) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        self.allowed_pods -= other.allowed_pods;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_default() -= v;
        }
    }

    fn max_with(&mut self, other: &Resource) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_default();
            *e = (*e).max(*v);
        }
    }
}

/// Upstream `IsScalarResourceName`: extended (`example.com/gpu`), hugepages, and
/// `*.kubernetes.io/`-prefixed native resources.
fn is_scalar_resource_name(name: &str) -> bool {
    name.starts_with("hugepages-") || name.contains('/')
}

/// The pod's requests as used by NodeResourcesFit and the node accounting. With
/// `non_zero_defaults`, a container without a cpu / memory request counts the scoring defaults
/// (upstream's `NonMissingContainerRequests`), which is what LeastAllocated scores with.
pub(crate) fn pod_requests(pod: &Pod, non_zero_defaults: bool) -> Resource {
    let Some(spec) = pod.spec.as_ref() else {
        return Resource::default();
    };
    let requests_of = |c: &Container| {
        let mut r = c.resources.as_ref().and_then(|r| r.requests.as_ref()).map(Resource::from_map).unwrap_or_default();
        if non_zero_defaults {
            let has =
                |n: &str| c.resources.as_ref().and_then(|r| r.requests.as_ref()).is_some_and(|m| m.contains_key(n));
            if !has("cpu") {
                r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
            }
            if !has("memory") {
                r.memory = DEFAULT_MEMORY_REQUEST;
            }
        }
        r
    };
    let mut reqs = Resource::default();
    for c in &spec.containers {
        reqs.add(&requests_of(c));
    }
    // Sidecars (restartable init containers) keep running, so they add to the steady state and
    // to every init container started after them.
    let mut sidecars = Resource::default();
    let mut init_peak = Resource::default();
    for c in spec.init_containers.iter().flatten() {
        let mut r = requests_of(c);
        if c.restart_policy.as_deref() == Some("Always") {
            reqs.add(&r);
            sidecars.add(&r);
            r = sidecars.clone();
        } else {
            r.add(&sidecars);
        }
        init_peak.max_with(&r);
    }
    reqs.max_with(&init_peak);
    if let Some(overhead) = spec.overhead.as_ref() {
        reqs.add(&Resource::from_map(overhead));
    }
    reqs
}

/// `Quantity.Value()`: the amount rounded up to an integer.
pub(crate) fn value(q: &Quantity) -> Option<i64> {
    scaled(&q.0, 0)
}

/// `Quantity.MilliValue()`: the amount in thousandths, rounded up.
pub(crate) fn milli_value(q: &Quantity) -> Option<i64> {
    scaled(&q.0, 3)
}

/// Parses a Kubernetes quantity (`1.5Gi`, `250m`, `1e3`, `2k`) and returns it times
/// `10^extra_exp`, rounded up (upstream rounds quantities up when converting to integers).
fn scaled(s: &str, extra_exp: i32) -> Option<i64> {
    let s = s.trim();
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let num_end = body.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(body.len());
    let (num, suffix) = body.split_at(num_end);
    if num.is_empty() || num == "." {
        return None;
    }
    let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
    let digits = format!("{int_part}{frac_part}");
    let mut mantissa: i128 = digits.parse().ok()?;
    let mut dec_exp: i32 = -(frac_part.len() as i32) + extra_exp;
    let mut bin_exp: u32 = 0;
    match suffix {
        "" => {}
        "n" => dec_exp -= 9,
        "u" => dec_exp -= 6,
        "m" => dec_exp -= 3,
        "k" => dec_exp += 3,
        "M" => dec_exp += 6,
        "G" => dec_exp += 9,
        "T" => dec_exp += 12,
        "P" => dec_exp += 15,
        "E" => dec_exp += 18,
        "Ki" => bin_exp = 10,
        "Mi" => bin_exp = 20,
        "Gi" => bin_exp = 30,
        "Ti" => bin_exp = 40,
        "Pi" => bin_exp = 50,
        "Ei" => bin_exp = 60,
        other if other.starts_with(['e', 'E']) => dec_exp += other[1..].parse::<i32>().ok()?,
        _ => return None,
    }
    mantissa = mantissa.checked_mul(1i128.checked_shl(bin_exp)?)?;
    let out = if dec_exp >= 0 {
        mantissa.checked_mul(10i128.checked_pow(dec_exp as u32)?)?
    } else {
        let div = 10i128.checked_pow((-dec_exp) as u32)?;
        // Round away from zero ("up" in magnitude), like resource.Quantity's scaling.
        (mantissa + div - 1) / div
    };
    let out = if neg { -out } else { out };
    i64::try_from(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(s: &str) -> Quantity {
        Quantity(s.to_string())
    }

    #[test]
    fn quantities() {
        assert_eq!(milli_value(&q("250m")), Some(250));
        assert_eq!(milli_value(&q("1.5")), Some(1500));
        assert_eq!(milli_value(&q("2")), Some(2000));
        assert_eq!(milli_value(&q("1u")), Some(1));
        assert_eq!(value(&q("1Gi")), Some(1 << 30));
        assert_eq!(value(&q("1.5Gi")), Some(3 << 29));
        assert_eq!(value(&q("128974848")), Some(128_974_848));
        assert_eq!(value(&q("129e6")), Some(129_000_000));
        assert_eq!(value(&q("129M")), Some(129_000_000));
        assert_eq!(value(&q("100m")), Some(1));
        assert_eq!(value(&q("-1")), Some(-1));
        assert_eq!(value(&q("1Zi")), None);
        assert_eq!(value(&q("")), None);
        assert_eq!(value(&q("abc")), None);
    }

    #[test]
    fn pod_requests_follow_upstream() {
        // Two regular containers (sum 3 cpu), a 4-cpu init container, a sidecar of 1 cpu started
        // before a 2-cpu init container, and 500m overhead.
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {
                "containers": [
                    {"name": "a", "resources": {"requests": {"cpu": "2", "memory": "1Gi"}}},
                    {"name": "b", "resources": {"requests": {"cpu": "1", "example.com/gpu": "1"}}}
                ],
                "initContainers": [
                    {"name": "i1", "resources": {"requests": {"cpu": "4"}}},
                    {"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}},
                    {"name": "i2", "resources": {"requests": {"cpu": "2", "memory": "3Gi"}}}
                ],
                "overhead": {"cpu": "500m"}
            }
        }))
        .unwrap();
        let r = pod_requests(&pod, false);
        // steady: 2+1+1 = 4 cpu; init peak: max(4, 1, 2+1=3) = 4 → 4 cpu + 0.5 overhead
        assert_eq!(r.milli_cpu, 4500);
        // steady memory 1Gi+1Gi = 2Gi; i2 with sidecar: 3Gi+1Gi = 4Gi
        assert_eq!(r.memory, 4 << 30);
        assert_eq!(r.scalar.get("example.com/gpu"), Some(&1));

        let empty: Pod =
            serde_json::from_value(json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}})).unwrap();
        assert_eq!(pod_requests(&empty, false), Resource::default());
        let nz = pod_requests(&empty, true);
        assert_eq!((nz.milli_cpu, nz.memory), (200, 400 * 1024 * 1024));
    }
}
