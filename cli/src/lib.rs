//! The `ferry` command's library: local wiring (embedded store, tenants,
//! simulators), the demo run, and report rendering. The binary is a thin CLI.

pub mod local;
