//! What the fake API server holds: pods and NetworkPolicies with their change history (for watches),
//! paged list snapshots (for continue tokens; one shared copy per list, however many pages it has) and
//! core/v1 Events. All objects are `serde_json::Value`s
//! shaped like the real API's, so what a client decodes here it would decode from a cluster.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::{Value, json};

use super::network_policy;
use super::pod::{FakePod, pod_json};
use super::resource::Resource;
use super::selector::FieldSelector;

/// One change to a pod or a NetworkPolicy, as a watch delivers it.
pub struct Change {
    pub resource_version: u64,
    /// One log for every kind, as etcd has one revision: each watch keeps its own kind's changes.
    pub resource: Resource,
    /// ADDED, MODIFIED or DELETED.
    pub kind: &'static str,
    pub namespace: String,
    pub object: Value,
}

/// Where a paged list goes on, kept under its continue token: the list's snapshot, shared by all its
/// tokens (copying the rest of the list for each page held n²/1000 objects for n pods: gigabytes for
/// 150,000), and the first item of the next page.
struct Page {
    /// A token is for the list it came from, not another kind's.
    resource: Resource,
    resource_version: u64,
    items: Arc<Vec<Value>>,
    offset: usize,
}

/// A refusal in the API's terms: an HTTP code and a `Status` body.
pub type Refusal = (u16, Value);

pub struct Store {
    resource_version: u64,
    /// Watches and continue tokens from before this version are answered 410 Expired.
    oldest_kept: u64,
    pods: BTreeMap<(String, String), Value>,
    /// The pods by `status.podIP`: a lookup by IP among 150,000 pods scanned them all under the
    /// server's one lock (over 100 ms each, one at a time), far slower than the API server's cache.
    pods_by_ip: HashMap<String, BTreeSet<(String, String)>>,
    network_policies: BTreeMap<(String, String), Value>,
    history: Vec<Change>,
    events: BTreeMap<(String, String), Value>,
    pages: HashMap<String, Page>,
    next_token: u64,
    next_uid: u64,
}

impl Store {
    pub fn new() -> Store {
        Store {
            // Well away from "0", which means "any version" to the API.
            resource_version: 1000,
            oldest_kept: 0,
            pods: BTreeMap::new(),
            pods_by_ip: HashMap::new(),
            network_policies: BTreeMap::new(),
            history: Vec::new(),
            events: BTreeMap::new(),
            pages: HashMap::new(),
            next_token: 1,
            next_uid: 1,
        }
    }

    pub fn resource_version(&self) -> u64 {
        self.resource_version
    }

    fn bump(&mut self) -> u64 {
        self.resource_version += 1;
        self.resource_version
    }

    fn fresh_uid(&mut self) -> String {
        let n = self.next_uid;
        self.next_uid += 1;
        format!("0fa4e000-0000-4000-8000-{n:012x}")
    }

    /// Adds (`kind` ADDED) or replaces (MODIFIED) a pod and records the change; returns the stored object.
    pub fn put_pod(&mut self, pod: &FakePod, kind: &'static str) -> Value {
        let key = (pod.namespace.clone(), pod.name.clone());
        let existing = self.pods.get(&key);
        match (kind, existing) {
            ("ADDED", Some(_)) => panic!("fake API: pod {}/{} exists", pod.namespace, pod.name),
            ("MODIFIED", None) => panic!("fake API: no pod {}/{}", pod.namespace, pod.name),
            _ => {}
        }
        let old_uid = existing.and_then(|old| old["metadata"]["uid"].as_str().map(String::from));
        let created = existing
            .and_then(|old| {
                old["metadata"]["creationTimestamp"]
                    .as_str()
                    .map(String::from)
            })
            .unwrap_or_else(now);
        let uid = match (&pod.uid, old_uid) {
            (Some(uid), _) => uid.clone(),
            (None, Some(uid)) => uid,
            (None, None) => self.fresh_uid(),
        };
        let resource_version = self.bump();
        let object = pod_json(pod, &uid, resource_version, &created);
        self.index_pod_ip(&key, false);
        self.pods.insert(key.clone(), object.clone());
        self.index_pod_ip(&key, true);
        self.record(Resource::Pod, kind, &pod.namespace, object.clone());
        object
    }

