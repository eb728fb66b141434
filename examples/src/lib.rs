//! Helpers shared by the example programs (`bench`, `dht-sim`).

pub mod procfs;
