//! Prometheus metrics at `/metrics`, named like kube-apiserver's so existing dashboards work:
//! request counts and latencies by verb, resource and code, store latency by operation, and
//! the number of open watches per resource.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LatencyLabels {
    pub verb: String,
    pub group: String,
    pub resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreLabels {
    pub operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WatchLabels {
    pub group: String,
    pub resource: String,
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0].into_iter()
}

/// All metrics of the API server.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub request_duration: Family<LatencyLabels, Histogram>,
    pub store_duration: Family<StoreLabels, Histogram>,
    pub watchers: Family<WatchLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let request_duration =
            Family::<LatencyLabels, Histogram>::new_with_constructor(|| Histogram::new(latency_buckets()));
        let store_duration =
            Family::<StoreLabels, Histogram>::new_with_constructor(|| Histogram::new(latency_buckets()));
        let watchers = Family::<WatchLabels, Gauge>::default();
        registry.register(
            "apiserver_request",
            "Counter of apiserver requests by verb, resource and code",
            requests.clone(),
        );
        registry.register(
            "apiserver_request_duration_seconds",
            "Response latency distribution in seconds by verb and resource",
            request_duration.clone(),
        );
        registry.register(
            "etcd_request_duration_seconds",
            "Store request latency in seconds by operation",
            store_duration.clone(),
        );
        registry.register(
            "apiserver_registered_watchers",
            "Number of currently open watches by resource",
            watchers.clone(),
        );
        Metrics { registry, requests, request_duration, store_duration, watchers }
    }

    pub fn observe_request(&self, verb: &str, group: &str, resource: &str, code: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                verb: verb.to_string(),
                group: group.to_string(),
                resource: resource.to_string(),
                code: code.to_string(),
            })
            .inc();
        // Watches are long-lived: their duration says nothing about latency.
        if verb != "WATCH" {
            self.request_duration
                .get_or_create(&LatencyLabels {
                    verb: verb.to_string(),
                    group: group.to_string(),
                    resource: resource.to_string(),
                })
                .observe(seconds);
        }
    }

    pub fn observe_store(&self, operation: &str, seconds: f64) {
        self.store_duration.get_or_create(&StoreLabels { operation: operation.to_string() }).observe(seconds);
    }

    pub fn watch_gauge(&self, group: &str, resource: &str) -> Gauge {
        self.watchers.get_or_create(&WatchLabels { group: group.to_string(), resource: resource.to_string() }).clone()
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_contains_series() {
        let m = Metrics::new();
        m.observe_request("GET", "", "pods", 200, 0.002);
        m.observe_store("create", 0.001);
        m.watch_gauge("", "pods").inc();
        let text = m.encode();
        assert!(
            text.contains(r#"apiserver_request_total{verb="GET",group="",resource="pods",code="200"} 1"#),
            "{text}"
        );
        assert!(text.contains("apiserver_request_duration_seconds_bucket"));
        assert!(text.contains(r#"etcd_request_duration_seconds_count{operation="create"} 1"#));
        assert!(text.contains(r#"apiserver_registered_watchers{group="",resource="pods"} 1"#));
    }
}
