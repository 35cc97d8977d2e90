//! The agents a runtime has loaded and that are still in use, so that
//! loading the same agent again shares the first load.
//!
//! A haresources line of 256 `IPaddr::` addresses binds 256 resources to
//! one agent. Loading it once per resource hashed the component, mapped
//! the compiled code, pre-linked an instance and asked the agent for its
//! metadata 256 times: 140-250 ms of a restarting node's way back to its
//! groups. Entries are weak: an agent no resource holds any more (a
//! reload dropped it, or its file changed) is loaded afresh.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use sha2::{Digest, Sha256};

/// What identifies one load: the name it was loaded under (it names the
/// agent in logs and errors) and where its code came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Key {
    name: String,
    source: Source,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Source {
    /// Compiled into this binary: the name alone says which bytes.
    Builtin,
    /// A component file, by its content: a changed file is another agent.
    Content([u8; 32]),
}

impl Key {
    /// The key of `wasm` loaded as `name`.
    pub(super) fn new(name: &str, wasm: &[u8], builtin: bool) -> Key {
        let source = if builtin {
            Source::Builtin
        } else {
            Source::Content(Sha256::digest(wasm).into())
        };
        Key {
            name: name.to_string(),
            source,
        }
    }
}

/// Loads still alive, by key.
pub(super) struct Loaded<T> {
    entries: Mutex<HashMap<Key, Weak<T>>>,
}

impl<T> Default for Loaded<T> {
    fn default() -> Self {
        Loaded {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> Loaded<T> {
    /// The live load of `key`, if any.
    pub(super) fn get(&self, key: &Key) -> Option<Arc<T>> {
        self.lock().get(key).and_then(Weak::upgrade)
    }

    /// Remember `agent` as the load of `key`; entries nothing uses any
    /// more are forgotten on the way, so the table never outgrows the
    /// agents in use.
    pub(super) fn insert(&self, key: Key, agent: &Arc<T>) {
        let mut entries = self.lock();
        entries.retain(|_, w| w.strong_count() > 0);
        entries.insert(key, Arc::downgrade(agent));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Weak<T>>> {
        // A panic elsewhere cannot leave the map inconsistent: each
        // operation on it is one call.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_load_shares_the_first_while_it_lives() {
        let loaded: Loaded<u32> = Loaded::default();
        let key = Key::new("IPaddr", b"code", true);
        assert!(loaded.get(&key).is_none());
        let first = Arc::new(7);
        loaded.insert(key.clone(), &first);
        let again = loaded.get(&key).expect("shared while alive");
        assert!(Arc::ptr_eq(&first, &again));
        drop((first, again));
        assert!(loaded.get(&key).is_none(), "dropped agents are not kept");
    }

    #[test]
    fn files_are_told_apart_by_content_and_every_load_by_name() {
        let a = Key::new("web", b"one", false);
        assert_eq!(a, Key::new("web", b"one", false));
        assert_ne!(a, Key::new("web", b"two", false), "file changed");
        assert_ne!(a, Key::new("web2", b"one", false), "other name");
        assert_ne!(a, Key::new("web", b"one", true), "builtin of that name");
    }

    #[test]
    fn forgotten_entries_are_pruned_on_insert() {
        let loaded: Loaded<u32> = Loaded::default();
        for i in 0..100u32 {
            let agent = Arc::new(i);
            loaded.insert(Key::new("a", &i.to_le_bytes(), false), &agent);
        }
        let kept = Arc::new(0);
        loaded.insert(Key::new("b", b"", true), &kept);
        assert_eq!(loaded.lock().len(), 1);
    }
}
