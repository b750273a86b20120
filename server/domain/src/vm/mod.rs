//! VMs: their configuration (`vm config`), network specs, launch rules and the registry.

pub mod config;
pub mod launch;
pub mod netspec;
pub mod registry;
