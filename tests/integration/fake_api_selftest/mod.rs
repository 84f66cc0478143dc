//! The fake API server itself, proved twice: with a bare HTTP/1.1 client over `TcpStream` (exact
//! bytes, keep-alive, faults, chunked watches) and with kube-rs, the client the agent uses (paged
//! lists, the watcher and its relist after 410 Expired, Event create/conflict/patch, its own retries),
//! for pods and for NetworkPolicies.

mod bare_http;
mod kube_client;
mod network_policies;
mod watch_stream;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::fake_api::{FakeApi, FakePod};

pub const EVENTS: &str = "/api/v1/namespaces/shop/events";

/// A bare HTTP/1.1 client on one keep-alive connection.
pub struct Http {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

pub struct Answer {
    pub code: u16,
    pub headers: BTreeMap<String, String>,
    pub body: Value,
}

impl Http {
    pub fn connect(api: &FakeApi) -> Http {
        let stream = TcpStream::connect(api.address()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Http { stream, reader }
    }

    pub fn send(&mut self, method: &str, target: &str, content_type: &str, body: Option<&Value>) {
        let body = body.map(|body| body.to_string()).unwrap_or_default();
        let request = format!(
            "{method} {target} HTTP/1.1\r\nHost: kubernetes\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        // A refused connection may already be closed: the answer (none) tells.
        let _ = self.stream.write_all(request.as_bytes());
    }

    /// The status line and headers; `None` when the server closed the connection instead.
    pub fn head(&mut self) -> Option<(u16, BTreeMap<String, String>)> {
        let mut line = String::new();
        if self.reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let code = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        let mut headers = BTreeMap::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
            let Some((name, value)) = line.trim_end().split_once(':') else {
                break;
            };
            headers.insert(name.to_ascii_lowercase(), value.trim().to_string());
        }
        Some((code, headers))
    }

    pub fn answer(&mut self) -> Option<Answer> {
        let (code, headers) = self.head()?;
        let length: usize = headers["content-length"].parse().unwrap();
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).unwrap();
        let body = serde_json::from_slice(&body).unwrap();
        Some(Answer {
            code,
            headers,
            body,
        })
    }

    pub fn request(&mut self, method: &str, target: &str, body: Option<&Value>) -> Answer {
        self.send(method, target, "application/json", body);
        self.answer().expect("an answer")
    }

    /// The next watch event of a chunked answer; `None` at its end.
    pub fn watch_event(&mut self) -> Option<Value> {
        let mut size = String::new();
        self.reader.read_line(&mut size).unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        let mut chunk = vec![0; size + 2];
        self.reader.read_exact(&mut chunk).unwrap();
        if size == 0 {
            return None;
        }
        assert_eq!(
            &chunk[size - 1..],
            b"\n\r\n",
            "one event per line per chunk"
        );
        Some(serde_json::from_slice(&chunk[..size]).unwrap())
    }
}

pub fn names(items: &Value) -> Vec<&str> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["metadata"]["name"].as_str().unwrap())
        .collect()
}

pub fn five_pods(api: &FakeApi) {
    for index in 0..5 {
        api.add_pod(FakePod::new("shop", &format!("web-{index}")).ip(&format!("10.1.0.{index}")));
    }
}

pub fn event(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": "shop"},
        "involvedObject": {"kind": "Pod", "namespace": "shop", "name": "web-0", "apiVersion": "v1"},
        "reason": "PacketDrop",
        "message": "Packet dropped when sending traffic to db-0 (10.1.0.9) on port 5432/TCP",
        "type": "Warning",
        "count": 1,
    })
}
