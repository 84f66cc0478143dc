//! networking.k8s.io/v1 NetworkPolicies: discovery, paged lists, watches kept apart from pods', 410
//! Expired, the RBAC 403, writes over HTTP, and kube-rs's discovery and watcher on them.

use std::time::Duration;

use serde_json::{Value, json};

use super::kube_client::{block_on, client};
use super::{Http, names};
use crate::support::fake_api::{ExpiredAnswer, FakeApi, FakePod};

const AGENT_USER: &str = FakeApi::AGENT_USER;

const POLICIES: &str = "/apis/networking.k8s.io/v1/networkpolicies";

fn policies_in(namespace: &str) -> String {
    format!("/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies")
}

/// A policy as a test writes it: no apiVersion or kind, no policyTypes.
fn policy(namespace: &str, name: &str) -> Value {
    json!({
        "metadata": {"namespace": namespace, "name": name},
        "spec": {"podSelector": {"matchLabels": {"app": name}}, "ingress": []},
    })
}

/// "TYPE name" of a watch event.
fn described(event: &Value) -> String {
    format!(
        "{} {}",
        event["type"].as_str().unwrap(),
        event["object"]["metadata"]["name"].as_str().unwrap()
    )
}

#[test]
fn discovers_lists_in_pages_and_gets_network_policies() {
    let api = FakeApi::start();
    for (namespace, name) in [
        ("shop", "deny-all"),
        ("db", "allow-shop"),
        ("shop", "allow-web"),
    ] {
        api.add_network_policy(policy(namespace, name));
    }
    api.add_pod(FakePod::new("shop", "web-0"));
    let version = api.resource_version().to_string();
    let mut http = Http::connect(&api);

    let groups = http.request("GET", "/apis", None);
    assert_eq!(groups.body["kind"], "APIGroupList");
    assert_eq!(groups.body["groups"][0]["name"], "networking.k8s.io");
    let preferred = json!({"groupVersion": "networking.k8s.io/v1", "version": "v1"});
    assert_eq!(groups.body["groups"][0]["preferredVersion"], preferred);
    let group = http.request("GET", "/apis/networking.k8s.io", None);
    assert_eq!((group.code, &group.body), (200, &groups.body["groups"][0]));
    let resources = http.request("GET", "/apis/networking.k8s.io/v1", None);
    assert_eq!(resources.body["groupVersion"], "networking.k8s.io/v1");
    let resource = &resources.body["resources"][0];
    assert_eq!(
        (
            &resource["name"],
            &resource["kind"],
            &resource["namespaced"]
        ),
        (
            &json!("networkpolicies"),
            &json!("NetworkPolicy"),
            &json!(true)
        )
    );
    assert_eq!(
        resource["verbs"],
        json!(["create", "delete", "get", "list", "update", "watch"])
    );
    let core = http.request("GET", "/api/v1", None);
    assert_eq!(names_of_resources(&core.body), ["pods", "events"]);

    // Across namespaces, in key order (namespace, then name), as one snapshot over the pages.
    let first = http.request("GET", &format!("{POLICIES}?limit=2"), None);
    assert_eq!(first.code, 200);
    assert_eq!(
        (&first.body["apiVersion"], &first.body["kind"]),
        (&json!("networking.k8s.io/v1"), &json!("NetworkPolicyList"))
    );
    assert_eq!(first.body["metadata"]["resourceVersion"], version);
    assert_eq!(first.body["metadata"]["remainingItemCount"], 1);
    assert_eq!(names(&first.body["items"]), ["allow-shop", "allow-web"]);
    api.add_network_policy(policy("shop", "late"));
    let token = first.body["metadata"]["continue"].as_str().unwrap();
    let second = http.request("GET", &format!("{POLICIES}?limit=2&continue={token}"), None);
    assert_eq!(names(&second.body["items"]), ["deny-all"]);
    assert_eq!(second.body["metadata"]["resourceVersion"], version);
    assert_eq!(second.body["metadata"].get("continue"), None);

    let shop = http.request("GET", &policies_in("shop"), None);
    assert_eq!(
        names(&shop.body["items"]),
        ["allow-web", "deny-all", "late"]
    );

    // One, with what the API server fills in and defaults.
    let got = http.request("GET", &format!("{}/deny-all", policies_in("shop")), None);
    assert_eq!(got.code, 200);
    assert_eq!(got.body, api.network_policies()[2]);
    assert_eq!(got.body["apiVersion"], "networking.k8s.io/v1");
    assert_eq!(got.body["kind"], "NetworkPolicy");
    let metadata = &got.body["metadata"];
    assert!(metadata["uid"].as_str().is_some_and(|uid| !uid.is_empty()));
    assert!(metadata["creationTimestamp"].is_string());
    assert_eq!(metadata["generation"], 1);
    assert_eq!(got.body["spec"]["policyTypes"], json!(["Ingress"]));
    let missing = http.request("GET", &format!("{}/nothing", policies_in("shop")), None);
    assert_eq!(
        (missing.code, &missing.body["message"]),
        (
            404,
            &json!("networkpolicies.networking.k8s.io \"nothing\" not found")
        )
    );
}

