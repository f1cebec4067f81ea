//! Conversion between API versions that share one storage: core/v1 ⇄ events.k8s.io/v1 Events
//! (stored as core/v1) and autoscaling/v2 ⇄ autoscaling/v1 HorizontalPodAutoscalers (stored as
//! v2). Upstream converts through internal types; the field mappings here follow
//! `pkg/apis/events/v1/conversion.go` and `pkg/apis/autoscaling/v1/conversion.go`.

use serde_json::{Map, Value, json};
use skiff_api::ResourceInfo;

/// Convert `obj` to `target`'s version (a no-op for pairs that need none).
pub(crate) fn convert(obj: Value, target: &ResourceInfo) -> Value {
    let from = obj.get("apiVersion").and_then(Value::as_str).unwrap_or_default().to_string();
    let to = target.api_version();
    if from == to {
        return obj;
    }
    let out = match (from.as_str(), to.as_str(), target.kind) {
        ("v1", "events.k8s.io/v1", "Event") => core_event_to_events(obj),
        ("events.k8s.io/v1", "v1", "Event") => events_event_to_core(obj),
        ("autoscaling/v2", "autoscaling/v1", "HorizontalPodAutoscaler") => hpa_v2_to_v1(obj),
        ("autoscaling/v1", "autoscaling/v2", "HorizontalPodAutoscaler") => hpa_v1_to_v2(obj),
        _ => obj,
    };
    with_type_meta(out, &to, target.kind)
}

fn with_type_meta(obj: Value, api_version: &str, kind: &str) -> Value {
    let mut out = Map::new();
    out.insert("apiVersion".into(), Value::String(api_version.into()));
    out.insert("kind".into(), Value::String(kind.into()));
    if let Value::Object(m) = obj {
        for (k, v) in m {
            if k != "apiVersion" && k != "kind" {
                out.insert(k, v);
            }
        }
    }
    Value::Object(out)
}

fn take(m: &mut Map<String, Value>, from: &str, out: &mut Map<String, Value>, to: &str) {
    if let Some(v) = m.remove(from)
        && !v.is_null()
    {
        out.insert(to.to_string(), v);
    }
}

fn core_event_to_events(obj: Value) -> Value {
    let Value::Object(mut m) = obj else { return obj };
    let mut out = Map::new();
    take(&mut m, "metadata", &mut out, "metadata");
    take(&mut m, "eventTime", &mut out, "eventTime");
    take(&mut m, "series", &mut out, "series");
    take(&mut m, "reportingComponent", &mut out, "reportingController");
    take(&mut m, "reportingInstance", &mut out, "reportingInstance");
    take(&mut m, "action", &mut out, "action");
    take(&mut m, "reason", &mut out, "reason");
    take(&mut m, "involvedObject", &mut out, "regarding");
    take(&mut m, "related", &mut out, "related");
    take(&mut m, "message", &mut out, "note");
    take(&mut m, "type", &mut out, "type");
    take(&mut m, "source", &mut out, "deprecatedSource");
    take(&mut m, "firstTimestamp", &mut out, "deprecatedFirstTimestamp");
    take(&mut m, "lastTimestamp", &mut out, "deprecatedLastTimestamp");
    take(&mut m, "count", &mut out, "deprecatedCount");
    Value::Object(out)
}

fn events_event_to_core(obj: Value) -> Value {
    let Value::Object(mut m) = obj else { return obj };
    let mut out = Map::new();
    take(&mut m, "metadata", &mut out, "metadata");
    take(&mut m, "regarding", &mut out, "involvedObject");
    take(&mut m, "reason", &mut out, "reason");
    take(&mut m, "note", &mut out, "message");
    take(&mut m, "deprecatedSource", &mut out, "source");
    take(&mut m, "deprecatedFirstTimestamp", &mut out, "firstTimestamp");
    take(&mut m, "deprecatedLastTimestamp", &mut out, "lastTimestamp");
    take(&mut m, "deprecatedCount", &mut out, "count");
    take(&mut m, "type", &mut out, "type");
    take(&mut m, "eventTime", &mut out, "eventTime");
    take(&mut m, "series", &mut out, "series");
    take(&mut m, "action", &mut out, "action");
    take(&mut m, "related", &mut out, "related");
    take(&mut m, "reportingController", &mut out, "reportingComponent");
    take(&mut m, "reportingInstance", &mut out, "reportingInstance");
    // The core view's timestamps and count follow eventTime and the series when the writer
    // (an events.k8s.io client) left the deprecated fields out. Upstream leaves them null, and
    // then `kubectl get events --sort-by=.lastTimestamp` prints nothing at all; see
    // docs/decisions/0004.
    let series_last = out.get("series").and_then(|s| s.get("lastObservedTime")).filter(|v| !v.is_null()).cloned();
    let series_count = out.get("series").and_then(|s| s.get("count")).filter(|v| !v.is_null()).cloned();
    if let Some(event_time) = out.get("eventTime").filter(|v| !v.is_null()).cloned() {
        // Second precision, as the core type's timestamps are.
        let seconds = |v: &Value| -> Value {
            match v.as_str() {
                Some(t) => match t.split_once('.') {
                    Some((whole, _)) => json!(format!("{whole}Z")),
                    None => v.clone(),
                },
                None => v.clone(),
            }
        };
        if !out.contains_key("firstTimestamp") {
            out.insert("firstTimestamp".into(), seconds(&event_time));
        }
        match &series_last {
            Some(last) => {
                out.insert("lastTimestamp".into(), seconds(last));
            }
            None if !out.contains_key("lastTimestamp") => {
                out.insert("lastTimestamp".into(), seconds(&event_time));
            }
            None => {}
        }
        match series_count {
            Some(c) => {
                out.insert("count".into(), c);
            }
            None if !out.contains_key("count") => {
                out.insert("count".into(), json!(1));
            }
            None => {}
        }
    }
    // The core type requires an involvedObject; upstream also fills source from the reporter.
    if !out.contains_key("involvedObject") {
        out.insert("involvedObject".into(), json!({}));
    }
    Value::Object(out)
}

