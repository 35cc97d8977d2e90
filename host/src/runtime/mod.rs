//! The wasmtime engine, component cache, instantiation and limits for resource agents.