fn names_of_resources(list: &Value) -> Vec<&str> {
    (list["resources"].as_array().unwrap().iter())
        .map(|resource| resource["name"].as_str().unwrap())
        .collect()
}

#[test]
fn refuses_a_continue_token_of_another_resource() {
    let api = FakeApi::start();
    api.add_pod(FakePod::new("shop", "web-0"));
    api.add_pod(FakePod::new("shop", "web-1"));
    let mut http = Http::connect(&api);
    let pods = http.request("GET", "/api/v1/pods?limit=1", None);
    let token = pods.body["metadata"]["continue"].as_str().unwrap();
    let crossed = http.request("GET", &format!("{POLICIES}?limit=1&continue={token}"), None);
    assert_eq!(
        (crossed.code, &crossed.body["reason"]),
        (400, &json!("BadRequest"))
    );
}

#[test]
fn watches_network_policies_and_pods_each_apart() {
    let api = FakeApi::start();
    let before = api.resource_version();
    let mut policies = Http::connect(&api);
    let mut pods = Http::connect(&api);
    policies.send(
        "GET",
        &format!("{POLICIES}?watch=true&resourceVersion={before}"),
        "",
        None,
    );
    assert_eq!(policies.head().unwrap().0, 200);
    pods.send(
        "GET",
        &format!("/api/v1/pods?watch=1&resourceVersion={before}"),
        "",
        None,
    );
    assert_eq!(pods.head().unwrap().0, 200);
    crate::support::wait_until("both watches", Duration::from_secs(2), || {
        api.open_watches() == 2
    });

    // Interleaved, so that a change of the wrong kind would come before the right ones that follow.
    api.add_pod(FakePod::new("shop", "web-0"));
    let added = api.add_network_policy(policy("shop", "deny-all"));
    api.update_pod(FakePod::new("shop", "web-0").ip("10.1.0.1"));
    let mut changed = policy("shop", "deny-all");
    changed["spec"]["egress"] = json!([{"to": [{"podSelector": {}}]}]);
    let modified = api.add_network_policy(changed);
    let deleted = api.delete_network_policy("shop", "deny-all");
    api.add_pod(FakePod::new("shop", "web-1"));
    api.add_network_policy(policy("db", "last"));

    let events: Vec<Value> = (0..4).map(|_| policies.watch_event().unwrap()).collect();
    let seen: Vec<String> = events.iter().map(described).collect();
    assert_eq!(
        seen,
        [
            "ADDED deny-all",
            "MODIFIED deny-all",
            "DELETED deny-all",
            "ADDED last"
        ]
    );
    assert_eq!(
        [
            &events[0]["object"],
            &events[1]["object"],
            &events[2]["object"]
        ],
        [&added, &modified, &deleted]
    );
    // The same uid and creation, a new generation for a new spec, and the defaults follow the spec.
    assert_eq!(modified["metadata"]["uid"], added["metadata"]["uid"]);
    assert_eq!(modified["metadata"]["generation"], 2);
    assert_eq!(
        modified["spec"]["policyTypes"],
        json!(["Ingress", "Egress"])
    );
    assert_eq!(
        deleted["metadata"]["resourceVersion"],
        (api.resource_version() - 2).to_string()
    );

    let seen: Vec<String> = (0..3)
        .map(|_| described(&pods.watch_event().unwrap()))
        .collect();
    assert_eq!(seen, ["ADDED web-0", "MODIFIED web-0", "ADDED web-1"]);
    api.add_pod(FakePod::new("shop", "web-2"));
    assert_eq!(described(&pods.watch_event().unwrap()), "ADDED web-2");
    api.close_watches();
    assert_eq!(policies.watch_event(), None);
    assert_eq!(pods.watch_event(), None);

    // From "0" in one namespace: its current policies as ADDED, then its changes only.
    policies.send(
        "GET",
        &format!("{}?watch=1&resourceVersion=0", policies_in("db")),
        "",
        None,
    );
    policies.head().unwrap();
    assert_eq!(described(&policies.watch_event().unwrap()), "ADDED last");
    api.add_network_policy(policy("shop", "elsewhere"));
    api.add_network_policy(policy("db", "here"));
    assert_eq!(described(&policies.watch_event().unwrap()), "ADDED here");
    api.close_watches();
    assert_eq!(policies.watch_event(), None);
}