    pub fn delete_pod(&mut self, namespace: &str, name: &str) -> Value {
        self.delete(Resource::Pod, namespace, name)
    }

    /// Adds a NetworkPolicy (ADDED) or replaces the one of its namespace and name (MODIFIED, keeping its
    /// uid and creationTimestamp unless the policy gives a uid); returns the stored object.
    pub fn put_network_policy(&mut self, policy: Value) -> Value {
        let key = network_policy::key(&policy);
        let policy = network_policy::defaulted(policy);
        let existing = self.network_policies.get(&key).cloned();
        let kind = if existing.is_some() {
            "MODIFIED"
        } else {
            "ADDED"
        };
        let old = |field: &str| {
            (existing.as_ref()).and_then(|old| old["metadata"][field].as_str().map(String::from))
        };
        let created = old("creationTimestamp").unwrap_or_else(now);
        let given_uid = policy["metadata"]["uid"].as_str().map(String::from);
        let uid = match given_uid.or(old("uid")) {
            Some(uid) => uid,
            None => self.fresh_uid(),
        };
        // As the API server does: the generation moves on only when the spec changes.
        let generation = match &existing {
            None => 1,
            Some(old) => {
                let old_generation = old["metadata"]["generation"].as_u64().unwrap_or(1);
                if policy["spec"] == old["spec"] {
                    old_generation
                } else {
                    old_generation + 1
                }
            }
        };
        let resource_version = self.bump();
        let object = network_policy::stamp(policy, &uid, resource_version, generation, &created);
        self.network_policies.insert(key.clone(), object.clone());
        self.record(Resource::NetworkPolicy, kind, &key.0, object.clone());
        object
    }

    pub fn delete_network_policy(&mut self, namespace: &str, name: &str) -> Value {
        self.delete(Resource::NetworkPolicy, namespace, name)
    }

    /// Removes an object (panics if it does not exist) and records DELETED with its last state at the
    /// new version, as the API server's watch shows it.
    fn delete(&mut self, resource: Resource, namespace: &str, name: &str) -> Value {
        let key = (namespace.to_string(), name.to_string());
        if resource == Resource::Pod {
            self.index_pod_ip(&key, false);
        }
        let Some(mut object) = self.objects_mut(resource).remove(&key) else {
            panic!("fake API: no {} {namespace}/{name}", resource.kind());
        };
        let resource_version = self.bump();
        object["metadata"]["resourceVersion"] = json!(resource_version.to_string());
        self.record(resource, "DELETED", namespace, object.clone());
        object
    }

    /// Adds the stored pod `key` to `pods_by_ip` under its `status.podIP`, or takes it out.
    fn index_pod_ip(&mut self, key: &(String, String), add: bool) {
        let Some(ip) = (self.pods.get(key)).and_then(|pod| pod["status"]["podIP"].as_str()) else {
            return;
        };
        let ip = ip.to_string();
        if add {
            self.pods_by_ip.entry(ip).or_default().insert(key.clone());
        } else if let Some(keys) = self.pods_by_ip.get_mut(&ip) {
            keys.remove(key);
            if keys.is_empty() {
                self.pods_by_ip.remove(&ip);
            }
        }
    }

    fn objects(&self, resource: Resource) -> &BTreeMap<(String, String), Value> {
        match resource {
            Resource::Pod => &self.pods,
            Resource::NetworkPolicy => &self.network_policies,
        }
    }

    fn objects_mut(&mut self, resource: Resource) -> &mut BTreeMap<(String, String), Value> {
        match resource {
            Resource::Pod => &mut self.pods,
            Resource::NetworkPolicy => &mut self.network_policies,
        }
    }

    fn record(&mut self, resource: Resource, kind: &'static str, namespace: &str, object: Value) {
        self.history.push(Change {
            resource_version: self.resource_version,
            resource,
            kind,
            namespace: namespace.to_string(),
            object,
        });
    }

