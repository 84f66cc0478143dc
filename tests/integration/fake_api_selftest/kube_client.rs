//! kube-rs against the fake, as the agent uses it: paged lists, the watcher (with its relist after 410
//! Expired), Event create/conflict/patch, and the retries kube-rs makes on its own.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use super::{EVENTS, event, five_pods};
use crate::support::fake_api::{FakeApi, FakePod, Fault};

pub(super) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// A kube-rs client for the fake, as the agent builds one for `KUBE_API_SERVER`. Needs a runtime.
pub(super) fn client(api: &FakeApi) -> kube::Client {
    kube::Client::try_from(kube::Config::new(api.url().parse().unwrap())).unwrap()
}

#[test]
fn serves_kube_rs_paged_lists() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, ListParams};

    let api = FakeApi::start();
    five_pods(&api);
    let names = block_on(async {
        let pods: Api<Pod> = Api::all(client(&api));
        let mut names = Vec::new();
        let mut params = ListParams::default().limit(2);
        loop {
            let page = pods.list(&params).await.unwrap();
            names.extend(
                page.items
                    .iter()
                    .map(|pod| pod.metadata.name.clone().unwrap()),
            );
            match page.metadata.continue_ {
                Some(token) if !token.is_empty() => params = params.continue_token(&token),
                _ => break names,
            }
        }
    });
    assert_eq!(names, ["web-0", "web-1", "web-2", "web-3", "web-4"]);
    let queries: Vec<_> = api.requests().into_iter().map(|r| r.query).collect();
    let expected: Vec<BTreeMap<String, String>> =
        [None, Some("fake-continue-1"), Some("fake-continue-2")]
            .into_iter()
            .map(|token| {
                let mut query = BTreeMap::from([("limit".to_string(), "2".to_string())]);
                if let Some(token) = token {
                    query.insert("continue".to_string(), token.to_string());
                }
                query
            })
            .collect();
    assert_eq!(queries, expected);
}

#[test]
fn selects_pods_by_field_in_lists_watches_and_pages_and_counts_the_bytes_it_sends() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, ListParams};

    let api = FakeApi::start();
    five_pods(&api);
    for index in 0..3 {
        api.add_pod(
            FakePod::new("db", &format!("pg-{index}"))
                .node("node-2")
                .ip(&format!("10.2.0.{index}")),
        );
    }
    let names = |list: kube::core::ObjectList<Pod>| -> Vec<String> {
        (list.items.iter())
            .map(|pod| pod.metadata.name.clone().unwrap())
            .collect()
    };
    let (on_node_2, by_ip, page) = block_on(async {
        let pods: Api<Pod> = Api::all(client(&api));
        let on_node_2 = pods
            .list(
                &ListParams::default()
                    .fields("spec.nodeName=node-2")
                    .match_any(),
            )
            .await
            .unwrap();
        let by_ip = pods
            .list(&ListParams::default().fields("status.podIP=10.1.0.3"))
            .await
            .unwrap();
        let page = pods
            .list(
                &ListParams::default()
                    .fields("spec.nodeName!=node-2")
                    .limit(4),
            )
            .await
            .unwrap();
        (on_node_2, by_ip, page)
    });
    let remaining = page.metadata.remaining_item_count;
    assert_eq!(names(on_node_2), ["pg-0", "pg-1", "pg-2"]);
    assert_eq!(names(by_ip), ["web-3"]);
    assert_eq!(names(page), ["web-0", "web-1", "web-2", "web-3"]);
    assert_eq!(remaining, Some(1));
    let refused = block_on(async {
        let pods: Api<Pod> = Api::all(client(&api));
        pods.list(&ListParams::default().fields("spec.restartPolicy=Always"))
            .await
            .unwrap_err()
    });
    assert!(
        refused
            .to_string()
            .contains("field label not supported: spec.restartPolicy"),
        "{refused}"
    );
    // Each answer's body is counted: a list of three pods is about three pods' JSON.
    let requests = api.requests();
    let three = requests[0].bytes;
    let one = requests[1].bytes;
    assert!(three > 2 * one && one > 300, "{three} and {one} bytes");
}

type PodEvent = Result<
    kube::runtime::watcher::Event<k8s_openapi::api::core::v1::Pod>,
    kube::runtime::watcher::Error,
>;

