//! Retention enforcement: a background pass, every [`PASS_INTERVAL`], deletes events,
//! attempts and audit entries older than their policy allows (per tenant, or the global
//! policy for tenants without one), in batches of
//! [`RETENTION_BATCH`](crate::store::RETENTION_BATCH) rows with a yield between batches,
//! so delivery is never blocked for long. Rows pruned are logged and counted for
//! `/metrics` ([`render_metrics`]) and `GET /api/v1/retention`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

use crate::store::{
    now_ms, RetainedKind, RetentionPolicy, Store, StoreResult, GLOBAL_SCOPE, RETENTION_BATCH,
};

/// Time between two passes.
pub const PASS_INTERVAL: Duration = Duration::from_secs(60);

/// Rows pruned since start, by kind, and the last pass.
struct Counters {
    events: AtomicU64,
    attempts: AtomicU64,
    audit: AtomicU64,
    passes: AtomicU64,
    last_pass_at: AtomicI64,
}

static PRUNED: Counters = Counters {
    events: AtomicU64::new(0),
    attempts: AtomicU64::new(0),
    audit: AtomicU64::new(0),
    passes: AtomicU64::new(0),
    last_pass_at: AtomicI64::new(0),
};

/// Rows one pass deleted.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct PassFigures {
    /// Events (their deliveries and attempts went with them).
    pub events: u64,
    /// Attempts.
    pub attempts: u64,
    /// Audit entries.
    pub audit: u64,
}

/// Totals since the process started.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct TotalFigures {
    /// Rows pruned, by kind.
    pub pruned: PassFigures,
    /// Passes run.
    pub passes: u64,
    /// Last pass, ms since the epoch (0 before the first).
    pub last_pass_at: i64,
}

/// Totals since start.
pub fn totals() -> TotalFigures {
    TotalFigures {
        pruned: PassFigures {
            events: PRUNED.events.load(Ordering::Relaxed),
            attempts: PRUNED.attempts.load(Ordering::Relaxed),
            audit: PRUNED.audit.load(Ordering::Relaxed),
        },
        passes: PRUNED.passes.load(Ordering::Relaxed),
        last_pass_at: PRUNED.last_pass_at.load(Ordering::Relaxed),
    }
}

/// Prometheus text of the retention counters.
pub fn render_metrics() -> String {
    let t = totals();
    let mut out = String::from(
        "# HELP outrider_retention_pruned_rows_total Rows deleted by retention, by kind.\n\
         # TYPE outrider_retention_pruned_rows_total counter\n",
    );
    for (kind, n) in [
        ("events", t.pruned.events),
        ("attempts", t.pruned.attempts),
        ("audit", t.pruned.audit),
    ] {
        out.push_str(&format!(
            "outrider_retention_pruned_rows_total{{kind=\"{kind}\"}} {n}\n"
        ));
    }
    out.push_str(&format!(
        "# HELP outrider_retention_passes_total Retention passes run.\n\
         # TYPE outrider_retention_passes_total counter\n\
         outrider_retention_passes_total {}\n",
        t.passes
    ));
    out
}

/// Start the periodic pass on the current runtime.
pub fn start(store: Store) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(PASS_INTERVAL).await;
            if let Err(e) = run_pass(&store).await {
                tracing::error!(error = %e, "retention pass failed");
            }
        }
    });
}

/// One pass over every policy; returns what it deleted.
pub async fn run_pass(store: &Store) -> StoreResult<PassFigures> {
    let now = now_ms();
    let mut figures = PassFigures::default();
    for policy in store.retention_policies().await? {
        figures.events +=
            prune(store, &policy, RetainedKind::Events, policy.events_ms, now).await?;
        figures.attempts += prune(
            store,
            &policy,
            RetainedKind::Attempts,
            policy.attempts_ms,
            now,
        )
        .await?;
        figures.audit += prune(store, &policy, RetainedKind::Audit, policy.audit_ms, now).await?;
    }
    PRUNED.events.fetch_add(figures.events, Ordering::Relaxed);
    PRUNED
        .attempts
        .fetch_add(figures.attempts, Ordering::Relaxed);
    PRUNED.audit.fetch_add(figures.audit, Ordering::Relaxed);
    PRUNED.passes.fetch_add(1, Ordering::Relaxed);
    PRUNED.last_pass_at.store(now, Ordering::Relaxed);
    if figures != PassFigures::default() {
        tracing::info!(
            events = figures.events,
            attempts = figures.attempts,
            audit = figures.audit,
            "retention pruned rows"
        );
    }
    Ok(figures)
}

async fn prune(
    store: &Store,
    policy: &RetentionPolicy,
    kind: RetainedKind,
    keep_ms: Option<i64>,
    now: i64,
) -> StoreResult<u64> {
    let Some(keep_ms) = keep_ms else {
        return Ok(0);
    };
    let scope = if policy.scope == GLOBAL_SCOPE {
        GLOBAL_SCOPE
    } else {
        policy.scope.as_str()
    };
    let mut total = 0;
    loop {
        let n = store.prune_batch(kind, scope, now - keep_ms).await?;
        total += n;
        if n < RETENTION_BATCH as u64 {
            return Ok(total);
        }
        // Let publishes and deliveries have the database between batches.
        tokio::task::yield_now().await;
    }
}
