use super::*;

const T0: i64 = 1_700_000_000_000_000_000;

#[test]
fn parses_options_and_rejects_bad_ones() {
    let o = LogOptions::parse(Some("follow=true&tailLines=5&timestamps=1&limitBytes=10&previous=true"), T0).unwrap();
    assert_eq!(
        o,
        LogOptions {
            follow: true,
            previous: true,
            tail: Some(5),
            since: None,
            timestamps: true,
            limit_bytes: Some(10)
        }
    );
    let o = LogOptions::parse(Some("sinceSeconds=10"), T0).unwrap();
    assert_eq!(o.since, Some(T0 - 10_000_000_000));
    let o = LogOptions::parse(Some("sinceTime=2023-11-14T22%3A13%3A20Z"), T0).unwrap();
    assert_eq!(o.since, Some(T0));
    for bad in [
        "tailLines=-1",
        "limitBytes=0",
        "sinceSeconds=0",
        "follow=maybe",
        "sinceTime=yesterday",
        "sinceSeconds=1&sinceTime=2023-11-14T22:13:20Z",
    ] {
        assert!(LogOptions::parse(Some(bad), T0).is_err(), "{bad}");
    }
}

#[test]
fn reasons_for_missing_logs() {
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "p", "namespace": "default"},
        "status": {"containerStatuses": [
            {"name": "c", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
             "state": {"waiting": {"reason": "ContainerCreating"}}},
            {"name": "pull", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
             "state": {"waiting": {"reason": "ImagePullBackOff"}}},
        ]}
    }))
    .unwrap();
    assert_eq!(no_logs_reason(&pod, "c", false), "container \"c\" in pod \"p\" is waiting to start: ContainerCreating");
    assert_eq!(
        no_logs_reason(&pod, "pull", false),
        "container \"pull\" in pod \"p\" is waiting to start: trying and failing to pull image"
    );
    assert_eq!(no_logs_reason(&pod, "c", true), "previous terminated container \"c\" in pod \"p\" not found");
    assert_eq!(no_logs_reason(&pod, "x", false), "container \"x\" in pod \"p\" is waiting to start - no logs yet");
}
