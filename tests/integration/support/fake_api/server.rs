//! The server threads: one acceptor, then one thread per connection that reads requests in turn
//! (keep-alive), records each, applies the test's faults, answers, and streams watches.

use std::io::{self, BufReader};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::faults::{self, Fault, Recorded, take_fault};
use super::http::{self, Request};
use super::routes::{self, Answer, Watch};
use super::store::status;
use super::{Shared, State};

pub(super) fn accept(listener: TcpListener, shared: Arc<Shared>) {
    let mut next_id = 0u64;
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        if shared.lock().refusing {
            let _ = stream.shutdown(Shutdown::Both);
            continue;
        }
        let Ok(clone) = stream.try_clone() else {
            continue;
        };
        let id = next_id;
        next_id += 1;
        lock_connections(&shared).insert(id, clone);
        let thread_shared = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name(format!("fake-api-conn-{id}"))
            .spawn(move || {
                serve(&thread_shared, stream);
                lock_connections(&thread_shared).remove(&id);
            });
        match spawned {
            Ok(handle) => shared
                .threads
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(handle),
            Err(_) => {
                lock_connections(&shared).remove(&id);
            }
        }
    }
}

fn lock_connections(
    shared: &Shared,
) -> std::sync::MutexGuard<'_, std::collections::HashMap<u64, TcpStream>> {
    shared
        .connections
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What to do with a request before routing it.
enum Plan {
    Route,
    Fail(Fault),
    Refuse,
}