    pub fn pods(&self) -> Vec<Value> {
        self.pods.values().cloned().collect()
    }

    pub fn network_policies(&self) -> Vec<Value> {
        self.network_policies.values().cloned().collect()
    }

    /// Forgets every version so far, as etcd compaction does: the version moves on by one (as if some
    /// other object changed) and only watches and continue tokens from the new one are served.
    pub fn expire_history(&mut self) {
        self.oldest_kept = self.bump();
        self.pages.clear();
    }

    pub fn is_expired(&self, resource_version: u64) -> bool {
        resource_version < self.oldest_kept
    }

    /// The changes to `resource` after `resource_version` in `namespace` (all when `None`) whose
    /// object `selector` selects.
    pub fn changes_after(
        &self,
        resource_version: u64,
        resource: Resource,
        namespace: Option<&str>,
        selector: &FieldSelector,
    ) -> Vec<&Change> {
        let start = self
            .history
            .partition_point(|change| change.resource_version <= resource_version);
        self.history[start..]
            .iter()
            .filter(|change| change.resource == resource)
            .filter(|change| namespace.is_none_or(|ns| ns == change.namespace))
            .filter(|change| selector.matches(&change.object))
            .collect()
    }

    /// The current objects of `resource` in `namespace` (all when `None`) that `selector` selects,
    /// in key order.
    pub fn objects_in(
        &self,
        resource: Resource,
        namespace: Option<&str>,
        selector: &FieldSelector,
    ) -> Vec<Value> {
        if let (Resource::Pod, Some(ip)) = (resource, selector.pod_ip()) {
            let keys = self.pods_by_ip.get(ip).into_iter().flatten();
            return (keys.filter_map(|key| self.pods.get(key)))
                .filter(|pod| namespace.is_none_or(|wanted| pod["metadata"]["namespace"] == wanted))
                .filter(|pod| selector.matches(pod))
                .cloned()
                .collect();
        }
        self.objects(resource)
            .iter()
            .filter(|((ns, _), _)| namespace.is_none_or(|wanted| wanted == ns))
            .filter(|(_, object)| selector.matches(object))
            .map(|(_, object)| object.clone())
            .collect()
    }

    /// One page of a list of `resource`: the first when `continue_token` is `None`.
    pub fn list(
        &mut self,
        resource: Resource,
        namespace: Option<&str>,
        selector: &FieldSelector,
        limit: Option<usize>,
        continue_token: Option<&str>,
    ) -> Result<Value, Refusal> {
        let (resource_version, items, offset) = match continue_token {
            None => (
                self.resource_version,
                Arc::new(self.objects_in(resource, namespace, selector)),
                0,
            ),
            Some(token) => match self.pages.get(token) {
                Some(page) if page.resource != resource => {
                    return Err(status(
                        400,
                        "continue key is not valid: not for this resource",
                    ));
                }
                Some(page) => (page.resource_version, page.items.clone(), page.offset),
                None => {
                    return Err(status(
                        410,
                        "The provided continue parameter is too old to display a consistent list \
                         result. You can start a new list without the continue parameter.",
                    ));
                }
            },
        };
        let mut metadata = json!({"resourceVersion": resource_version.to_string()});
        let limit = limit.filter(|limit| *limit > 0).unwrap_or(usize::MAX);
        let end = offset.saturating_add(limit).min(items.len());
        let page = items[offset..end].to_vec();
        if end < items.len() {
            let token = format!("fake-continue-{}", self.next_token);
            self.next_token += 1;
            metadata["continue"] = json!(token);
            metadata["remainingItemCount"] = json!(items.len() - end);
            self.pages.insert(
                token,
                Page {
                    resource,
                    resource_version,
                    items,
                    offset: end,
                },
            );
        }
        Ok(json!({
            "apiVersion": resource.api_version(),
            "kind": resource.list_kind(),
            "metadata": metadata,
            "items": page,
        }))
    }

