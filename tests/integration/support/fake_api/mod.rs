//! A fake Kubernetes API server on loopback for the agent's integration tests: real HTTP/1.1 with
//! keep-alive, pods and networking.k8s.io/v1 NetworkPolicies listed (paged, from one shared snapshot per
//! list) and watched (chunked, with 410 Expired after `expire_history`), both by `fieldSelector`,
//! core/v1 Events created, read and merge-patched, faults a test scripts (a 403 for NetworkPolicies
//! among them), and a record of every request with the bytes answered to it.
//!
//! It serves only what the agent uses, but serves it as the API server does, so that kube-rs talks to it
//! unchanged (`fake_api_selftest` proves that with kube-rs itself).
//!
//! ```ignore
//! let api = FakeApi::start();
//! api.add_pod(FakePod::new("shop", "web-0").ip("10.1.0.5").label("app", "web"));
//! agent_env.push(("KUBE_API_SERVER", api.url()));
//! api.fault("POST", "/api/v1/namespaces/", 1, Fault::retry_after(429, 1));
//! api.add_network_policy(json!({
//!     "metadata": {"namespace": "shop", "name": "deny-all"},
//!     "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
//! }));
//! api.forbid_network_policies(); // 403 as RBAC words it, until clear_faults
//! ```

#[path = "../enter_netns.rs"]
pub mod enter_netns;
mod faults;
mod http;
mod network_policy;
mod pod;
mod resource;
mod routes;
mod selector;
mod server;
mod store;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

pub use faults::{Fault, Recorded};
pub use pod::FakePod;

/// The prefix of every NetworkPolicy path (cluster-wide and namespaced), and not of discovery's
/// `/apis/networking.k8s.io/v1`.
const NETWORK_POLICY_PATHS: &str = "/apis/networking.k8s.io/v1/";

/// How a watch from a version older than the fake keeps is answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExpiredAnswer {
    /// HTTP 200, then one `ERROR` event with a 410 Expired `Status`, then the end: what the API
    /// server does for a watch.
    #[default]
    ErrorEvent,
    /// HTTP 410 with the `Status` as the body.
    HttpStatus,
}

/// Everything the server threads and the test share, behind one lock.
struct State {
    store: store::Store,
    rules: Vec<faults::Rule>,
    requests: Vec<Recorded>,
    /// Requests forgotten from the front of `requests` (a soak makes millions).
    forgotten_requests: usize,
    down: bool,
    refusing: bool,
    expired_answer: ExpiredAnswer,
    bookmark_every: Option<Duration>,
    /// Bumped by `close_watches`: watches started under an older one end.
    watch_generation: u64,
    open_watches: usize,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled on every change a watch may be waiting for (pods, policies, closing, stopping).
    changed: Condvar,
    stopping: AtomicBool,
    /// A clone of every open connection, to shut them down from outside their thread.
    connections: Mutex<HashMap<u64, TcpStream>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking server thread must not hide the test's own assertion behind a poison error.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn shutdown_connections(&self) {
        let connections = self
            .connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for stream in connections.values() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// The fake API server; it stops (listener and every connection closed) when dropped.
pub struct FakeApi {
    address: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
    /// The network namespace it listens in, when not the test's own.
    netns: Option<String>,
}

impl FakeApi {
    /// The user a [`Fault::Forbidden`] refuses: the agent's service account in its manifests.
    // An associated constant, not a re-export: the benches include this module and allow only dead code.
    pub const AGENT_USER: &str = faults::AGENT_USER;