fn serve(shared: &Shared, mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    while let Ok(Some(request)) = http::read_request(&mut reader) {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let (index, plan) = admit(shared, &request);
        let keep_going = match plan {
            Plan::Refuse => false,
            Plan::Fail(Fault::Drop) => false,
            Plan::Fail(Fault::LoseAnswer) => {
                let mut state = shared.lock();
                let expired = state.expired_answer;
                let _ = routes::route(&mut state.store, expired, &request);
                false
            }
            Plan::Fail(Fault::Status { code, headers }) => {
                let mut body = status(code, &format!("fake API fault: {code}")).1;
                if let Some((_, seconds)) = headers
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case("retry-after"))
                {
                    let seconds: u64 = seconds.parse().unwrap_or(1);
                    body["details"] = json!({"retryAfterSeconds": seconds});
                }
                answer(shared, &mut stream, index, code, &headers, &body, &request)
            }
            Plan::Fail(Fault::Forbidden) => {
                let body = faults::forbidden(&request.method, &request.path, &request.query);
                answer(shared, &mut stream, index, 403, &[], &body, &request)
            }
            Plan::Fail(Fault::Delay(delay)) => {
                wait(shared, Instant::now() + delay);
                !shared.stopping.load(Ordering::SeqCst)
                    && route(shared, &mut stream, index, &request)
            }
            Plan::Route => route(shared, &mut stream, index, &request),
        };
        if !keep_going || request.close {
            break;
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// Requests recorded at most.
const MAX_RECORDED: usize = 200_000;

/// Records the request and decides, under the lock, whether a fault or an outage answers it.
fn admit(shared: &Shared, request: &Request) -> (usize, Plan) {
    let mut state = shared.lock();
    // The newest requests are kept: enough for any test that looks at them, bounded for a soak.
    if state.requests.len() >= MAX_RECORDED {
        state.requests.drain(..MAX_RECORDED / 2);
        state.forgotten_requests += MAX_RECORDED / 2;
    }
    state.requests.push(Recorded {
        method: request.method.clone(),
        path: request.path.clone(),
        query: request.query.clone(),
        headers: request.headers.clone(),
        body: Recorded::body_from(&request.body),
        received: Instant::now(),
        status: None,
        bytes: 0,
    });
    let index = state.forgotten_requests + state.requests.len() - 1;
    let plan = if state.refusing {
        Plan::Refuse
    } else if state.down {
        Plan::Fail(Fault::status(503))
    } else {
        match take_fault(&mut state.rules, &request.method, &request.path) {
            Some(fault) => Plan::Fail(fault),
            None => Plan::Route,
        }
    };
    (index, plan)
}

fn set_status(state: &mut State, index: usize, code: u16) {
    if let Some(recorded) = recorded(state, index) {
        recorded.status = Some(code);
    }
}

/// Counts `bytes` of body (JSON, or watch event lines) sent in answer to request `index`.
fn add_bytes(state: &mut State, index: usize, bytes: usize) {
    if let Some(recorded) = recorded(state, index) {
        recorded.bytes += bytes as u64;
    }
}

fn recorded(state: &mut State, index: usize) -> Option<&mut Recorded> {
    let index = index.checked_sub(state.forgotten_requests)?;
    state.requests.get_mut(index)
}

/// Writes a whole answer; whether the connection can serve another request.
fn answer(
    shared: &Shared,
    stream: &mut TcpStream,
    index: usize,
    code: u16,
    headers: &[(String, String)],
    body: &Value,
    request: &Request,
) -> bool {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    {
        let mut state = shared.lock();
        set_status(&mut state, index, code);
        add_bytes(&mut state, index, bytes.len());
    }
    http::write_response(stream, code, headers, &bytes, request.close).is_ok()
}

fn route(shared: &Shared, stream: &mut TcpStream, index: usize, request: &Request) -> bool {
    let (answered, generation) = {
        let mut state = shared.lock();
        let expired = state.expired_answer;
        // Taken with the answer, so a `close_watches` after the first events reach the client ends it.
        let generation = state.watch_generation;
        (
            routes::route(&mut state.store, expired, request),
            generation,
        )
    };
    match answered {
        Answer::Json {
            code,
            headers,
            body,
        } => answer(shared, stream, index, code, &headers, &body, request),
        Answer::Watch(watch) => {
            set_status(&mut shared.lock(), index, 200);
            stream_watch(shared, stream, index, watch, generation).is_ok()
        }
    }
}

/// Sleeps until `deadline`, or less when the server stops.
fn wait(shared: &Shared, deadline: Instant) {
    let mut state = shared.lock();
    while !shared.stopping.load(Ordering::SeqCst) {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        state = match shared.changed.wait_timeout(state, deadline - now) {
            Ok((state, _)) => state,
            Err(poisoned) => poisoned.into_inner().0,
        };
    }
}

/// Counts a watch as open for as long as it lives, whatever way it ends.
struct OpenWatch<'a>(&'a Shared);

impl<'a> OpenWatch<'a> {
    fn new(shared: &'a Shared) -> OpenWatch<'a> {
        shared.lock().open_watches += 1;
        OpenWatch(shared)
    }
}

impl Drop for OpenWatch<'_> {
    fn drop(&mut self) {
        self.0.lock().open_watches -= 1;
    }
}

/// Streams `watch`: its first events, then every change after its cursor as it happens, until its
/// timeout, `close_watches`, an outage, or the server stopping.
fn stream_watch(
    shared: &Shared,
    stream: &mut TcpStream,
    index: usize,
    watch: Watch,
    generation: u64,
) -> io::Result<()> {
    let open = OpenWatch::new(shared);
    http::start_chunked(stream)?;
    for event in &watch.first {
        let line = event_line(event);
        http::write_chunk(stream, &line)?;
        add_bytes(&mut shared.lock(), index, line.len());
    }
    if watch.end_now {
        drop(open);
        return http::end_chunked(stream);
    }
    let started = Instant::now();
    let deadline = watch.timeout.map(|timeout| started + timeout);
    let mut cursor = watch.cursor;
    let mut state = shared.lock();
    let mut last_bookmark = started;
    loop {
        if shared.stopping.load(Ordering::SeqCst) || state.refusing {
            return Ok(());
        }
        let now = Instant::now();
        if state.watch_generation != generation || state.down || deadline.is_some_and(|d| now >= d)
        {
            drop(state);
            // Not open any more by the time the client sees the end.
            drop(open);
            return http::end_chunked(stream);
        }
        let mut lines: Vec<Vec<u8>> = (state.store.changes_after(
            cursor,
            watch.resource,
            watch.namespace.as_deref(),
            &watch.selector,
        ))
        .into_iter()
        .map(|change| event_line(&json!({"type": change.kind, "object": change.object})))
        .collect();
        let bookmark_every = state.bookmark_every.filter(|_| watch.bookmarks);
        let bookmark_due = bookmark_every.is_some_and(|every| now >= last_bookmark + every);
        if bookmark_due {
            last_bookmark = now;
            let bookmark =
                routes::bookmark(watch.resource, state.store.resource_version(), json!({}));
            lines.push(event_line(&bookmark));
        }
        if lines.is_empty() {
            // A client that went away (a killed agent) ends its watch within a second, not at its
            // timeout: a chaos run kills agents by the thousand, and each watch is a thread.
            if peer_closed(stream) {
                return Ok(());
            }
            let mut wake = deadline.unwrap_or(now + Duration::from_secs(3600));
            wake = wake.min(now + Duration::from_secs(1));
            if let Some(every) = bookmark_every {
                wake = wake.min(last_bookmark + every);
            }
            state = match shared
                .changed
                .wait_timeout(state, wake.saturating_duration_since(now))
            {
                Ok((state, _)) => state,
                Err(poisoned) => poisoned.into_inner().0,
            };
            continue;
        }
        cursor = state.store.resource_version();
        drop(state);
        for line in &lines {
            http::write_chunk(stream, line)?;
        }
        state = shared.lock();
        add_bytes(&mut state, index, lines.iter().map(Vec::len).sum());
    }
}

/// Whether the client closed its end: a read would give end of file (it sends nothing on a watch).
fn peer_closed(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    let mut byte = [0u8; 1];
    let closed = match stream.peek(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(error) => error.kind() != io::ErrorKind::WouldBlock,
    };
    let _ = stream.set_nonblocking(false);
    closed
}

fn event_line(event: &Value) -> Vec<u8> {
    let mut line = serde_json::to_vec(event).unwrap_or_default();
    line.push(b'\n');
    line
}
