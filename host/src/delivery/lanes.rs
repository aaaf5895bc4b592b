//! Calling a destination plugin for one delivery, and the batch lanes.
//!
//! A plugin that exports `batch-destination` gets its deliveries through a lane per
//! destination: the lane keeps one `deliver-batch` call in flight and puts every delivery
//! that arrived meanwhile into the next call (up to [`BATCH_MAX`]), as the writer does
//! for publishes. A stream of events to one broker then shares one connection with
//! pipelined publishes, instead of opening a connection per concurrent delivery and
//! waiting for each confirm in turn. Other plugins are called once per delivery.
//!
//! The plugin's health (crash streak, quarantine) is accounted here, once per call: a
//! batch call that traps counts as one crash, not one per event in it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::runtime::guest::BATCH_MAX;
use crate::runtime::{
    Delivered, DeliveryFailure, Event, LoadedPlugin, PluginRegistry, PreparedTarget,
};

/// Lanes kept before idle ones are dropped.
const MAX_LANES: usize = 4096;

type Reply = Result<Delivered, DeliveryFailure>;

/// One delivery waiting in a lane.
struct Pending {
    plugin: Arc<LoadedPlugin>,
    target: Arc<PreparedTarget>,
    event: Event,
    reply: oneshot::Sender<Reply>,
}

/// The deliveries waiting for one destination, and whether a call is running for it.
#[derive(Default)]
struct Lane {
    queue: VecDeque<Pending>,
    running: bool,
}

/// Calls destination plugins for the delivery path.
pub struct PluginCalls {
    registry: Arc<PluginRegistry>,
    lanes: Mutex<HashMap<String, Arc<Mutex<Lane>>>>,
}

impl PluginCalls {
    /// Calls accounted in `registry`.
    pub fn new(registry: Arc<PluginRegistry>) -> Self {
        PluginCalls {
            registry,
            lanes: Mutex::default(),
        }
    }

    /// Deliver `event` to `target` through `plugin`: in a batch when the plugin takes
    /// them, else in a call of its own.
    pub async fn deliver(
        &self,
        plugin: &Arc<LoadedPlugin>,
        target: &Arc<PreparedTarget>,
        event: Event,
    ) -> Result<Delivered, DeliveryFailure> {
        if !plugin.batches() {
            let result = plugin.deliver_prepared(target, event).await;
            account(&self.registry, plugin, result.as_ref().err());
            return result;
        }
        let (reply, answer) = oneshot::channel();
        let lane = self.lane(&target.target().id);
        let start = {
            let mut lane = lane.lock().expect("lane lock");
            lane.queue.push_back(Pending {
                plugin: plugin.clone(),
                target: target.clone(),
                event,
                reply,
            });
            !std::mem::replace(&mut lane.running, true)
        };
        if start {
            tokio::spawn(drive(lane, self.registry.clone()));
        }
        answer.await.unwrap_or_else(|_| {
            Err(DeliveryFailure::Trap(
                "the batch call ended without an answer".into(),
            ))
        })
    }

    fn lane(&self, destination_id: &str) -> Arc<Mutex<Lane>> {
        let mut lanes = self.lanes.lock().expect("lanes lock");
        if let Some(lane) = lanes.get(destination_id) {
            return lane.clone();
        }
        if lanes.len() >= MAX_LANES {
            lanes.retain(|_, lane| {
                let lane = lane.lock().expect("lane lock");
                lane.running || !lane.queue.is_empty()
            });
        }
        lanes.entry(destination_id.to_owned()).or_default().clone()
    }
}

/// Run batch calls for a lane until it is empty.
async fn drive(lane: Arc<Mutex<Lane>>, registry: Arc<PluginRegistry>) {
    let mut guard = StopGuard {
        lane: lane.clone(),
        finished: false,
    };
    loop {
        let batch = {
            let mut lane = lane.lock().expect("lane lock");
            if lane.queue.is_empty() {
                // Under the lock: whoever queues next sees the lane idle and starts it.
                lane.running = false;
                guard.finished = true;
                return;
            }
            next_batch(&mut lane.queue)
        };
        run_batch(batch, &registry).await;
    }
}

/// Marks the lane idle when its driver stops without finishing (a panic): it must not
/// leave `running` set with nobody to serve the deliveries queued after it. Those see
/// their reply dropped, which fails the attempt, and are retried.
struct StopGuard {
    lane: Arc<Mutex<Lane>>,
    finished: bool,
}

impl Drop for StopGuard {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if let Ok(mut lane) = self.lane.lock() {
            lane.running = false;
            lane.queue.clear();
        }
    }
}

/// The oldest waiting delivery and those after it for the same plugin and the same
/// prepared target (a destination edited meanwhile starts a new batch).
fn next_batch(queue: &mut VecDeque<Pending>) -> Vec<Pending> {
    let mut batch: Vec<Pending> = Vec::new();
    while let Some(next) = queue.front() {
        if let Some(first) = batch.first() {
            let same = Arc::ptr_eq(&first.plugin, &next.plugin)
                && Arc::ptr_eq(&first.target, &next.target);
            if !same || batch.len() >= BATCH_MAX {
                break;
            }
        }
        batch.extend(queue.pop_front());
    }
    batch
}

async fn run_batch(batch: Vec<Pending>, registry: &PluginRegistry) {
    let Some(first) = batch.first() else {
        return;
    };
    let (plugin, target) = (first.plugin.clone(), first.target.clone());
    let (events, replies): (Vec<Event>, Vec<oneshot::Sender<Reply>>) =
        batch.into_iter().map(|p| (p.event, p.reply)).unzip();
    let counters = &*crate::telemetry::COUNTERS;
    crate::telemetry::add(&counters.batch_calls, 1);
    crate::telemetry::add(&counters.batch_events, events.len() as u64);
    match plugin.deliver_batch(&target, events).await {
        Ok(results) => {
            account(registry, &plugin, None);
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(result);
            }
        }
        Err(failure) => {
            account(registry, &plugin, Some(&failure));
            for reply in replies {
                let _ = reply.send(Err(failure.clone()));
            }
        }
    }
}

/// Count a finished call towards the plugin's health: a trap, timeout or memory limit is
/// a crash; a call that ran to an answer resets the streak; a misconfiguration or a
/// refused network access says nothing about the plugin.
fn account(registry: &PluginRegistry, plugin: &LoadedPlugin, failure: Option<&DeliveryFailure>) {
    match failure {
        None | Some(DeliveryFailure::Retry { .. }) | Some(DeliveryFailure::Fail { .. }) => {
            registry.record_success(&plugin.id)
        }
        Some(DeliveryFailure::Timeout)
        | Some(DeliveryFailure::MemoryLimit)
        | Some(DeliveryFailure::Trap(_)) => {
            registry.record_crash(&plugin.id);
        }
        Some(DeliveryFailure::Misconfigured { .. }) | Some(DeliveryFailure::Denied(_)) => {}
    }
}
