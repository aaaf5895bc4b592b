//! Long calls share a few cores, plugin by plugin; runaway calls share a tenth of one.
//!
//! Every call yields to tokio at each epoch tick, but a yielded call is queued right
//! back: a hundred plugin calls spinning at once (an infinite loop, a host-call flood)
//! would each take a worker for a tick in turn, and every other task, the short calls
//! that make up normal traffic included, would wait behind all of them. So a call that
//! has run wasm for more than [`GRACE_TICKS`] ticks runs each further tick only while it
//! holds a slot of a [`LongCallGate`], gives the slot back at its next tick and queues
//! again:
//!
//! - past the grace, the long-call gate: half the machine's cores (at least one), handed
//!   on at once;
//! - past [`RUNAWAY_TICKS`] (far beyond what any real plugin call takes: the JavaScript
//!   and Python examples need a few milliseconds), the runaway gate first, then the
//!   long-call gate: the runaway gate has one slot that rests nine ticks after each tick
//!   it was held, so all runaway calls together use at most a tenth of a core until
//!   their deadline ends them.
//!
//! Past the grace a call also leaves the server's workers for the
//! [`slow_lane`](super::slow_lane), whose threads run at the lowest priority; the gates
//! then share those threads between plugins. The first ticks past the grace (before the
//! move takes effect) still run on a worker, and never more of them than the long-call
//! gate's slots, so the other workers keep serving everything else.
//!
//! Turns are shared fairly between plugins (each waiting call is stamped with its
//! plugin's next turn, never earlier than the turn being served), in arrival order
//! within a plugin: a plugin with a hundred runaway calls gets the same share as one
//! with a single heavy call, so it cannot starve the others, and the memory a queued call
//! holds is not held for long. Short calls never touch a gate; long ones still end at
//! their deadline (the call's timeout runs while they wait).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

/// Ticks (about [`EPOCH_TICK`](super::engine::EPOCH_TICK) of running wasm each) a call
/// runs before it needs a slot. A call that awaits a host call longer than a tick also
/// sees one tick when it resumes, so this leaves room for a few such awaits.
pub const GRACE_TICKS: u32 = 10;

/// Ticks after which a call is treated as runaway.
pub const RUNAWAY_TICKS: u32 = 50;

/// The gates of one runtime.
#[derive(Debug)]
pub struct LongCalls {
    long: Arc<LongCallGate>,
    runaway: Arc<LongCallGate>,
}

impl LongCalls {
    /// The gates sized for this machine; `tick` is the engine's epoch tick.
    pub fn for_this_machine(tick: Duration) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        LongCalls {
            long: LongCallGate::new(cores / 2, Duration::ZERO),
            runaway: LongCallGate::new(1, tick * 9),
        }
    }

    /// The gates a call that has seen `ticks` ticks waits at, in order; none within its
    /// grace.
    pub fn gates_for(&self, ticks: u32) -> Vec<Arc<LongCallGate>> {
        match ticks {
            t if t <= GRACE_TICKS => Vec::new(),
            t if t <= RUNAWAY_TICKS => vec![self.long.clone()],
            _ => vec![self.runaway.clone(), self.long.clone()],
        }
    }
}

/// The slots long calls take turns on.
#[derive(Debug)]
pub struct LongCallGate {
    slots: usize,
    /// How long a slot rests after it was given back, before it is handed on.
    rest: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    running: usize,
    /// The turn being served: a plugin that was idle starts here, not in the past.
    now: u64,
    /// The last turn handed out to each plugin's waiting calls.
    last_turn: HashMap<Arc<str>, u64>,
    /// Arrivals so far (orders calls of the same turn).
    arrivals: u64,
    /// Waiting calls by (turn, arrival).
    waiting: BTreeMap<(u64, u64), oneshot::Sender<Slot>>,
}

/// A slot of the gate; given back when dropped.
#[derive(Debug)]
pub struct Slot {
    gate: Arc<LongCallGate>,
    armed: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.armed {
            self.gate.release();
        }
    }
}

