//! A pod-list server for the agent's pod index at the size of a large cluster: `GET /api/v1/pods` in
//! pages serialized in advance (`continue` is the page number), and a watch that stays open without
//! events; anything else is 404. The integration tests' fake API keeps the rest of a paged list under
//! each continue token, so a list of n pods in pages of 500 holds about n²/1000 pod objects (10
//! million, many gigabytes, for 100,000 pods); this one holds each page once.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::pods::{self, SyntheticPod};

/// How much of a pod the server sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodShape {
    /// The fields a node agent reads and little more (about 700 bytes of JSON).
    Small,
    /// A pod as a real API server sends it: two containers with probes, resources and env, volumes,
    /// tolerations, conditions, container statuses, owner references and managedFields (about 7 KB).
    Full,
}

/// Serves the pods of [`SyntheticPod`] `0..pods` (IPv4 10.0.0.0 + n) in pages of `page` pods; stops
/// when dropped.
pub struct ListServer {
    address: SocketAddr,
    stopping: Arc<AtomicBool>,
    /// When the first list request and the last page's request arrived.
    times: Arc<Mutex<(Option<Instant>, Option<Instant>)>>,
    acceptor: Option<JoinHandle<()>>,
    list_bytes: usize,
}

impl ListServer {
    pub fn start(pods: u32, page: usize, shape: PodShape) -> ListServer {
        let pages = Arc::new(pod_pages(pods, page, shape));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let address = listener.local_addr().expect("local address");
        let list_bytes = pages.iter().map(Vec::len).sum();
        let stopping = Arc::new(AtomicBool::new(false));
        let times = Arc::new(Mutex::new((None, None)));
        let acceptor = {
            let (stopping, times) = (stopping.clone(), times.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let (pages, stopping, times) = (pages.clone(), stopping.clone(), times.clone());
                    std::thread::spawn(move || serve_pages(stream, &pages, &stopping, &times));
                }
            })
        };
        ListServer {
            address,
            stopping,
            times,
            acceptor: Some(acceptor),
            list_bytes,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The bytes of JSON all pages hold together.
    pub fn list_bytes(&self) -> usize {
        self.list_bytes
    }

    /// When the first list request and the last page's request arrived.
    pub fn list_times(&self) -> (Option<Instant>, Option<Instant>) {
        *self.times.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for ListServer {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Every page of the pod list as the API serves it: a PodList with `continue` while more remain.
fn pod_pages(pods: u32, page_size: usize, shape: PodShape) -> Vec<Vec<u8>> {
    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let pages = (pods as usize).div_ceil(page_size);
    (0..pages)
        .map(|page| {
            let first = page * page_size;
            let last = (first + page_size).min(pods as usize);
            let items: Vec<Value> = (first..last)
                .map(|n| match shape {
                    PodShape::Small => pod_object(n as u32, &created),
                    PodShape::Full => pods::full_pod_object(n as u32, &created),
                })
                .collect();
            let mut metadata = json!({"resourceVersion": "200000"});
            if last < pods as usize {
                metadata["continue"] = json!(format!("page-{}", page + 1));
                metadata["remainingItemCount"] = json!(pods as usize - last);
            }
            let list = json!({
                "apiVersion": "v1", "kind": "PodList", "metadata": metadata, "items": items,
            });
            serde_json::to_vec(&list).expect("serialize a page")
        })
        .collect()
}

/// The Pod object of pod `n`, shaped as the fake API serves its pods.
fn pod_object(n: u32, created: &str) -> Value {
    let pod = SyntheticPod::new(n, 0x0A00_0000);
    let pod_ip = pod.ipv4.to_string();
    let ips: Vec<Value> = std::iter::once(pod_ip.clone())
        .chain(pod.ipv6.map(|ip| ip.to_string()))
        .map(|ip| json!({"ip": ip}))
        .collect();
    let host_ip = pods::host_ip(n);
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod.name,
            "namespace": pod.namespace,
            "uid": pod.uid,
            "resourceVersion": (100_000 + n).to_string(),
            "creationTimestamp": created,
            "labels": {"app": pods::app(n)},
        },
        "spec": {
            "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "nodeName": pod.node,
        },
        "status": {
            "phase": "Running",
            "hostIP": host_ip,
            "hostIPs": [{"ip": host_ip}],
            "podIP": pod_ip,
            "podIPs": ips,
            "startTime": created,
        },
    })
}

/// One keep-alive connection of [`ListServer`].
fn serve_pages(
    stream: TcpStream,
    pages: &[Vec<u8>],
    stopping: &AtomicBool,
    times: &Mutex<(Option<Instant>, Option<Instant>)>,
) {
    let _ = stream.set_nodelay(true);
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.trim().eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let param = |key: &str| {
            (query.split('&'))
                .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
                .filter(|value| !value.is_empty())
        };
        let written = if path != "/api/v1/pods" {
            eprintln!("events bench: list server: no {target}");
            respond(&mut writer, 404, &failure("NotFound", 404))
        } else if matches!(param("watch"), Some("true" | "1")) {
            // A watch with nothing to say, open until the bench ends.
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                        Transfer-Encoding: chunked\r\n\r\n";
            if writer.write_all(head.as_bytes()).is_err() {
                return;
            }
            while !stopping.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100));
            }
            return;
        } else {
            let page = param("continue")
                .and_then(|token| token.strip_prefix("page-")?.parse::<usize>().ok())
                .unwrap_or(0);
            let now = Instant::now();
            {
                let mut times = times.lock().unwrap_or_else(PoisonError::into_inner);
                if page == 0 && times.0.is_none() {
                    times.0 = Some(now);
                }
                if page + 1 == pages.len() {
                    times.1 = Some(now);
                }
            }
            match pages.get(page) {
                Some(bytes) => respond(&mut writer, 200, bytes),
                None => respond(&mut writer, 410, &failure("Expired", 410)),
            }
        };
        if written.is_err() || stopping.load(Ordering::SeqCst) {
            return;
        }
    }
}

/// A `Status` body as the API server answers a failure.
fn failure(reason: &str, code: u16) -> Vec<u8> {
    let status = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "reason": reason, "code": code,
    });
    serde_json::to_vec(&status).expect("serialize a Status")
}

fn respond(stream: &mut TcpStream, code: u16, body: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {code} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        if code == 200 { "OK" } else { "Error" },
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}
