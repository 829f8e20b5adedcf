//! The `ferry` command's library: local wiring (embedded store, tenants,
//! simulators), the demo run, preview, and report rendering. The binary is a
//! thin CLI over these.

pub mod console;
pub mod demo;
pub mod deploy;
pub mod local;
pub mod preview;
pub mod process;
pub mod real;
pub mod render;