#[test]
fn sends_network_policy_bookmarks() {
    let api = FakeApi::start();
    api.set_bookmarks(Some(Duration::from_millis(200)));
    let rv = api.resource_version();
    let mut http = Http::connect(&api);
    http.send(
        "GET",
        &format!(
            "{POLICIES}?watch=true&allowWatchBookmarks=true&timeoutSeconds=1&resourceVersion={rv}"
        ),
        "",
        None,
    );
    http.head().unwrap();
    let bookmark = http.watch_event().unwrap();
    assert_eq!(
        bookmark,
        json!({"type": "BOOKMARK", "object": {
            "kind": "NetworkPolicy",
            "apiVersion": "networking.k8s.io/v1",
            "metadata": {"resourceVersion": rv.to_string()},
        }})
    );
    while http.watch_event().is_some() {}
}

#[test]
fn answers_410_for_expired_network_policy_versions() {
    let api = FakeApi::start();
    let before = api.resource_version();
    api.add_network_policy(policy("shop", "deny-all"));
    api.add_network_policy(policy("shop", "allow-web"));
    let mut http = Http::connect(&api);
    let page = http.request("GET", &format!("{POLICIES}?limit=1"), None);
    let token = page.body["metadata"]["continue"]
        .as_str()
        .unwrap()
        .to_string();
    api.expire_history();

    let watch = format!("{POLICIES}?watch=true&resourceVersion={before}");
    http.send("GET", &watch, "", None);
    assert_eq!(http.head().unwrap().0, 200);
    let error = http.watch_event().unwrap();
    assert_eq!(error["type"], "ERROR");
    assert_eq!(
        (&error["object"]["code"], &error["object"]["reason"]),
        (&json!(410), &json!("Expired"))
    );
    assert_eq!(http.watch_event(), None, "the stream ends after the error");

    api.set_expired_answer(ExpiredAnswer::HttpStatus);
    let gone = http.request("GET", &watch, None);
    assert_eq!((gone.code, &gone.body["reason"]), (410, &json!("Expired")));
    let stale = http.request("GET", &format!("{POLICIES}?limit=1&continue={token}"), None);
    assert_eq!(
        (stale.code, &stale.body["reason"]),
        (410, &json!("Expired"))
    );
    let list = http.request("GET", POLICIES, None);
    assert_eq!(
        list.body["metadata"]["resourceVersion"],
        api.resource_version().to_string()
    );
    assert_eq!(names(&list.body["items"]), ["allow-web", "deny-all"]);
}

