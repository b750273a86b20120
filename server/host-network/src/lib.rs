//! ferromega-host-network: the host network on Linux bridges — one kernel bridge per
//! (logical bridge, VLAN), taps and veths over netlink, tc/nftables qos, pcap captures,
//! IP snooping and dnsmasq. [`LinuxNetwork`] implements the domain's `HostNetwork`.

pub mod bpf;
pub mod bridges;
pub mod capture;
mod dhcp;
pub mod dnsmasq;
pub mod linux;
pub mod names;
pub mod netlink;
pub mod qos;
pub mod snoop;
pub mod sys;

pub use linux::LinuxNetwork;
