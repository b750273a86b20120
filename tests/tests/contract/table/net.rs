//! Contract rows of the networking operations (taps, bridges, `vm net`, qos, captures,
//! dnsmasq). The test app has no host network, so operations that would touch one give
//! that host's honest answer, `no network backend on this host` (500), and the ones that
//! only read the server's own records (listings, capture settings) answer normally; the
//! VM `foo` has no NICs, so NIC-indexed operations refuse its index 0.
//! `network_contract.rs` drives the same operations against a recording fake network.

use ferromega_tests::args;

use super::{case, err, strs, Case, Expect};

const NO_NET: &str = "no network backend on this host";

/// The rows.
pub(super) fn net_cases() -> Vec<Case> {
    let launched = &["vm launch kvm foo"][..];
    vec![
        case("tap", Expect::Shape(strs(&["bridge", "tap", "vlan"]), 0)),
        case("tap_create", err(500, NO_NET)).args(args().b("create").s("vlan", "10")),
        case("tap_delete", Expect::Ok).args(args().b("delete").s("tap", "all")),
        case("clear_tap", Expect::Ok),
        case("bridge", err(500, NO_NET)),
        case("bridge_trunk", err(500, NO_NET)).args(
            args()
                .b("trunk")
                .s("bridge", "mega_bridge")
                .s("interface", "eth9"),
        ),
        case("bridge_notrunk", err(500, NO_NET)).args(
            args()
                .b("notrunk")
                .s("bridge", "mega_bridge")
                .s("interface", "eth9"),
        ),
        case("bridge_tunnel", err(500, NO_NET)).args(
            args()
                .b("tunnel")
                .b("vxlan")
                .s("bridge", "mega_bridge")
                .s("remote", "10.0.0.2"),
        ),
        case("bridge_notunnel", err(500, NO_NET)).args(
            args()
                .b("notunnel")
                .s("bridge", "mega_bridge")
                .s("interface", "mega_tap9"),
        ),
        case(
            "vm_net_connect",
            err(409, "no network 0, VM only has 0 networks"),
        )
        .setup(launched)
        .args(
            args()
                .b("connect")
                .s("vm", "foo")
                .s("tap", "0")
                .s("vlan", "10"),
        ),
        case(
            "vm_net_disconnect",
            err(409, "no network 0, VM only has 0 networks"),
        )
        .setup(launched)
        .args(args().b("disconnect").s("vm", "foo").s("tap", "0")),
        case("qos_add", err(409, "invalid tap index specified: 0"))
            .setup(launched)
            .args(
                args()
                    .b("add")
                    .s("vm", "foo")
                    .s("interface", "0")
                    .b("loss")
                    .s("percent", "5"),
            ),
        case("clear_qos", err(409, "invalid tap index specified: 0"))
            .setup(launched)
            .args(args().s("vm", "foo").s("tap", "0")),
        case(
            "capture",
            Expect::Shape(
                strs(&["bridge", "type", "interface", "mode", "compress", "path"]),
                0,
            ),
        ),
        case("capture_pcap_snaplen", Expect::Ok)
            .args(args().b("pcap").b("snaplen").s("size", "128"))
            .after(&[("capture pcap snaplen", "128")]),
        case("capture_pcap_filter", Expect::Ok)
            .args(args().b("pcap").b("filter").s("bpf", "tcp"))
            .after(&[("capture pcap filter", "tcp")]),
        case("capture_netflow_mode", Expect::Ok).args(args().b("netflow").b("mode").b("ascii")),
        case("capture_netflow_gzip", Expect::Ok).args(args().b("netflow").b("gzip").b("true")),
        case("capture_pcap_vm", err(404, "no such interface 0"))
            .setup(launched)
            .args(
                args()
                    .b("pcap")
                    .s("vm", "foo")
                    .s("interface", "0")
                    .s("filename", "x.pcap"),
            ),
        case("capture_pcap_delete_vm", Expect::Ok)
            .setup(launched)
            .args(args().b("pcap").b("delete").s("vm", "foo")),
        case("capture_pcap_bridge", err(500, NO_NET)).args(
            args()
                .b("pcap")
                .s("bridge", "mega_bridge")
                .s("filename", "/dev/null"),
        ),
        case(
            "capture_pcap_delete_bridge",
            err(404, "no capture on bridge mega_bridge"),
        )
        .args(args().b("pcap").b("delete").s("bridge", "mega_bridge")),
        case("capture_netflow_bridge", err(500, NO_NET)).args(
            args()
                .b("netflow")
                .b("bridge")
                .s("bridge", "mega_bridge")
                .s("filename", "f"),
        ),
        case(
            "capture_netflow_delete_bridge",
            err(404, "no netflow capture on bridge mega_bridge"),
        )
        .args(args().b("netflow").b("delete").s("name", "mega_bridge")),
        case("capture_netflow_timeout", err(500, NO_NET))
            .args(args().b("netflow").b("timeout").s("timeout", "10")),
        case("clear_capture", Expect::Ok),
        case(
            "dnsmasq",
            Expect::Shape(strs(&["id", "address", "min", "max", "path", "pid"]), 0),
        ),
        case("dnsmasq_start", err(500, NO_NET)).args(
            args()
                .s("listen", "10.9.0.1")
                .s("low", "10.9.0.10")
                .s("high", "10.9.0.20"),
        ),
        case("dnsmasq_kill", err(404, "unknown dnsmasq id: 7")).args(args().s("id", "7")),
        case("dnsmasq_configure", err(404, "unknown dnsmasq id: 7"))
            .args(args().s("ID", "7").b("ip")),
    ]
}
