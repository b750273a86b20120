//! Network specs of `vm config net`: parsing `[bridge,]vlan[,mac][,driver]` and printing NICs.
//!
//! The grammar is minimega's `processVMNet` (reference §2.3). minimega learns the
//! known NIC models from `kvm -device help`; the domain cannot run QEMU, so it
//! checks drivers against a static list of the models QEMU builds ship.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::vlans::{VlanError, Vlans};

/// Bridge used when a spec names none.
pub const DEFAULT_BRIDGE: &str = "mega_bridge";

/// NIC model used when a spec names none.
pub const DEFAULT_DRIVER: &str = "e1000";

/// QEMU network device models accepted as netspec drivers.
pub const DRIVERS: &[&str] = &[
    "e1000",
    "e1000-82544gc",
    "e1000-82545em",
    "e1000e",
    "i82550",
    "i82551",
    "i82557a",
    "i82557b",
    "i82557c",
    "i82558a",
    "i82558b",
    "i82559a",
    "i82559b",
    "i82559c",
    "i82559er",
    "i82562",
    "i82801",
    "igb",
    "ne2k_isa",
    "ne2k_pci",
    "pcnet",
    "rtl8139",
    "tulip",
    "usb-net",
    "virtio-net-device",
    "virtio-net-pci",
    "vmxnet3",
];

/// Errors of netspec parsing; the texts are minimega's.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NetspecError {
    /// No fields or more than four.
    #[error("malformed netspec")]
    Malformed,
    /// An explicit driver that is not a known NIC model.
    #[error("malformed netspec, invalid driver: {0}")]
    InvalidDriver(String),
    /// An explicit MAC that does not parse.
    #[error("malformed netspec, invalid mac address: {0}")]
    InvalidMac(String),
    /// A bridge name the kernel cannot take (over 15 characters, `/`, `:` or spaces).
    #[error("malformed netspec, invalid bridge name: {0} (at most 15 characters, no '/', ':' or spaces)")]
    InvalidBridge(String),
    /// The VLAN (number or alias) is invalid or cannot be allocated.
    #[error(transparent)]
    Vlan(#[from] VlanError),
}

/// One NIC of a VM config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetConfig {
    /// Bridge the tap is attached to.
    pub bridge: String,
    /// VLAN tag.
    pub vlan: u16,
    /// The full alias key (`<namespace>//<alias>`) when the VLAN was given as an alias.
    pub alias: Option<String>,
    /// Lower-cased MAC, empty when one is generated at launch.
    pub mac: String,
    /// QEMU NIC model.
    pub driver: String,
    /// The spec as written, re-parsed by `vm config clone`.
    pub raw: String,
}

/// Whether `s` is a MAC address `xx:xx:xx:xx:xx:xx` (hex, either case).
pub fn is_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether `s` is a known QEMU NIC model.
pub fn is_driver(s: &str) -> bool {
    DRIVERS.contains(&s)
}

/// Parses one netspec in `namespace`, resolving (and possibly allocating) its VLAN.
///
/// Driver and MAC are validated before the VLAN is looked up, so a malformed
/// spec never allocates an alias.
pub fn parse(spec: &str, namespace: &str, vlans: &mut Vlans) -> Result<NetConfig, NetspecError> {
    let f: Vec<&str> = spec.split(',').collect();
    let (bridge, vlan, mac, driver) = match f.as_slice() {
        [v] => ("", *v, "", ""),
        [a, b] if is_mac(b) => ("", *a, *b, ""),
        [a, b] if is_driver(b) => ("", *a, "", *b),
        [a, b] => (*a, *b, "", ""),
        [a, b, c] if is_mac(c) => (*a, *b, *c, ""),
        [a, b, c] if is_mac(b) => ("", *a, *b, *c),
        [a, b, c] => (*a, *b, "", *c),
        [a, b, c, d] => (*a, *b, *c, *d),
        _ => return Err(NetspecError::Malformed),
    };
    if !driver.is_empty() && !is_driver(driver) {
        return Err(NetspecError::InvalidDriver(driver.to_string()));
    }
    if !mac.is_empty() && !is_mac(mac) {
        return Err(NetspecError::InvalidMac(mac.to_string()));
    }
    let bridge_ok = bridge.len() <= 15
        && bridge
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '/' && c != ':');
    if !bridge_ok {
        return Err(NetspecError::InvalidBridge(bridge.to_string()));
    }
    let number = vlan.parse::<i64>().is_ok();
    let id = vlans.lookup(namespace, vlan)?;
    let alias = (!number).then(|| {
        if vlan.contains(crate::vlans::ALIAS_SEP) {
            vlan.to_string()
        } else {
            format!("{namespace}{}{vlan}", crate::vlans::ALIAS_SEP)
        }
    });
    Ok(NetConfig {
        bridge: if bridge.is_empty() {
            DEFAULT_BRIDGE
        } else {
            bridge
        }
        .to_string(),
        vlan: id,
        alias,
        mac: mac.to_lowercase(),
        driver: if driver.is_empty() {
            DEFAULT_DRIVER
        } else {
            driver
        }
        .to_string(),
        raw: spec.to_string(),
    })
}