    /// One object of `resource`.
    pub fn object(&self, resource: Resource, namespace: &str, name: &str) -> Option<Value> {
        self.objects(resource)
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    pub fn events(&self) -> Vec<Value> {
        self.events.values().cloned().collect()
    }

    pub fn event(&self, namespace: &str, name: &str) -> Option<Value> {
        self.events
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    pub fn list_events(&self, namespace: &str) -> Value {
        let items: Vec<Value> = self
            .events
            .iter()
            .filter(|((ns, _), _)| ns == namespace)
            .map(|(_, event)| event.clone())
            .collect();
        json!({
            "apiVersion": "v1",
            "kind": "EventList",
            "metadata": {"resourceVersion": self.resource_version.to_string()},
            "items": items,
        })
    }

    /// `POST .../namespaces/{ns}/events`: 201 with the stored object, or 409 AlreadyExists.
    pub fn create_event(&mut self, namespace: &str, mut body: Value) -> Result<Value, Refusal> {
        if !body.is_object() {
            return Err(status(400, "the body is not a JSON object"));
        }
        let metadata = &body["metadata"];
        if metadata["namespace"]
            .as_str()
            .is_some_and(|ns| !ns.is_empty() && ns != namespace)
        {
            return Err(status(
                400,
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let name = match (metadata["name"].as_str(), metadata["generateName"].as_str()) {
            (Some(name), _) if !name.is_empty() => name.to_string(),
            (_, Some(prefix)) => format!("{prefix}{:05x}", self.next_uid),
            _ => {
                return Err(status(
                    422,
                    "Event is invalid: metadata.name: Required value",
                ));
            }
        };
        let key = (namespace.to_string(), name.clone());
        if self.events.contains_key(&key) {
            return Err(status(409, &format!("events \"{name}\" already exists")));
        }
        let uid = self.fresh_uid();
        let resource_version = self.bump();
        let metadata = &mut body["metadata"];
        metadata["name"] = json!(name);
        metadata["namespace"] = json!(namespace);
        metadata["uid"] = json!(uid);
        metadata["resourceVersion"] = json!(resource_version.to_string());
        metadata["creationTimestamp"] = json!(now());
        if body.get("apiVersion").is_none() {
            body["apiVersion"] = json!("v1");
        }
        if body.get("kind").is_none() {
            body["kind"] = json!("Event");
        }
        self.events.insert(key, body.clone());
        Ok(body)
    }

    /// `PATCH` (JSON merge patch) or `PUT` (replace) of an Event: 200, 404, or 409 when the request
    /// names a resourceVersion that is no longer the stored one.
    pub fn change_event(
        &mut self,
        namespace: &str,
        name: &str,
        body: &Value,
        replace: bool,
    ) -> Result<Value, Refusal> {
        let key = (namespace.to_string(), name.to_string());
        let Some(stored) = self.events.get(&key) else {
            return Err(status(404, &format!("events \"{name}\" not found")));
        };
        let wanted = body["metadata"]["resourceVersion"].as_str();
        if wanted
            .is_some_and(|wanted| Some(wanted) != stored["metadata"]["resourceVersion"].as_str())
        {
            return Err(status(
                409,
                &format!(
                    "Operation cannot be fulfilled on events \"{name}\": the object has been \
                     modified; please apply your changes to the latest version and try again"
                ),
            ));
        }
        let mut changed = if replace {
            body.clone()
        } else {
            let mut merged = stored.clone();
            merge_patch(&mut merged, body);
            merged
        };
        // Identity fields are the server's, whatever the request says.
        for field in ["name", "namespace", "uid", "creationTimestamp"] {
            changed["metadata"][field] = stored["metadata"][field].clone();
        }
        let resource_version = self.bump();
        changed["metadata"]["resourceVersion"] = json!(resource_version.to_string());
        self.events.insert(key, changed.clone());
        Ok(changed)
    }
}

/// RFC 7386 JSON merge patch: objects merge key by key, `null` removes, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// A `Status` body for `code`, with the reason the API server gives for it.
pub fn status(code: u16, message: &str) -> Refusal {
    let reason = match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 if message.contains("already exists") => "AlreadyExists",
        409 => "Conflict",
        410 => "Expired",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    };
    let body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    (code, body)
}

/// Now as the API formats timestamps (RFC 3339, seconds, UTC).
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
