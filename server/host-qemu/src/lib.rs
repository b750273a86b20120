//! ferromega-host-qemu: QEMU processes driven over QMP — the argv builder, process
//! supervision, the QMP session, the `Hypervisor` runtime, qemu-img wrappers and screenshots.

pub mod argv;
pub mod disk;
pub mod process;
pub mod qmp;
pub mod runtime;
pub mod screenshot;
