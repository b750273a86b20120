//! ferromega-host-container: container namespaces, overlayfs and cgroups (the container issue fills this crate).
