//! Read-only look at the paths granted to the resource.

use crate::bindings::wasmbeat::agent::files as wit;
use crate::Error;

pub use wit::PathKind;

/// What is at `path` (must be granted to the resource).
pub fn inspect(path: &str) -> Result<PathKind, Error> {
    wit::inspect(path)
}