    /// Listens on a free loopback port; each connection is served on its own thread.
    pub fn start() -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("fake API: bind 127.0.0.1:0");
        let address = listener.local_addr().expect("fake API: local address");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                store: store::Store::new(),
                rules: Vec::new(),
                requests: Vec::new(),
                forgotten_requests: 0,
                down: false,
                refusing: false,
                expired_answer: ExpiredAnswer::default(),
                bookmark_every: None,
                watch_generation: 0,
                open_watches: 0,
            }),
            changed: Condvar::new(),
            stopping: AtomicBool::new(false),
            connections: Mutex::new(HashMap::new()),
            threads: Mutex::new(Vec::new()),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("fake-api-accept".to_string())
                .spawn(move || server::accept(listener, shared))
                .expect("fake API: spawn the acceptor")
        };
        FakeApi {
            address,
            shared,
            acceptor: Some(acceptor),
            netns: None,
        }
    }

    /// Listens on loopback inside the network namespace `netns`, for an agent that runs there.
    pub fn start_in_netns(netns: &str) -> FakeApi {
        let mut api = enter_netns::in_netns(netns, FakeApi::start);
        api.netns = Some(netns.to_string());
        api
    }

    /// `http://127.0.0.1:PORT`, for `KUBE_API_SERVER`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Adds a pod (panics if it exists); open watches get ADDED. Returns the stored Pod object.
    pub fn add_pod(&self, pod: FakePod) -> Value {
        self.change(|store| store.put_pod(&pod, "ADDED"))
    }

    /// Replaces a pod (panics if it does not exist; `uid: None` keeps its uid); watches get MODIFIED.
    pub fn update_pod(&self, pod: FakePod) -> Value {
        self.change(|store| store.put_pod(&pod, "MODIFIED"))
    }

    /// Deletes a pod (panics if it does not exist); watches get DELETED with its last state.
    pub fn delete_pod(&self, namespace: &str, name: &str) -> Value {
        self.change(|store| store.delete_pod(namespace, name))
    }

    /// Adds a networking.k8s.io/v1 NetworkPolicy, given as JSON with at least
    /// `metadata.namespace` and `metadata.name` (apiVersion and kind may be left out), or replaces
    /// the one of that namespace and name. The fake sets uid (a given one is kept), resourceVersion,
    /// generation, creationTimestamp and the spec defaults the API server applies (`podSelector`,
    /// `policyTypes`); open watches get ADDED, or MODIFIED for a replacement. Returns the stored object.
    pub fn add_network_policy(&self, policy: Value) -> Value {
        self.change(|store| store.put_network_policy(policy))
    }

    /// Deletes a NetworkPolicy (panics if it does not exist); watches get DELETED with its last state.
    pub fn delete_network_policy(&self, namespace: &str, name: &str) -> Value {
        self.change(|store| store.delete_network_policy(namespace, name))
    }

    /// The stored NetworkPolicy objects, ordered by namespace and name.
    pub fn network_policies(&self) -> Vec<Value> {
        self.shared.lock().store.network_policies()
    }

    fn change(&self, change: impl FnOnce(&mut store::Store) -> Value) -> Value {
        let object = change(&mut self.shared.lock().store);
        self.shared.changed.notify_all();
        object
    }

    /// The stored Pod objects, ordered by namespace and name.
    pub fn pods(&self) -> Vec<Value> {
        self.shared.lock().store.pods()
    }

    /// The current global resourceVersion (pods, NetworkPolicies and Events share it, as in etcd).
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().store.resource_version()
    }

    /// Forgets all versions so far, as compaction does: the version moves on by one, and a watch
    /// or continue token from any earlier version gets 410 Expired. Open watches go on.
    pub fn expire_history(&self) {
        self.change(|store| {
            store.expire_history();
            Value::Null
        });
    }

    /// Ends every open watch cleanly (the chunked stream is finished), as the API server does at its
    /// timeout; clients re-watch from the last version they saw.
    pub fn close_watches(&self) {
        self.shared.lock().watch_generation += 1;
        self.shared.changed.notify_all();
    }

    /// The number of watches being streamed now.
    pub fn open_watches(&self) -> usize {
        self.shared.lock().open_watches
    }

    /// How an expired watch is answered (default: 200 + an ERROR event).
    pub fn set_expired_answer(&self, answer: ExpiredAnswer) {
        self.shared.lock().expired_answer = answer;
    }

    /// Sends a BOOKMARK this often on watches that allow them (default: never).
    pub fn set_bookmarks(&self, every: Option<Duration>) {
        self.shared.lock().bookmark_every = every;
        self.shared.changed.notify_all();
    }

    /// The stored Event objects, ordered by namespace and name.
    pub fn events(&self) -> Vec<Value> {
        self.shared.lock().store.events()
    }

    pub fn event(&self, namespace: &str, name: &str) -> Option<Value> {
        self.shared.lock().store.event(namespace, name)
    }

    /// Changes a stored Event as another client's merge patch would (its resourceVersion moves on).
    pub fn patch_event(&self, namespace: &str, name: &str, patch: &Value) -> Value {
        self.shared
            .lock()
            .store
            .change_event(namespace, name, patch, false)
            .unwrap_or_else(|_| panic!("no Event {namespace}/{name} to patch"))
    }

    /// The next `times` requests with `method` (`"*"`: any) and a path starting with `path_prefix`
    /// get `fault`. Rules are tried in the order they were added.
    pub fn fault(&self, method: &str, path_prefix: &str, times: usize, fault: Fault) {
        self.add_rule(method, path_prefix, Some(times), None, fault);
    }

    /// Like [`FakeApi::fault`], for every matching request during `duration` from now.
    pub fn fault_for(&self, method: &str, path_prefix: &str, duration: Duration, fault: Fault) {
        self.add_rule(
            method,
            path_prefix,
            None,
            Some(Instant::now() + duration),
            fault,
        );
    }

    /// Every NetworkPolicy request (list, watch, get and writes, in every namespace) is answered 403
    /// Forbidden as a cluster answers when the agent's ClusterRole lacks the grant: a `Status` with
    /// reason Forbidden, `details` {group, kind}, and a message such as `networkpolicies.networking.k8s.io
    /// is forbidden: User "system:serviceaccount:kube-system:kube-iptables-tailer" cannot list resource
    /// "networkpolicies" in API group "networking.k8s.io" at the cluster scope`. Discovery still answers
    /// (any authenticated user may read it). Lasts until [`FakeApi::clear_faults`]; for a while only,
    /// use `fault_for("*", "/apis/networking.k8s.io/v1/", duration, Fault::Forbidden)`.
    pub fn forbid_network_policies(&self) {
        // A plain `Fault::status(403)` on this prefix would refuse too, but with a generic message and
        // no `details`: an agent that reports the missing permission should be tested on the real words.
        self.add_rule("*", NETWORK_POLICY_PATHS, None, None, Fault::Forbidden);
    }

    /// Every request during `duration` from now is answered `status`.
    pub fn fail_for(&self, duration: Duration, status: u16) {
        self.fault_for("*", "/", duration, Fault::status(status));
    }

    fn add_rule(
        &self,
        method: &str,
        path_prefix: &str,
        times: Option<usize>,
        until: Option<Instant>,
        fault: Fault,
    ) {
        self.shared.lock().rules.push(faults::Rule {
            method: method.to_string(),
            path_prefix: path_prefix.to_string(),
            times,
            until,
            fault,
        });
    }

    pub fn clear_faults(&self) {
        self.shared.lock().rules.clear();
    }

    /// While down, every request is answered 503; going down also ends open watches.
    pub fn set_down(&self, down: bool) {
        let mut state = self.shared.lock();
        state.down = down;
        if down {
            state.watch_generation += 1;
        }
        drop(state);
        self.shared.changed.notify_all();
    }

    /// While refusing, every new connection is closed at once without reading it, and going into
    /// it closes every open connection (a crashed server; clients see resets, not answers).
    pub fn set_refusing(&self, refusing: bool) {
        self.shared.lock().refusing = refusing;
        if refusing {
            self.shared.shutdown_connections();
            self.shared.changed.notify_all();
        }
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    /// The requests with `method` (`"*"`: any) whose path starts with `path_prefix`.
    pub fn requests_to(&self, method: &str, path_prefix: &str) -> Vec<Recorded> {
        let any = method.is_empty() || method == "*";
        (self.shared.lock().requests.iter())
            .filter(|request| any || request.method.eq_ignore_ascii_case(method))
            .filter(|request| request.path.starts_with(path_prefix))
            .cloned()
            .collect()
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the acceptor out of accept(); it sees `stopping` and returns, closing the listener.
        let wake = || TcpStream::connect_timeout(&self.address, Duration::from_secs(1));
        let _ = match &self.netns {
            Some(netns) => enter_netns::in_netns(netns, wake),
            None => wake(),
        };
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        self.shared.shutdown_connections();
        self.shared.changed.notify_all();
        let threads = std::mem::take(
            &mut *self
                .shared
                .threads
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        for thread in threads {
            if thread.join().is_err() {
                eprintln!("fake API: a connection thread panicked");
            }
        }
    }
}