#[test]
fn forbids_network_policies_as_rbac_does() {
    let api = FakeApi::start();
    api.add_network_policy(policy("shop", "deny-all"));
    api.forbid_network_policies();
    let mut http = Http::connect(&api);

    let cannot = |verb: &str, scope: &str| {
        format!(
            "User \"{AGENT_USER}\" cannot {verb} resource \"networkpolicies\" in API group \
             \"networking.k8s.io\" {scope}"
        )
    };
    let list = http.request("GET", POLICIES, None);
    assert_eq!(list.code, 403);
    assert_eq!(
        list.body,
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "networkpolicies.networking.k8s.io is forbidden: User \
                \"system:serviceaccount:kube-system:kube-iptables-tailer\" cannot list resource \
                \"networkpolicies\" in API group \"networking.k8s.io\" at the cluster scope",
            "reason": "Forbidden",
            "details": {"group": "networking.k8s.io", "kind": "networkpolicies"},
            "code": 403,
        })
    );
    // A forbidden watch is refused before it starts: a plain 403, no stream.
    let watch = http.request(
        "GET",
        &format!("{POLICIES}?watch=true&resourceVersion=0"),
        None,
    );
    assert_eq!(
        (watch.code, watch.body["message"].as_str().unwrap()),
        (
            403,
            format!(
                "networkpolicies.networking.k8s.io is forbidden: {}",
                cannot("watch", "at the cluster scope")
            )
            .as_str()
        )
    );
    let in_shop = http.request("GET", &policies_in("shop"), None);
    assert_eq!(
        in_shop.body["message"],
        format!(
            "networkpolicies.networking.k8s.io is forbidden: {}",
            cannot("list", "in the namespace \"shop\"")
        )
    );
    let one = http.request("GET", &format!("{}/deny-all", policies_in("shop")), None);
    assert_eq!(
        one.body["message"],
        format!(
            "networkpolicies.networking.k8s.io \"deny-all\" is forbidden: {}",
            cannot("get", "in the namespace \"shop\"")
        )
    );
    assert_eq!(one.body["details"]["name"], "deny-all");

    // Discovery and pods are not refused.
    assert_eq!(
        http.request("GET", "/apis/networking.k8s.io/v1", None).code,
        200
    );
    assert_eq!(http.request("GET", "/api/v1/pods", None).code, 200);
    let statuses: Vec<Option<u16>> = api.requests().iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [
            Some(403),
            Some(403),
            Some(403),
            Some(403),
            Some(200),
            Some(200)
        ]
    );

    api.clear_faults();
    assert_eq!(
        names(&http.request("GET", POLICIES, None).body["items"]),
        ["deny-all"]
    );
}