/// The next `count` watcher events, each as "Init", "InitApply ns/name", "Apply ns/name", ...
async fn next_events<S>(stream: &mut S, count: usize) -> Vec<String>
where
    S: futures_util::Stream<Item = PodEvent> + Unpin,
{
    use futures_util::StreamExt;
    use kube::runtime::watcher::{Error, Event};

    let key = |pod: &k8s_openapi::api::core::v1::Pod| {
        let metadata = &pod.metadata;
        format!(
            "{}/{}",
            metadata.namespace.as_deref().unwrap(),
            metadata.name.as_deref().unwrap()
        )
    };
    let mut described = Vec::new();
    for _ in 0..count {
        let next = tokio::time::timeout(Duration::from_secs(2), stream.next()).await;
        let event = next
            .expect("a watcher event within 2 s")
            .expect("the stream goes on");
        described.push(match event {
            Ok(Event::Init) => "Init".to_string(),
            Ok(Event::InitApply(pod)) => format!("InitApply {}", key(&pod)),
            Ok(Event::InitDone) => "InitDone".to_string(),
            Ok(Event::Apply(pod)) => format!("Apply {}", key(&pod)),
            Ok(Event::Delete(pod)) => format!("Delete {}", key(&pod)),
            Err(Error::WatchError(status)) => {
                format!("WatchError {} {}", status.code, status.reason)
            }
            Err(other) => format!("error {other}"),
        });
    }
    described
}

#[test]
fn serves_the_kube_rs_watcher_and_its_relist_after_expiry() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::Api;
    use kube::runtime::watcher;

    let api = FakeApi::start();
    api.add_pod(
        FakePod::new("shop", "web-0")
            .ip("10.1.0.1")
            .ip("fd00::1")
            .label("app", "web"),
    );
    let proxy = FakePod::new("kube-system", "proxy-0")
        .node("node-2")
        .host_network();
    api.add_pod(proxy.ip("192.168.0.7").host_ip("192.168.0.7"));
    api.add_pod(
        FakePod::new("shop", "job-0")
            .uid("uid-job")
            .phase("Succeeded")
            .unscheduled(),
    );
    let listed_at = api.resource_version();

    let (first, second, third, deleted_at) = block_on(async {
        let pods: Api<Pod> = Api::all(client(&api));
        let mut stream = std::pin::pin!(watcher(pods, watcher::Config::default().page_size(2)));
        let first = next_events(&mut stream, 5).await;
        api.add_pod(FakePod::new("shop", "web-1").ip("10.1.0.2"));
        api.delete_pod("shop", "job-0");
        let deleted_at = api.resource_version();
        let second = next_events(&mut stream, 2).await;
        // Compaction, then the watch ends: the watcher re-watches from its last version, gets 410
        // Expired, and relists.
        api.expire_history();
        api.close_watches();
        let mut third = next_events(&mut stream, 6).await;
        api.add_pod(FakePod::new("shop", "web-2"));
        third.extend(next_events(&mut stream, 1).await);
        (first, second, third, deleted_at)
    });
    assert_eq!(
        first,
        [
            "Init",
            "InitApply kube-system/proxy-0",
            "InitApply shop/job-0",
            "InitApply shop/web-0",
            "InitDone",
        ]
    );
    assert_eq!(second, ["Apply shop/web-1", "Delete shop/job-0"]);
    assert_eq!(
        third,
        [
            "WatchError 410 Expired",
            "Init",
            "InitApply kube-system/proxy-0",
            "InitApply shop/web-0",
            "InitApply shop/web-1",
            "InitDone",
            "Apply shop/web-2",
        ]
    );

    // What kube-rs 5's watcher sends: lists with only `limit` (and `continue`), watches from the
    // version it last saw with a 290 s timeout and bookmarks allowed.
    let requests = api.requests();
    let described: Vec<String> = requests
        .iter()
        .map(|r| {
            let query: Vec<String> = r.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(
                "{} {} {} -> {:?}",
                r.method,
                r.path,
                query.join("&"),
                r.status
            )
        })
        .collect();
    let after_expiry = deleted_at + 1;
    let watch = |rv: u64| {
        format!(
            "GET /api/v1/pods allowWatchBookmarks=true&resourceVersion={rv}&timeoutSeconds=290&watch=true -> Some(200)"
        )
    };
    assert_eq!(
        described,
        [
            "GET /api/v1/pods limit=2 -> Some(200)".to_string(),
            "GET /api/v1/pods continue=fake-continue-1&limit=2 -> Some(200)".to_string(),
            watch(listed_at),
            watch(deleted_at),
            "GET /api/v1/pods limit=2 -> Some(200)".to_string(),
            "GET /api/v1/pods continue=fake-continue-2&limit=2 -> Some(200)".to_string(),
            watch(after_expiry),
        ]
    );
    assert_eq!(
        requests[2]
            .headers
            .get("accept-encoding")
            .map(String::as_str),
        Some("identity")
    );

    // The objects decode into k8s-openapi's Pod with the fields the agent reads.
    let pods: Vec<Pod> = api
        .pods()
        .into_iter()
        .map(|pod| serde_json::from_value(pod).unwrap())
        .collect();
    let proxy = &pods[0];
    let spec = proxy.spec.as_ref().unwrap();
    assert_eq!(
        (spec.host_network, spec.node_name.as_deref()),
        (Some(true), Some("node-2"))
    );
    assert_eq!(
        proxy.status.as_ref().unwrap().host_ip.as_deref(),
        Some("192.168.0.7")
    );
    let web = &pods[1];
    let ips: Vec<&str> = web
        .status
        .as_ref()
        .unwrap()
        .pod_ips
        .as_ref()
        .unwrap()
        .iter()
        .map(|ip| ip.ip.as_str())
        .collect();
    assert_eq!(ips, ["10.1.0.1", "fd00::1"]);
    assert_eq!(web.metadata.labels.as_ref().unwrap()["app"], "web");
}

