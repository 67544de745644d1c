//! Integration tests of the engine: the content store and downloads between nodes.

mod hostile;
mod store;
