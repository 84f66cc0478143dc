//! Where the resolve stage finds pods: the pod index (every pod with `POD_INDEX=cluster`, this node's
//! with `node`), then, in node mode, the pods of other nodes looked up on demand (`remote.rs`).

use std::net::IpAddr;
use std::sync::Arc;

use super::pods::PodIndex;
use super::remote::RemotePods;
use crate::model::{Endpoint, PacketDrop};

/// The index, and in node mode the remote pods.
pub struct PodLookup {
    index: Arc<PodIndex>,
    remote: Option<Arc<RemotePods>>,
}

impl PodLookup {
    pub fn new(index: Arc<PodIndex>, remote: Option<Arc<RemotePods>>) -> PodLookup {
        PodLookup { index, remote }
    }

    pub fn index(&self) -> &PodIndex {
        &self.index
    }

    /// Before a batch is located: in node mode, has the addresses of its drops that no pod of the
    /// index has looked up (those without a fresh answer), waiting a bounded time for the answers;
    /// `queued`: other batches wait behind this one (waiting is rationed then).
    pub fn prepare<'a>(&self, drops: impl IntoIterator<Item = &'a PacketDrop>, queued: bool) {
        let Some(remote) = &self.remote else {
            return;
        };
        let unknown = (drops.into_iter())
            .flat_map(|drop| [drop.packet.src, drop.packet.dst])
            .filter(|ip| self.index.lookup(*ip).is_none());
        remote.fetch(unknown, queued);
    }

    /// Who uses `ip`: a pod or node of the index, else a remote pod whose answer is fresh; `None`
    /// when neither knows it as a pod's.
    pub fn lookup(&self, ip: IpAddr) -> Option<Endpoint> {
        self.index
            .lookup(ip)
            .or_else(|| self.remote.as_ref()?.get(ip)?)
    }
}

/// The index alone: cluster mode.
impl From<Arc<PodIndex>> for PodLookup {
    fn from(index: Arc<PodIndex>) -> PodLookup {
        PodLookup::new(index, None)
    }
}

/// `POD_INDEX`: which pods the index holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodIndexMode {
    /// Every pod of the cluster (listed and watched); no lookups.
    Cluster,
    /// This node's pods; the others are looked up by IP when a drop names them.
    Node,
}