#[test]
fn serves_kube_rs_event_create_conflict_and_merge_patch() {
    use k8s_openapi::api::core::v1::Event;
    use kube::api::{Api, Patch, PatchParams, PostParams};

    let api = FakeApi::start();
    block_on(async {
        let events: Api<Event> = Api::namespaced(client(&api), "shop");
        let event: Event = serde_json::from_value(event("web-0.1")).unwrap();
        let created = events.create(&PostParams::default(), &event).await.unwrap();
        assert!(created.metadata.uid.is_some());
        assert_eq!(created.count, Some(1));
        match events.create(&PostParams::default(), &event).await {
            Err(kube::Error::Api(status)) => {
                assert_eq!(
                    (status.code, status.reason.as_str()),
                    (409, "AlreadyExists")
                );
            }
            other => panic!("expected a 409, got {other:?}"),
        }
        let patch = Patch::Merge(json!({"count": 5}));
        let patched = events
            .patch("web-0.1", &PatchParams::default(), &patch)
            .await
            .unwrap();
        assert_eq!(
            (patched.count, patched.message),
            (Some(5), event.message.clone())
        );
        assert_eq!(events.get("web-0.1").await.unwrap().count, Some(5));
        match events.get("nothing").await {
            Err(kube::Error::Api(status)) => assert_eq!(status.code, 404),
            other => panic!("expected a 404, got {other:?}"),
        }
    });
    assert_eq!(api.event("shop", "web-0.1").unwrap()["count"], 5);
    let patches = api.requests_to("PATCH", EVENTS);
    assert_eq!(patches.len(), 1);
    assert_eq!(
        patches[0].content_type(),
        Some("application/merge-patch+json")
    );
    assert_eq!(patches[0].body, Some(json!({"count": 5})));
}

#[test]
fn shows_kube_rs_retrying_429_after_retry_after_and_503_by_itself() {
    use k8s_openapi::api::core::v1::Event;
    use kube::api::{Api, PostParams};

    let api = FakeApi::start();
    api.fault("POST", EVENTS, 1, Fault::retry_after(429, 1));
    api.fault("POST", EVENTS, 1, Fault::status(503));
    block_on(async {
        let events: Api<Event> = Api::namespaced(client(&api), "shop");
        let event: Event = serde_json::from_value(event("web-0.1")).unwrap();
        events.create(&PostParams::default(), &event).await.unwrap();
    });
    let requests = api.requests();
    let statuses: Vec<Option<u16>> = requests.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(429), Some(503), Some(201)]);
    let waited = requests[1].received - requests[0].received;
    assert!(
        waited >= Duration::from_secs(1),
        "Retry-After: 1 honoured, waited {waited:?}"
    );
}
