//! Differential tests: our data model against the real iroh-docs 0.101 types.

mod differential;
