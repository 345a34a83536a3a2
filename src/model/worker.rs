//! A worker as the cluster knows it: what the node it is connected to tells
//! the others, and what operators list.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::Timestamp;

/// A connected worker, as operators see it, on whichever node it is
/// connected to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkerInfo {
    pub worker_id: String,
    /// The node it is connected to; empty when one node has the store.
    pub node: String,
    pub task_types: Vec<String>,
    pub capacity: usize,
    /// Tasks it holds now.
    pub held: usize,
    pub labels: BTreeMap<String, String>,
    pub connected_at: Timestamp,
    /// When it last said anything.
    pub last_seen: Timestamp,
    /// Whether it asked for no more tasks.
    pub draining: bool,
    /// Attempts it finished since it connected.
    pub finished: u64,
}
