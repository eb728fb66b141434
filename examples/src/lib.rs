//! Helpers shared by the example programs (`bench`, `dht-sim`, `wan-push`).

pub mod bare_stack;
pub mod procfs;