impl LongCallGate {
    /// A gate with `slots` slots (at least one), each resting `rest` after use.
    pub fn new(slots: usize, rest: Duration) -> Arc<Self> {
        Arc::new(LongCallGate {
            slots: slots.max(1),
            rest,
            state: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wait for a slot for a call of `plugin`, taking turns with other plugins.
    pub async fn acquire(self: Arc<Self>, plugin: Arc<str>) -> Slot {
        let waiting = {
            let mut state = self.lock();
            if state.running < self.slots {
                state.running += 1;
                None
            } else {
                let (tx, rx) = oneshot::channel();
                let now = state.now;
                let turn = state
                    .last_turn
                    .get(&plugin)
                    .map_or(now, |last| (last + 1).max(now));
                state.last_turn.insert(plugin, turn);
                state.arrivals += 1;
                let key = (turn, state.arrivals);
                state.waiting.insert(key, tx);
                Some(rx)
            }
        };
        match waiting {
            None => Slot {
                gate: self,
                armed: true,
            },
            // The sender is only dropped after sending (or with the gate, which this
            // future holds), so the slot always arrives.
            Some(rx) => rx.await.unwrap_or(Slot {
                gate: self,
                armed: false,
            }),
        }
    }

    /// A slot was given back: hand it on after its rest.
    fn release(self: &Arc<Self>) {
        if !self.rest.is_zero() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let gate = self.clone();
                runtime.spawn(async move {
                    tokio::time::sleep(gate.rest).await;
                    gate.hand_on();
                });
                return;
            }
        }
        self.hand_on();
    }

    /// Hand a freed slot to the first waiting call still waiting, else free it.
    fn hand_on(self: &Arc<Self>) {
        let mut state = self.lock();
        while let Some(((turn, _), tx)) = state.waiting.pop_first() {
            state.now = state.now.max(turn);
            let slot = Slot {
                gate: self.clone(),
                armed: true,
            };
            match tx.send(slot) {
                Ok(()) => return,
                // That call stopped waiting (its deadline passed): try the next one.
                Err(mut slot) => slot.armed = false,
            }
        }
        state.running -= 1;
    }

    /// Slots in use.
    pub fn running(&self) -> usize {
        self.lock().running
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn plugins_take_turns_whatever_their_number_of_calls() {
        let gate = LongCallGate::new(1, Duration::ZERO);
        let held = gate.clone().acquire("runaway".into()).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        // Three calls of one plugin queue first, then one call of another.
        for plugin in ["runaway", "runaway", "runaway", "heavy"] {
            let (gate, order) = (gate.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let slot = gate.acquire(plugin.into()).await;
                order.lock().unwrap().push(plugin);
                drop(slot);
            }));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(gate.running(), 1);
        drop(held);
        for task in tasks {
            task.await.unwrap();
        }
        let order = order.lock().unwrap();
        let heavy = order.iter().position(|p| *p == "heavy").unwrap();
        assert!(
            heavy <= 1,
            "the other plugin waited behind the runaway one: {order:?}"
        );
        assert_eq!(gate.running(), 0);
    }

    #[tokio::test]
    async fn a_resting_slot_is_handed_on_after_its_rest() {
        let gate = LongCallGate::new(1, Duration::from_millis(50));
        drop(gate.clone().acquire("p".into()).await);
        assert_eq!(gate.running(), 1, "the slot rests before it is free again");
        let started = std::time::Instant::now();
        drop(gate.clone().acquire("p".into()).await);
        assert!(started.elapsed() >= Duration::from_millis(40));
    }

    #[test]
    fn calls_meet_the_gate_of_their_length() {
        let gates = LongCalls::for_this_machine(Duration::from_millis(1));
        assert!(gates.gates_for(GRACE_TICKS).is_empty());
        let long = gates.gates_for(GRACE_TICKS + 1);
        let runaway = gates.gates_for(RUNAWAY_TICKS + 1);
        assert_eq!((long.len(), runaway.len()), (1, 2));
        // A runaway call also holds a long-call slot: together they never hold more
        // workers than the long-call gate has slots.
        assert!(Arc::ptr_eq(&long[0], &runaway[1]));
        assert!(!Arc::ptr_eq(&runaway[0], &runaway[1]));
    }

    #[tokio::test]
    async fn a_waiter_that_gave_up_does_not_keep_the_slot() {
        let gate = LongCallGate::new(1, Duration::ZERO);
        let held = gate.clone().acquire("p".into()).await;
        let gave_up =
            tokio::time::timeout(Duration::from_millis(10), gate.clone().acquire("p".into()));
        assert!(gave_up.await.is_err());
        drop(held);
        assert_eq!(gate.running(), 0);
        let again =
            tokio::time::timeout(Duration::from_millis(100), gate.clone().acquire("q".into()));
        assert!(again.await.is_ok());
    }
}
