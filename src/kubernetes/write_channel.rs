//! The channel from the events stage (a plain thread) to the Event writer (on the runtime): tokio's
//! bounded channel, so that the writer awaits the next write without a timer, while the events stage
//! sends with `blocking_send`, waiting while it is full, as on any channel of the pipeline.

use tokio::sync::mpsc;

use crate::events::WriteSink;
use crate::model::EventWrite;

/// The events stage's end.
pub struct WriteSender(mpsc::Sender<EventWrite>);

/// The Event writer's end.
pub struct WriteReceiver(mpsc::Receiver<EventWrite>);

/// A channel holding at most `capacity` writes (at least one).
pub fn write_channel(capacity: usize) -> (WriteSender, WriteReceiver) {
    let (sender, receiver) = mpsc::channel(capacity.max(1));
    (WriteSender(sender), WriteReceiver(receiver))
}

impl WriteSink for WriteSender {
    fn send(&self, write: EventWrite) -> bool {
        // Never called on the runtime: the events stage is a thread of its own.
        self.0.blocking_send(write).is_ok()
    }
}

impl WriteReceiver {
    /// The next write; `None` once the events stage is gone and every write was taken.
    pub(super) async fn recv(&mut self) -> Option<EventWrite> {
        self.0.recv().await
    }
}