#[test]
fn creates_replaces_and_deletes_network_policies_over_http() {
    let api = FakeApi::start();
    let mut http = Http::connect(&api);
    let mut body = policy("shop", "deny-all");
    body["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("namespace");

    let created = http.request("POST", &policies_in("shop"), Some(&body));
    assert_eq!(created.code, 201);
    assert_eq!(created.body["metadata"]["namespace"], "shop");
    assert_eq!(api.network_policies(), vec![created.body.clone()]);
    let again = http.request("POST", &policies_in("shop"), Some(&body));
    assert_eq!(
        (again.code, &again.body["reason"]),
        (409, &json!("AlreadyExists"))
    );

    let target = format!("{}/deny-all", policies_in("shop"));
    let mut replacement = created.body.clone();
    replacement["spec"]["policyTypes"] = json!(["Egress"]);
    let replaced = http.request("PUT", &target, Some(&replacement));
    assert_eq!(replaced.code, 200);
    assert_eq!(replaced.body["spec"]["policyTypes"], json!(["Egress"]));
    assert_eq!(
        replaced.body["metadata"]["uid"],
        created.body["metadata"]["uid"]
    );
    let stale = http.request("PUT", &target, Some(&replacement));
    assert_eq!(
        (stale.code, &stale.body["reason"]),
        (409, &json!("Conflict"))
    );

    let deleted = http.request("DELETE", &target, None);
    assert_eq!(
        (deleted.code, &deleted.body["metadata"]["name"]),
        (200, &json!("deny-all"))
    );
    assert!(api.network_policies().is_empty());
    assert_eq!(http.request("DELETE", &target, None).code, 404);
    assert_eq!(http.request("PUT", &target, Some(&replacement)).code, 404);
    // Patches are not served (discovery does not name them), and nothing else of the group is.
    assert_eq!(http.request("PATCH", &target, Some(&json!({}))).code, 405);
    let ingresses = http.request("GET", "/apis/networking.k8s.io/v1/ingresses", None);
    assert_eq!(ingresses.code, 404);
}

type PolicyEvent = Result<
    kube::runtime::watcher::Event<k8s_openapi::api::networking::v1::NetworkPolicy>,
    kube::runtime::watcher::Error,
>;

/// The next `count` watcher events, each as "Init", "InitApply ns/name", "Apply ns/name", ...
async fn next_events<S>(stream: &mut S, count: usize) -> Vec<String>
where
    S: futures_util::Stream<Item = PolicyEvent> + Unpin,
{
    use futures_util::StreamExt;
    use kube::runtime::watcher::{Error, Event};
    use kube::{Resource, ResourceExt};

    let key = |policy: &k8s_openapi::api::networking::v1::NetworkPolicy| {
        format!("{}/{}", policy.namespace().unwrap(), policy.name_any())
    };
    let mut described = Vec::new();
    for _ in 0..count {
        let next = tokio::time::timeout(Duration::from_secs(2), stream.next()).await;
        let event = next
            .expect("a watcher event within 2 s")
            .expect("the stream goes on");
        described.push(match event {
            Ok(Event::Init) => "Init".to_string(),
            Ok(Event::InitApply(policy)) => format!("InitApply {}", key(&policy)),
            Ok(Event::InitDone) => "InitDone".to_string(),
            Ok(Event::Apply(policy)) => format!(
                "Apply {} generation {}",
                key(&policy),
                policy.meta().generation.unwrap()
            ),
            Ok(Event::Delete(policy)) => format!("Delete {}", key(&policy)),
            Err(Error::InitialListFailed(kube::Error::Api(status))) => {
                format!("InitialListFailed {} {}", status.code, status.message)
            }
            Err(other) => format!("error {other}"),
        });
    }
    described
}

#[test]
fn serves_kube_rs_discovery_and_watcher_on_network_policies() {
    use k8s_openapi::api::networking::v1::NetworkPolicy;
    use kube::api::{Api, GroupVersionKind};
    use kube::discovery::{Discovery, Scope};
    use kube::runtime::watcher;

    let api = FakeApi::start();
    api.add_network_policy(policy("shop", "deny-all"));
    let (discovered, first, second, streamed) = block_on(async {
        let discovery = Discovery::new(client(&api)).run().await.unwrap();
        let gvk = GroupVersionKind::gvk("networking.k8s.io", "v1", "NetworkPolicy");
        let (resource, capabilities) = discovery.resolve_gvk(&gvk).unwrap();
        let discovered = (
            resource.plural,
            capabilities.scope == Scope::Namespaced,
            discovery.has_group(""),
        );

        let policies: Api<NetworkPolicy> = Api::all(client(&api));
        let mut stream = std::pin::pin!(watcher(policies.clone(), watcher::Config::default()));
        let first = next_events(&mut stream, 3).await;
        api.add_network_policy(policy("db", "allow-shop"));
        api.add_pod(FakePod::new("shop", "web-0"));
        let mut changed = policy("db", "allow-shop");
        changed["spec"]["policyTypes"] = json!(["Ingress", "Egress"]);
        api.add_network_policy(changed);
        api.delete_network_policy("shop", "deny-all");
        let second = next_events(&mut stream, 3).await;

        // The streaming list (sendInitialEvents, ended by a bookmark) works the same way.
        let config = watcher::Config::default().streaming_lists();
        let mut stream = std::pin::pin!(watcher(policies, config));
        let streamed = next_events(&mut stream, 3).await;
        (discovered, first, second, streamed)
    });
    assert_eq!(discovered, ("networkpolicies".to_string(), true, true));
    assert_eq!(first, ["Init", "InitApply shop/deny-all", "InitDone"]);
    assert_eq!(
        second,
        [
            "Apply db/allow-shop generation 1",
            "Apply db/allow-shop generation 2",
            "Delete shop/deny-all",
        ]
    );
    assert_eq!(streamed, ["Init", "InitApply db/allow-shop", "InitDone"]);

    // The stored objects decode into k8s-openapi's NetworkPolicy with the defaults filled in.
    let decoded: NetworkPolicy = serde_json::from_value(api.network_policies()[0].clone()).unwrap();
    let spec = decoded.spec.unwrap();
    assert_eq!(
        spec.pod_selector.unwrap().match_labels.unwrap()["app"],
        "allow-shop"
    );
    assert_eq!(
        spec.policy_types.unwrap(),
        ["Ingress".to_string(), "Egress".to_string()]
    );
}

#[test]
fn shows_the_kube_rs_watcher_a_403_for_forbidden_network_policies() {
    use k8s_openapi::api::networking::v1::NetworkPolicy;
    use kube::api::Api;
    use kube::runtime::watcher;

    let api = FakeApi::start();
    api.forbid_network_policies();
    let first = block_on(async {
        let policies: Api<NetworkPolicy> = Api::all(client(&api));
        let mut stream = std::pin::pin!(watcher(policies, watcher::Config::default()));
        next_events(&mut stream, 2).await
    });
    assert_eq!(
        first,
        [
            "Init".to_string(),
            format!(
                "InitialListFailed 403 networkpolicies.networking.k8s.io is forbidden: User \
             \"{AGENT_USER}\" cannot list resource \"networkpolicies\" in API group \
             \"networking.k8s.io\" at the cluster scope"
            )
        ]
    );
}
