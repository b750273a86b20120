//! ferromega-host-container: `container` VMs — init cloned into new pid, mount, uts, ipc
//! and net namespaces, an overlayfs root, cgroups (v1, and v2 where mounted) for memory,
//! CPU quota and the freezer, and a pty console with scrollback.
//!
//! Layout: [`runtime`] implements the domain's `VmRuntime`; [`launch`] and [`watch`] are
//! its launch and exit halves; [`shim`] runs inside the new namespaces (the hidden
//! `ferromega __container-shim` mode) and applies the [`plan`] built from a [`spec`];
//! [`cgroup`], [`overlay`] and [`console`] are the host pieces; [`sys`] holds every
//! system call.

pub mod cgroup;
pub mod console;
mod launch;
pub mod overlay;
pub mod plan;
pub mod runtime;
pub mod shim;
pub mod spec;
pub mod state;
pub mod sys;
mod watch;

pub use runtime::{ContainerRuntime, Options};
pub use shim::SHIM_ARG;
