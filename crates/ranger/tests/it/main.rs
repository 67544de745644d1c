//! Integration tests of the `ranger` crate (one binary, one module per topic).

mod budget;
mod convergence;
mod hooks;
mod hostile;
mod mem_store;
mod support;
mod transcripts;
