//! The resolve stage: who is behind each IP of a drop — a pod from the pod index, a node (hostNetwork),
//! or a name from reverse DNS — turning a `PacketDrop` into a `Located`.

pub mod dns;
pub mod pods;
