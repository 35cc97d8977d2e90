//! What one agent instance may allocate: linear memory summed over all its
//! memories (a limit per memory lets a component with 16 memories reach
//! 16 times the limit), table elements summed over all tables, and how
//! many core instances, memories and tables it may create (wasmtime's
//! defaults are 10,000 of each). Also the caps on host-side tables the
//! guest fills: WASI resources and component-model handles.
//!
//! The counts are measured needs times a margin (`host/tests/agent_limits.rs`
//! prints them and asserts a margin of at least 2): the built-in Rust
//! agents use 3 core instances, 1 memory, 2 tables and 1.1 MiB; the C
//! example 5 instances, 1 memory, 2 tables; the Python example
//! (componentize-py, the largest) 14 instances, 1 memory, 2 tables and
//! 12.4 MiB at meta-data.

use wasmtime::ResourceLimiter;

/// Core module instances per agent instance.
pub const MAX_INSTANCES: usize = 64;
/// Linear memories per agent instance.
pub const MAX_MEMORIES: usize = 16;
/// Tables per agent instance.
pub const MAX_TABLES: usize = 64;
/// Table elements summed over all tables (each is a pointer on the host).
pub const MAX_TABLE_ELEMENTS: usize = 100_000;
/// Live WASI resources (streams, pollables, ...) in the host's table.
pub const MAX_WASI_RESOURCES: usize = 1024;
/// Live component-model resource handles (wasmtime's default is 100,000).
pub const MAX_COMPONENT_HANDLES: usize = 10_000;
/// Bytes one `wasi:random` call may ask for (host memory, allocated before
/// the guest's limit applies).
pub const MAX_RANDOM_BYTES: u64 = 1 << 20;

/// Which limit an instance ran into first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LimitHit {
    /// Total linear memory.
    Memory,
    /// Total table elements.
    TableElements,
}

/// The store's limiter: refuses growth past the totals and remembers that
/// it did, so the resulting trap (Rust's allocator aborts on failure) is
/// reported as a limit error rather than a generic crash.
pub(crate) struct InstanceLimiter {
    /// Linear memory limit in bytes, all memories together.
    pub(crate) memory_limit: usize,
    /// Bytes of linear memory currently allowed, all memories together.
    memory_used: usize,
    /// Largest `memory_used` seen (what the instance needed).
    pub(crate) memory_peak: usize,
    /// Table elements currently allowed, all tables together.
    table_elements: usize,
    /// Memories created (for measurements and messages).
    pub(crate) memories_created: usize,
    /// Tables created.
    pub(crate) tables_created: usize,
    /// The first limit hit, if any.
    pub(crate) hit: Option<LimitHit>,
}

impl InstanceLimiter {
    /// A limiter with `memory_limit` bytes of linear memory in total.
    pub(crate) fn new(memory_limit: usize) -> InstanceLimiter {
        InstanceLimiter {
            memory_limit,
            memory_used: 0,
            memory_peak: 0,
            table_elements: 0,
            memories_created: 0,
            tables_created: 0,
            hit: None,
        }
    }

    fn refuse(&mut self, what: LimitHit) -> wasmtime::Result<bool> {
        self.hit.get_or_insert(what);
        Ok(false)
    }
}

impl ResourceLimiter for InstanceLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // A new memory is reported as growing from 0 to its minimum.
        if current == 0 {
            self.memories_created += 1;
        }
        let total = self
            .memory_used
            .saturating_sub(current)
            .saturating_add(desired);
        if total > self.memory_limit {
            return self.refuse(LimitHit::Memory);
        }
        // Counted when allowed; a growth that then fails in the OS stays
        // counted, which only errs on the safe side.
        self.memory_used = total;
        self.memory_peak = self.memory_peak.max(total);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if current == 0 {
            self.tables_created += 1;
        }
        let total = self
            .table_elements
            .saturating_sub(current)
            .saturating_add(desired);
        if total > MAX_TABLE_ELEMENTS {
            return self.refuse(LimitHit::TableElements);
        }
        self.table_elements = total;
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_limited_in_total_across_memories() {
        let mib = 1 << 20;
        let mut l = InstanceLimiter::new(64 * mib);
        // Three memories of 20 MiB fit, the fourth does not.
        for _ in 0..3 {
            assert!(l.memory_growing(0, 20 * mib, None).unwrap());
        }
        assert!(!l.memory_growing(0, 20 * mib, None).unwrap());
        assert_eq!(l.hit, Some(LimitHit::Memory));
        assert_eq!(l.memories_created, 4);
        // Growing one of them counts only the difference.
        let mut l = InstanceLimiter::new(64 * mib);
        assert!(l.memory_growing(0, 30 * mib, None).unwrap());
        assert!(l.memory_growing(30 * mib, 60 * mib, None).unwrap());
        assert!(!l.memory_growing(60 * mib, 65 * mib, None).unwrap());
        assert_eq!(l.memory_peak, 60 * mib);
    }

    #[test]
    fn table_elements_are_limited_in_total() {
        let mut l = InstanceLimiter::new(1);
        assert!(l.table_growing(0, MAX_TABLE_ELEMENTS / 2, None).unwrap());
        assert!(l.table_growing(0, MAX_TABLE_ELEMENTS / 2, None).unwrap());
        assert!(!l.table_growing(0, 1, None).unwrap());
        assert_eq!(l.hit, Some(LimitHit::TableElements));
    }
}