/// A NIC as `vm config net` prints it: `bridge,<vlan>[,mac]` (the driver is not shown).
pub fn display(nic: &NetConfig, namespace: &str, vlans: &Vlans) -> String {
    let mut s = format!("{},{}", nic.bridge, vlans.display(namespace, nic.vlan));
    if !nic.mac.is_empty() {
        s.push(',');
        s.push_str(&nic.mac);
    }
    s
}

/// A NIC list as minimega prints it: `[nic nic …]`.
pub fn display_list(nics: &[NetConfig], namespace: &str, vlans: &Vlans) -> String {
    let parts: Vec<String> = nics.iter().map(|n| display(n, namespace, vlans)).collect();
    format!("[{}]", parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(spec: &str, v: &mut Vlans) -> Result<(String, u16, String, String), NetspecError> {
        parse(spec, "minimega", v).map(|n| (n.bridge, n.vlan, n.mac, n.driver))
    }

    fn t(b: &str, vlan: u16, m: &str, d: &str) -> (String, u16, String, String) {
        (b.into(), vlan, m.into(), d.into())
    }

    #[test]
    fn every_grammar_form() {
        let v = &mut Vlans::new();
        let mac = "b4:b6:76:69:68:68";
        assert_eq!(p("10", v), Ok(t("mega_bridge", 10, "", "e1000")));
        assert_eq!(
            p("10,B4:B6:76:69:68:68", v),
            Ok(t("mega_bridge", 10, mac, "e1000"))
        );
        assert_eq!(
            p("10,virtio-net-pci", v),
            Ok(t("mega_bridge", 10, "", "virtio-net-pci"))
        );
        assert_eq!(p("br,10", v), Ok(t("br", 10, "", "e1000")));
        // An empty field means "the default".
        assert_eq!(p("br,10,", v), Ok(t("br", 10, "", "e1000")));
        assert_eq!(p(&format!("br,10,{mac}"), v), Ok(t("br", 10, mac, "e1000")));
        assert_eq!(
            p(&format!("10,{mac},rtl8139"), v),
            Ok(t("mega_bridge", 10, mac, "rtl8139"))
        );
        assert_eq!(p("br,10,i82559er", v), Ok(t("br", 10, "", "i82559er")));
        assert_eq!(
            p(&format!("br,10,{mac},e1000e"), v),
            Ok(t("br", 10, mac, "e1000e"))
        );
    }

    #[test]
    fn errors() {
        let v = &mut Vlans::new();
        assert_eq!(p("a,b,c,d,e", v), Err(NetspecError::Malformed));
        assert_eq!(
            p("br,10,bogus", v).map_err(|e| e.to_string()),
            Err("malformed netspec, invalid driver: bogus".into())
        );
        assert_eq!(
            p("br,10,zz:zz,e1000", v).map_err(|e| e.to_string()),
            Err("malformed netspec, invalid mac address: zz:zz".into())
        );
        assert!(matches!(
            p("a_very_long_bridge_name,10", v),
            Err(NetspecError::InvalidBridge(_))
        ));
        assert_eq!(
            p("4096", v).map_err(|e| e.to_string()),
            Err("invalid VLAN (0 <= vlan < 4096)".into())
        );
        assert_eq!(
            p("", v).map_err(|e| e.to_string()),
            Err("VLAN must be non-empty string".into())
        );
        // A bad driver never allocates the alias.
        assert!(p("br,X,bogus", v).is_err());
        assert_eq!(v.aliases("minimega"), Vec::<(String, u16)>::new());
    }

    #[test]
    fn aliases_are_recorded_and_displayed() {
        let v = &mut Vlans::new();
        let a = parse("A", "minimega", v).expect("alias");
        assert_eq!(a.alias.as_deref(), Some("minimega//A"));
        assert_eq!(a.vlan, 101);
        assert_eq!(display(&a, "minimega", v), "mega_bridge,A (101)");
        assert_eq!(display(&a, "foo", v), "mega_bridge,minimega//A (101)");
        let b = parse("test_bridge,100,13:37:13:37:00:02", "minimega", v).expect("number");
        assert_eq!(b.alias, None);
        assert_eq!(b.raw, "test_bridge,100,13:37:13:37:00:02");
        assert_eq!(
            display_list(&[a, b], "minimega", v),
            "[mega_bridge,A (101) test_bridge,100,13:37:13:37:00:02]"
        );
        assert_eq!(display_list(&[], "minimega", v), "[]");
    }
}
