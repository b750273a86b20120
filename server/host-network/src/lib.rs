//! ferromega-host-network: the host network, behind the domain's `HostNetwork`, in two
//! implementations: [`LinuxNetwork`] on Linux bridges (one kernel bridge per logical
//! bridge and VLAN, taps and veths over netlink) and [`OvsNetwork`] on Open vSwitch
//! (`ovs-vsctl`/`ovs-ofctl` as minimega drives it). Both share tc/nftables qos, pcap
//! captures, IP snooping, NetFlow collection and dnsmasq.

pub mod bpf;
pub mod bridges;
pub mod capture;
pub mod common;
mod dhcp;
pub mod dnsmasq;
pub mod linux;
pub mod names;
pub mod netflow;
pub mod netlink;
pub mod ovs;
pub mod qos;
pub mod snoop;
pub mod sys;

pub use linux::LinuxNetwork;
pub use ovs::OvsNetwork;