const ANN_METRICS: &str = "autoscaling.alpha.kubernetes.io/metrics";
const ANN_CURRENT: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
const ANN_CONDITIONS: &str = "autoscaling.alpha.kubernetes.io/conditions";
const ANN_BEHAVIOR: &str = "autoscaling.alpha.kubernetes.io/behavior";

fn is_cpu_utilization(metric: &Value) -> bool {
    metric.get("type").and_then(Value::as_str) == Some("Resource")
        && metric.pointer("/resource/name").and_then(Value::as_str) == Some("cpu")
        && metric.pointer("/resource/target/type").and_then(Value::as_str) == Some("Utilization")
}

fn annotations(m: &mut Map<String, Value>) -> &mut Map<String, Value> {
    let meta = m.entry("metadata").or_insert_with(|| json!({}));
    if !meta.get("annotations").is_some_and(Value::is_object) {
        meta["annotations"] = json!({});
    }
    meta["annotations"].as_object_mut().expect("annotations was just made an object")
}

fn hpa_v2_to_v1(obj: Value) -> Value {
    let Value::Object(mut m) = obj else { return obj };
    let mut spec = m.remove("spec").and_then(|s| s.as_object().cloned()).unwrap_or_default();
    let metrics = spec.remove("metrics").and_then(|v| v.as_array().cloned()).unwrap_or_default();
    let (cpu, others): (Vec<Value>, Vec<Value>) = metrics.into_iter().partition(is_cpu_utilization);
    if let Some(c) = cpu.first().and_then(|c| c.pointer("/resource/target/averageUtilization")).cloned() {
        spec.insert("targetCPUUtilizationPercentage".into(), c);
    }
    if !others.is_empty() {
        annotations(&mut m).insert(ANN_METRICS.into(), Value::String(Value::Array(others).to_string()));
    }
    if let Some(b) = spec.remove("behavior") {
        annotations(&mut m).insert(ANN_BEHAVIOR.into(), Value::String(b.to_string()));
    }
    let mut status = m.remove("status").and_then(|s| s.as_object().cloned()).unwrap_or_default();
    let current = status.remove("currentMetrics").and_then(|v| v.as_array().cloned()).unwrap_or_default();
    let mut rest = Vec::new();
    for c in current {
        let cpu = c.get("type").and_then(Value::as_str) == Some("Resource")
            && c.pointer("/resource/name").and_then(Value::as_str) == Some("cpu");
        match c.pointer("/resource/current/averageUtilization") {
            Some(u) if cpu => {
                status.insert("currentCPUUtilizationPercentage".into(), u.clone());
            }
            _ => rest.push(c),
        }
    }
    if !rest.is_empty() {
        annotations(&mut m).insert(ANN_CURRENT.into(), Value::String(Value::Array(rest).to_string()));
    }
    if let Some(conds) = status.remove("conditions") {
        annotations(&mut m).insert(ANN_CONDITIONS.into(), Value::String(conds.to_string()));
    }
    status.entry("currentReplicas").or_insert(json!(0));
    status.entry("desiredReplicas").or_insert(json!(0));
    let mut out = Map::new();
    take(&mut m, "metadata", &mut out, "metadata");
    out.insert("spec".into(), Value::Object(spec));
    out.insert("status".into(), Value::Object(status));
    Value::Object(out)
}

