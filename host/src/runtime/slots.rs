//! Instance slots: the engine's pooling allocator, and the gate that lets
//! no more operations in at once than it has slots.
//!
//! Every agent operation instantiates a fresh instance. Allocated on
//! demand, each one maps a 4 GiB reservation for its linear memory, faults
//! in the pages it touches, and unmaps it all at the end, whose TLB
//! shootdown interrupts the other core: a failover that starts 256
//! addresses does that 256 times on both agent threads at once. In
//! `xtask bench agent` that mapping work was about 45% of a 256-address
//! group start's CPU time (munmap 23%, page faults 14%, mmap and mprotect
//! 7%). A pool keeps the reservations mapped, and a released slot is reset
//! in place: wasmtime restores the memory to the module's initial image
//! (the first [`KEEP_RESIDENT`] bytes by writing only the pages that were
//! dirtied, the rest by discarding them), so no instance ever sees what
//! an earlier one left, whichever resource it ran for.
//!
//! The pool has a fixed number of each part, and an instantiation that
//! finds none free fails. So:
//! * every slot can hold an instance at the limiter's maxima (memories,
//!   tables, core instances): an agent that uses all it is allowed cannot
//!   take parts another operation needs;
//! * [`Gate`] admits at most [`SLOTS`] operations at once; the rest wait
//!   for a slot within their own deadline.
//!
//! Under `mlockall` (the daemon's `realtime on`) the kernel refuses to
//! discard locked pages (madvise returns EINVAL). wasmtime then treats the
//! slot as unknown and maps it afresh before its next use: still reset,
//! only at the on-demand price.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::{Enabled, PoolingAllocationConfig};

use super::limiter::{MAX_INSTANCES, MAX_MEMORIES, MAX_TABLES, MAX_TABLE_ELEMENTS};
use super::AgentError;

/// Operations that can hold an instance at the same time. A run of
/// addresses starts 16 at a time (`resources::ADDRESS_CONCURRENCY`); the
/// rest covers monitors and other groups. Each slot reserves address space
/// (not memory) for [`MAX_MEMORIES`] linear memories of 4 GiB, about 2 TiB
/// for the pool out of the 128 TiB a process has, and for [`MAX_TABLES`]
/// tables of [`MAX_TABLE_ELEMENTS`], about 1.6 GiB mapped read-write with
/// MAP_NORESERVE: only touched pages use memory, but a host with strict
/// overcommit (`vm.overcommit_memory = 2`) charges it all.
pub const SLOTS: u32 = 32;

/// Bytes of each linear memory, table and fiber stack kept resident when
/// its slot is released, reset by writing instead of being discarded.
/// 64 KiB covered what an IPaddr operation dirties: larger values were no
/// faster in `xtask bench agent` and keep more RSS in warm slots.
pub const KEEP_RESIDENT: usize = 64 << 10;

/// An operation waiting longer than this for a slot is logged: it means
/// every slot was busy, which a healthy node never sees for long.
const SLOW_WAIT: Duration = Duration::from_millis(100);

/// The pooling allocator's configuration for the agent engine.
pub(crate) fn pooling() -> PoolingAllocationConfig {
    let per_slot = |n: usize| u32::try_from(n).expect("a small limit");
    let mut p = PoolingAllocationConfig::new();
    p.total_component_instances(SLOTS)
        .total_core_instances(SLOTS * per_slot(MAX_INSTANCES))
        .total_memories(SLOTS * per_slot(MAX_MEMORIES))
        .total_tables(SLOTS * per_slot(MAX_TABLES))
        .total_stacks(SLOTS)
        // No per-component maxima: a component may declare more than the
        // limiter allows, and instantiating it fails with the limiter's
        // error, as without the pool (the store's counts are checked
        // before any part is taken).
        .max_memories_per_module(per_slot(MAX_MEMORIES))
        .max_tables_per_module(per_slot(MAX_TABLES))
        .table_elements(MAX_TABLE_ELEMENTS)
        // Instance metadata is heap-allocated; these only bound it. The
        // defaults (1 MiB) could refuse a large component (an interpreter
        // with thousands of functions) that the limiter would run.
        .max_core_instance_size(16 << 20)
        .max_component_instance_size(64 << 20)
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT)
        .async_stack_keep_resident(KEEP_RESIDENT)
        // Reset only the pages an instance dirtied (Linux 6.7+).
        .pagemap_scan(Enabled::Auto);
    p
}

/// The gate in front of the pool: one permit per slot.
#[derive(Clone)]
pub(crate) struct Gate {
    permits: Arc<Semaphore>,
    slots: usize,
}

impl Gate {
    /// A gate with [`SLOTS`] permits.
    pub(crate) fn new() -> Gate {
        Gate::with(SLOTS as usize)
    }

    fn with(slots: usize) -> Gate {
        Gate {
            permits: Arc::new(Semaphore::new(slots)),
            slots,
        }
    }

    /// Wait for a slot for `what` (an agent operation) for at most
    /// `deadline`; the permit, and what is left of the deadline for the
    /// operation itself. The slot is held until the permit drops, which
    /// must be after the instance's store.
    pub(crate) async fn enter(
        &self,
        what: &str,
        deadline: Duration,
    ) -> Result<(OwnedSemaphorePermit, Duration), AgentError> {
        if let Ok(p) = Arc::clone(&self.permits).try_acquire_owned() {
            return Ok((p, deadline));
        }
        let t0 = Instant::now();
        let waited =
            tokio::time::timeout(deadline, Arc::clone(&self.permits).acquire_owned()).await;
        match waited {
            Ok(Ok(p)) => {
                let w = t0.elapsed();
                if w >= deadline {
                    // Entered as the deadline passed: nothing left to run in.
                    return Err(self.none_free(what, deadline));
                }
                if w >= SLOW_WAIT {
                    tracing::warn!(
                        "{what} waited {:.0} ms for an agent instance slot: all {} were busy",
                        w.as_secs_f64() * 1000.0,
                        self.slots
                    );
                }
                Ok((p, deadline - w))
            }
            Ok(Err(_closed)) => unreachable!("the gate's semaphore is never closed"),
            Err(_) => Err(self.none_free(what, deadline)),
        }
    }

    fn none_free(&self, what: &str, deadline: Duration) -> AgentError {
        AgentError::Timeout(format!(
            "{what} found no free agent instance slot within its deadline of {deadline:?}: \
             all {} were running other operations",
            self.slots
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn an_operation_waits_for_a_released_slot() {
        rt().block_on(async {
            let gate = Gate::with(2);
            let a = gate.enter("a", Duration::from_secs(1)).await.unwrap();
            let _b = gate.enter("b", Duration::from_secs(1)).await.unwrap();
            let waiting = tokio::spawn({
                let gate = gate.clone();
                async move { gate.enter("c", Duration::from_secs(30)).await.map(|_| ()) }
            });
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(!waiting.is_finished(), "entered with every slot taken");
            drop(a);
            waiting
                .await
                .unwrap()
                .expect("entered once a slot was released");
        });
    }

    #[test]
    fn no_slot_within_the_deadline_is_a_timeout_naming_the_slots() {
        rt().block_on(async {
            let gate = Gate::with(1);
            let _held = gate.enter("a", Duration::from_secs(1)).await.unwrap();
            match gate.enter("monitor", Duration::from_millis(20)).await {
                Err(AgentError::Timeout(m)) => {
                    assert!(m.contains("monitor") && m.contains("all 1 were"), "{m}")
                }
                other => panic!("expected a timeout, got {other:?}"),
            }
        });
    }
}
