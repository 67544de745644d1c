//! The commands of `docsync`, one module per group.

pub(crate) mod content;
