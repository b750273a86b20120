//! ferromega-host-qemu: QEMU processes driven over QMP (the KVM issue fills this crate).
