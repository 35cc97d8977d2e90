//! Fiber stacks for agent operations, kept for the next operation.
//!
//! Every operation runs on a fiber stack of its own. Mapped afresh each
//! time, a stack costs an mmap and an mprotect, a page fault for every page
//! the operation touches, and an munmap whose TLB shootdown interrupts the
//! other core: in a failover that starts 256 addresses, 256 times over on
//! both agent threads at once. A kept stack is already mapped, its guard
//! page already protected and its used pages already resident.
//!
//! A kept stack is not cleared, as in wasmtime's own pooling allocator
//! (whose stack zeroing is off by default): what the host's frames left on
//! it is not addressable from wasm, which reads and writes only its own
//! linear memory. When wasmtime asks for a zeroed stack, a fresh mapping
//! (zero-filled by the kernel) is made instead.

use std::ops::Range;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use nix::sys::mman::{mmap_anonymous, mprotect, munmap, MapFlags, ProtFlags};
use wasmtime::{StackCreator, StackMemory};

/// Stacks kept when their operation ends; the rest are unmapped. A run of
/// a group starts up to 16 operations at once, on two agent threads, plus
/// monitors: 32 covers that. Only the pages an operation touched stay
/// resident (tens of KiB each), so the cap bounds RSS by about a MiB.
pub const KEPT_STACKS: usize = 32;

/// One anonymous mapping: a guard page at the bottom, the stack above it.
struct Mapping {
    base: NonNull<libc::c_void>,
    /// Whole length, guard included.
    len: usize,
}

// SAFETY: a Mapping is plain address space owned by exactly one holder (a
// stack in use or the pool); nothing in it is tied to a thread.
unsafe impl Send for Mapping {}
// SAFETY: a shared Mapping is only read (its addresses), never written.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Map `len` bytes ([`mapping_len`]): one PROT_NONE guard page, the
    /// stack above it.
    fn new(len: usize) -> wasmtime::Result<Mapping> {
        let page = page_size();
        let size = len - page;
        let len_nz = std::num::NonZeroUsize::new(len).expect("a guard page at least");
        // SAFETY: a fresh private anonymous mapping at an address of the
        // kernel's choosing aliases nothing.
        let base = unsafe {
            mmap_anonymous(
                None,
                len_nz,
                ProtFlags::PROT_NONE,
                MapFlags::MAP_PRIVATE | MapFlags::MAP_NORESERVE,
            )
        }
        .map_err(|e| wasmtime::format_err!("mapping a {len}-byte agent stack: {e}"))?;
        let m = Mapping { base, len };
        let above_guard = NonNull::new(m.at(page)).expect("inside the mapping");
        // SAFETY: the range lies inside the mapping just made, which only
        // `m` refers to.
        unsafe {
            mprotect(
                above_guard,
                size,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            )
        }
        .map_err(|e| wasmtime::format_err!("making an agent stack writable: {e}"))?;
        Ok(m)
    }

    fn at(&self, offset: usize) -> *mut libc::c_void {
        self.base.as_ptr().cast::<u8>().wrapping_add(offset).cast()
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping is ours alone and nothing runs on it any
        // more (wasmtime drops a stack only after its fiber finished).
        if let Err(e) = unsafe { munmap(self.base, self.len) } {
            tracing::warn!("unmapping an agent stack: {e}");
        }
    }
}

/// The stacks waiting for an operation, shared by the pool and every
/// stack it handed out (a stack goes back when it is dropped).
struct Kept {
    /// Kept mappings, each a stack length plus one page.
    mappings: Mutex<Vec<Mapping>>,
    keep: usize,
    /// Mappings that exist, kept or in use.
    live: AtomicUsize,
}

impl Kept {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Mapping>> {
        self.mappings.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A kept mapping of exactly `len` bytes, if any.
    fn take(&self, len: usize) -> Option<Mapping> {
        let mut kept = self.lock();
        let i = kept.iter().rposition(|m| m.len == len)?;
        Some(kept.swap_remove(i))
    }