fn hpa_v1_to_v2(obj: Value) -> Value {
    let Value::Object(mut m) = obj else { return obj };
    let mut anns = m
        .get_mut("metadata")
        .and_then(|md| md.get_mut("annotations"))
        .and_then(Value::as_object_mut)
        .map(std::mem::take)
        .unwrap_or_default();
    let mut parse_ann = |k: &str| anns.remove(k).and_then(|v| serde_json::from_str::<Value>(v.as_str()?).ok());
    let extra_metrics = parse_ann(ANN_METRICS);
    let behavior = parse_ann(ANN_BEHAVIOR);
    let current = parse_ann(ANN_CURRENT);
    let conditions = parse_ann(ANN_CONDITIONS);
    if let Some(md) = m.get_mut("metadata").and_then(Value::as_object_mut) {
        if anns.is_empty() {
            md.remove("annotations");
        } else {
            md.insert("annotations".into(), Value::Object(anns));
        }
    }
    let mut spec = m.remove("spec").and_then(|s| s.as_object().cloned()).unwrap_or_default();
    let mut metrics = Vec::new();
    if let Some(t) = spec.remove("targetCPUUtilizationPercentage") {
        metrics.push(json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": t}}}));
    }
    if let Some(Value::Array(extra)) = extra_metrics {
        metrics.extend(extra);
    }
    if !metrics.is_empty() {
        spec.insert("metrics".into(), Value::Array(metrics));
    }
    if let Some(b) = behavior {
        spec.insert("behavior".into(), b);
    }
    let mut status = m.remove("status").and_then(|s| s.as_object().cloned()).unwrap_or_default();
    let mut cur = Vec::new();
    if let Some(u) = status.remove("currentCPUUtilizationPercentage") {
        cur.push(json!({"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": u}}}));
    }
    if let Some(Value::Array(extra)) = current {
        cur.extend(extra);
    }
    if !cur.is_empty() {
        status.insert("currentMetrics".into(), Value::Array(cur));
    }
    if let Some(c) = conditions {
        status.insert("conditions".into(), c);
    }
    let mut out = Map::new();
    take(&mut m, "metadata", &mut out, "metadata");
    out.insert("spec".into(), Value::Object(spec));
    if !status.is_empty() {
        out.insert("status".into(), Value::Object(status));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(group: &'static str, version: &'static str, kind: &'static str) -> ResourceInfo {
        skiff_api::resources::builtin()
            .into_iter()
            .find(|r| r.info.group == group && r.info.version == version && r.info.kind == kind)
            .unwrap()
            .info
    }

    #[test]
    fn events_round_trip() {
        let core = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e", "namespace": "d"},
            "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "Scheduled", "message": "ok", "count": 2,
            "source": {"component": "sched"}, "type": "Normal"});
        let ev = convert(core.clone(), &info("events.k8s.io", "v1", "Event"));
        assert_eq!(ev["apiVersion"], "events.k8s.io/v1");
        assert_eq!(ev["regarding"]["name"], "p");
        assert_eq!(ev["note"], "ok");
        assert_eq!(ev["deprecatedCount"], 2);
        let back = convert(ev, &info("", "v1", "Event"));
        assert_eq!(back, core);
    }

    #[test]
    fn new_style_events_get_core_timestamps_from_event_time_and_series() {
        let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
            "eventTime": "2026-01-01T10:00:00.123456Z", "reason": "Scheduled", "note": "ok", "type": "Normal",
            "regarding": {"kind": "Pod", "name": "p"}, "reportingController": "default-scheduler", "action": "Binding"});
        let core = convert(ev.clone(), &info("", "v1", "Event"));
        assert_eq!(core["firstTimestamp"], "2026-01-01T10:00:00Z");
        assert_eq!(core["lastTimestamp"], "2026-01-01T10:00:00Z");
        assert_eq!(core["count"], 1);
        // A series moves lastTimestamp and count along, even when the writer sends back the
        // deprecated fields it read.
        let mut again = convert(core, &info("events.k8s.io", "v1", "Event"));
        again["series"] = json!({"count": 3, "lastObservedTime": "2026-01-01T10:05:00.5Z"});
        let core = convert(again, &info("", "v1", "Event"));
        assert_eq!(core["firstTimestamp"], "2026-01-01T10:00:00Z");
        assert_eq!(core["lastTimestamp"], "2026-01-01T10:05:00Z");
        assert_eq!(core["count"], 3);
    }

    #[test]
    fn hpa_round_trip() {
        let v2 = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"}, "minReplicas": 1, "maxReplicas": 5,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
                            {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}}]},
            "status": {"currentReplicas": 2, "desiredReplicas": 2}});
        let v1 = convert(v2.clone(), &info("autoscaling", "v1", "HorizontalPodAutoscaler"));
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 50);
        assert!(v1["metadata"]["annotations"][ANN_METRICS].as_str().unwrap().contains("memory"));
        let back = convert(v1, &info("autoscaling", "v2", "HorizontalPodAutoscaler"));
        assert_eq!(back["spec"], v2["spec"]);
        assert!(back["metadata"].get("annotations").is_none());
    }
}
