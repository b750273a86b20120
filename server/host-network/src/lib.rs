//! ferromega-host-network: bridges, taps and qos over netlink (the networking issue fills this crate).