    fn give_back(&self, m: Mapping) {
        let spare = {
            let mut kept = self.lock();
            if kept.len() < self.keep {
                kept.push(m);
                None
            } else {
                Some(m)
            }
        };
        // Unmapped (if over the cap) after the lock is released.
        if let Some(m) = spare {
            drop(m);
            self.live.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Agent fiber stacks: reused while kept, mapped when none is.
#[derive(Clone)]
pub struct StackPool {
    kept: Arc<Kept>,
}

impl StackPool {
    /// A pool that keeps up to `keep` stacks.
    pub fn new(keep: usize) -> StackPool {
        StackPool {
            kept: Arc::new(Kept {
                mappings: Mutex::new(Vec::new()),
                keep,
                live: AtomicUsize::new(0),
            }),
        }
    }

    /// The pool every runtime of this process shares.
    pub fn process() -> StackPool {
        static POOL: OnceLock<StackPool> = OnceLock::new();
        POOL.get_or_init(|| StackPool::new(KEPT_STACKS)).clone()
    }

    /// How many stacks wait for reuse.
    #[cfg(test)]
    pub fn kept(&self) -> usize {
        self.kept.lock().len()
    }

    /// How many stacks are mapped, kept or in use.
    #[cfg(test)]
    pub fn mapped(&self) -> usize {
        self.kept.live.load(Ordering::Relaxed)
    }
}

// SAFETY: every stack handed out is a page-aligned mapping with a
// PROT_NONE guard page below a writable range of at least `size` bytes,
// owned by that stack alone until it is dropped.
unsafe impl StackCreator for StackPool {
    fn new_stack(&self, size: usize, zeroed: bool) -> wasmtime::Result<Box<dyn StackMemory>> {
        let len = mapping_len(size);
        let kept = if zeroed { None } else { self.kept.take(len) };
        let mapping = match kept {
            Some(m) => m,
            None => {
                let m = Mapping::new(len)?;
                self.kept.live.fetch_add(1, Ordering::Relaxed);
                m
            }
        };
        Ok(Box::new(PooledStack {
            mapping: Some(mapping),
            kept: Arc::clone(&self.kept),
        }))
    }
}

/// A stack in use; back to its pool when wasmtime drops it.
struct PooledStack {
    mapping: Option<Mapping>,
    kept: Arc<Kept>,
}

impl PooledStack {
    fn mapping(&self) -> &Mapping {
        self.mapping.as_ref().expect("held until drop")
    }
}

// SAFETY: see the StackCreator impl; the addresses stay valid while the
// stack lives because the mapping is only released in drop.
unsafe impl StackMemory for PooledStack {
    fn top(&self) -> *mut u8 {
        let m = self.mapping();
        m.at(m.len).cast()
    }

    fn range(&self) -> Range<usize> {
        let m = self.mapping();
        m.at(page_size()) as usize..m.at(m.len) as usize
    }

    fn guard_range(&self) -> Range<*mut u8> {
        let m = self.mapping();
        m.at(0).cast()..m.at(page_size()).cast()
    }
}

impl Drop for PooledStack {
    fn drop(&mut self) {
        if let Some(m) = self.mapping.take() {
            self.kept.give_back(m);
        }
    }
}

/// The whole mapping for a stack of `size` bytes: whole pages, plus the
/// guard page. Kept mappings are reused only for the same length.
fn mapping_len(size: usize) -> usize {
    size.next_multiple_of(page_size()) + page_size()
}

fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .and_then(|p| usize::try_from(p).ok())
            .unwrap_or(4096)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZE: usize = 64 << 10;

    /// The permissions /proc/self/maps shows for the mapping holding `addr`.
    fn perms_at(addr: usize) -> String {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        for line in maps.lines() {
            let (range, rest) = line.split_once(' ').unwrap();
            let (lo, hi) = range.split_once('-').unwrap();
            let lo = usize::from_str_radix(lo, 16).unwrap();
            let hi = usize::from_str_radix(hi, 16).unwrap();
            if (lo..hi).contains(&addr) {
                return rest[..4].to_string();
            }
        }
        panic!("{addr:#x} is not mapped");
    }

    #[test]
    fn a_dropped_stack_is_reused_with_its_guard_page_still_protected() {
        let pool = StackPool::new(2);
        let s = pool.new_stack(SIZE, false).unwrap();
        let (top, range, guard) = (s.top() as usize, s.range(), s.guard_range());
        assert_eq!(top, range.end);
        assert!(range.len() >= SIZE, "{range:?}");
        assert_eq!(guard.end as usize, range.start);
        // The stack is writable to its lowest byte; the guard is not.
        // SAFETY: both addresses are inside the stack's writable range.
        unsafe {
            *(range.start as *mut u8) = 7;
            *((top - 1) as *mut u8) = 7;
        }
        assert_eq!(perms_at(range.start), "rw-p");
        assert_eq!(perms_at(guard.start as usize), "---p");
        drop(s);
        assert_eq!(pool.kept(), 1);

        let again = pool.new_stack(SIZE, false).unwrap();
        assert_eq!(again.top() as usize, top, "the kept stack was reused");
        assert_eq!(pool.kept(), 0);
        assert_eq!(perms_at(again.guard_range().start as usize), "---p");
    }

    #[test]
    fn the_pool_keeps_at_most_its_cap_and_unmaps_the_rest() {
        let pool = StackPool::new(2);
        let stacks: Vec<_> = (0..4)
            .map(|_| pool.new_stack(SIZE, false).unwrap())
            .collect();
        assert_eq!((pool.kept(), pool.mapped()), (0, 4));
        drop(stacks);
        assert_eq!((pool.kept(), pool.mapped()), (2, 2), "(kept, mapped)");
        // Reuse makes no new mapping until the kept ones are in use.
        let a = pool.new_stack(SIZE, false).unwrap();
        let b = pool.new_stack(SIZE, false).unwrap();
        assert_eq!((pool.kept(), pool.mapped()), (0, 2));
        let c = pool.new_stack(SIZE, false).unwrap();
        assert_eq!(pool.mapped(), 3);
        drop((a, b, c));
        assert_eq!((pool.kept(), pool.mapped()), (2, 2));
    }

    #[test]
    fn a_zeroed_request_gets_a_fresh_mapping_and_other_sizes_are_not_mixed() {
        let pool = StackPool::new(4);
        let s = pool.new_stack(SIZE, false).unwrap();
        let top = s.top() as usize;
        // SAFETY: inside the stack's writable range.
        unsafe { *((top - 1) as *mut u8) = 0xAA };
        drop(s);
        let zeroed = pool.new_stack(SIZE, true).unwrap();
        let ztop = zeroed.top() as usize;
        // SAFETY: inside the (fresh) stack's writable range.
        assert_eq!(unsafe { *((ztop - 1) as *const u8) }, 0, "not cleared");
        assert_eq!(pool.kept(), 1, "the dirty stack is still kept, unused");
        let bigger = pool.new_stack(SIZE * 2, false).unwrap();
        assert!(bigger.range().len() >= SIZE * 2);
        assert_eq!(
            pool.kept(),
            1,
            "a kept stack of another size is not handed out"
        );
    }
}
