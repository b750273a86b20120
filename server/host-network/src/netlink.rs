//! Netlink calls (rtnetlink): links by name, bridges, veths, vxlan/gretap, masters,
//! addresses, namespaces — every change to the host's links goes through here.

use std::net::{IpAddr, Ipv4Addr};

use futures_util::TryStreamExt;
use rtnetlink::packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_REQUEST,
};
use rtnetlink::packet_route::link::{
    GreIOFlags, InfoBridge, InfoKind, LinkAttribute, LinkInfo, LinkMessage,
};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::{Handle, LinkBridge, LinkGre, LinkUnspec, LinkVeth, LinkVxlan};
use thiserror::Error;

/// A netlink failure, with the kernel's errno text when it gave one.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NlError {
    /// The kernel refused the request.
    #[error("{what}: {text}")]
    Kernel {
        /// What was being done.
        what: String,
        /// The errno text (`File exists`).
        text: String,
        /// The errno.
        errno: i32,
    },
    /// The netlink socket could not be opened.
    #[error("netlink: {0}")]
    Socket(String),
    /// A link that should exist does not.
    #[error("no such interface: {0}")]
    NoSuchLink(String),
}

impl NlError {
    /// The errno of a kernel refusal.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NlError::Kernel { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

fn kernel(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NlError {
    let what = what.into();
    move |e| match e {
        rtnetlink::Error::NetlinkError(m) => {
            let errno = m.code.map(|c| -c.get()).unwrap_or(0);
            NlError::Kernel {
                what,
                text: std::io::Error::from_raw_os_error(errno)
                    .to_string()
                    .split(" (os error")
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                errno,
            }
        }
        other => NlError::Kernel {
            what,
            text: other.to_string(),
            errno: 0,
        },
    }
}

/// What the kernel says about one link.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkFacts {
    /// Interface index.
    pub index: u32,
    /// Name.
    pub name: String,
    /// `bridge`, `veth`, `tun`, `vxlan` … (empty when none).
    pub kind: String,
    /// Index of its master, if enslaved.
    pub master: Option<u32>,
    /// Its alias (`ifalias`).
    pub alias: String,
}

fn facts(msg: &LinkMessage) -> LinkFacts {
    let mut f = LinkFacts {
        index: msg.header.index,
        ..LinkFacts::default()
    };
    for a in &msg.attributes {
        match a {
            LinkAttribute::IfName(n) => f.name = n.clone(),
            LinkAttribute::Controller(m) => f.master = Some(*m),
            LinkAttribute::IfAlias(s) => f.alias = s.clone(),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        f.kind = k.to_string();
                    }
                }
            }
            _ => {}
        }
    }
    f
}

/// A netlink session of this process's network namespace.
#[derive(Clone)]
pub struct Nl {
    handle: Handle,
}

impl Nl {
    /// Opens a netlink socket and drives it on the current tokio runtime.
    pub fn connect() -> Result<Nl, NlError> {
        let (conn, handle, _) =
            rtnetlink::new_connection().map_err(|e| NlError::Socket(e.to_string()))?;
        tokio::spawn(conn);
        Ok(Nl { handle })
    }

    /// The link called `name`, if there is one.
    pub async fn link(&self, name: &str) -> Result<Option<LinkFacts>, NlError> {
        let mut s = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match s.try_next().await {
            Ok(m) => Ok(m.as_ref().map(facts)),
            Err(rtnetlink::Error::NetlinkError(m))
                if m.code.map(|c| -c.get()) == Some(libc::ENODEV) =>
            {
                Ok(None)
            }
            Err(e) => Err(kernel(format!("looking up {name}"))(e)),
        }
    }

    /// The link called `name`, which must exist.
    pub async fn must(&self, name: &str) -> Result<LinkFacts, NlError> {
        self.link(name)
            .await?
            .ok_or_else(|| NlError::NoSuchLink(name.to_string()))
    }

    /// Every link of the namespace.
    pub async fn links(&self) -> Result<Vec<LinkFacts>, NlError> {
        let mut s = self.handle.link().get().execute();
        let mut out = Vec::new();
        while let Some(m) = s.try_next().await.map_err(kernel("listing links"))? {
            out.push(facts(&m));
        }
        Ok(out)
    }

    /// The links enslaved to the link with index `master`.
    pub async fn ports_of(&self, master: u32) -> Result<Vec<LinkFacts>, NlError> {
        Ok(self
            .links()
            .await?
            .into_iter()
            .filter(|l| l.master == Some(master))
            .collect())
    }

    async fn set(&self, what: String, msg: LinkMessage) -> Result<(), NlError> {
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(kernel(what))
    }

    async fn add(&self, what: String, msg: LinkMessage) -> Result<(), NlError> {
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(kernel(what))
    }

    /// Creates a bridge, up, without STP delays or multicast snooping (so neighbour
    /// solicitations reach every port), labelled with `alias`.
    pub async fn bridge_create(&self, name: &str, alias: &str) -> Result<(), NlError> {
        let msg = LinkBridge::new(name)
            .append_info_data(InfoBridge::MulticastSnooping(false))
            .append_info_data(InfoBridge::ForwardDelay(0))
            .build();
        self.add(format!("creating bridge {name}"), msg).await?;
        let idx = self.must(name).await?.index;
        self.set(
            format!("labelling {name}"),
            LinkUnspec::new_with_index(idx).alias(alias).build(),
        )
        .await
    }

    /// Creates a veth pair `name` ⇄ `peer`.
    pub async fn veth_create(&self, name: &str, peer: &str) -> Result<(), NlError> {
        self.add(
            format!("creating veth {name}"),
            LinkVeth::new(name, peer).build(),
        )
        .await
    }

    /// Creates a VXLAN device for VNI `vni` towards `remote` (UDP 4789).
    pub async fn vxlan_create(&self, name: &str, vni: u32, remote: IpAddr) -> Result<(), NlError> {
        let b = LinkVxlan::new(name, vni).port(4789).learning(true);
        let b = match remote {
            IpAddr::V4(a) => b.remote(a),
            IpAddr::V6(a) => b.remote6(a),
        };
        self.add(format!("creating vxlan {name}"), b.build()).await
    }

    /// Adds `remote` as one more default destination of the VXLAN device `index`
    /// (`bridge fdb append 00:00:00:00:00:00 dev … dst remote`): flooded frames go to
    /// every remote, so one device per VNI serves several hosts.
    pub async fn vxlan_fdb_append(&self, index: u32, remote: IpAddr) -> Result<(), NlError> {
        let msg = vxlan_default_entry(index, remote);
        let mut req = NetlinkMessage::from(RouteNetlinkMessage::NewNeighbour(msg));
        req.header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND;
        self.ack(req, format!("adding vxlan destination {remote}"))
            .await
    }

    /// Removes destination `remote` from the VXLAN device `index`.
    pub async fn vxlan_fdb_remove(&self, index: u32, remote: IpAddr) -> Result<(), NlError> {
        let msg = vxlan_default_entry(index, remote);
        let mut req = NetlinkMessage::from(RouteNetlinkMessage::DelNeighbour(msg));
        req.header.flags = NLM_F_REQUEST | NLM_F_ACK;
        self.ack(req, format!("removing vxlan destination {remote}"))
            .await
    }

    /// Sends `req` and waits for the kernel's acknowledgement.
    async fn ack(
        &self,
        req: NetlinkMessage<RouteNetlinkMessage>,
        what: String,
    ) -> Result<(), NlError> {
        let mut handle = self.handle.clone();
        let mut resp = handle.request(req).map_err(kernel(what.clone()))?;
        while let Some(m) = futures_util::StreamExt::next(&mut resp).await {
            if let NetlinkPayload::Error(e) = m.payload {
                return Err(kernel(what)(rtnetlink::Error::NetlinkError(e)));
            }
        }
        Ok(())
    }

    /// Creates a GRE tap with key `key` towards `remote`.
    pub async fn gretap_create(
        &self,
        name: &str,
        key: u32,
        remote: Ipv4Addr,
    ) -> Result<(), NlError> {
        let b = LinkGre::new_gretap(name)
            .remote(remote)
            .iflags(GreIOFlags::Key)
            .oflags(GreIOFlags::Key)
            .ikey(key)
            .okey(key);
        self.add(format!("creating gretap {name}"), b.build()).await
    }

    /// Enslaves link `index` to `master` and brings it up.
    pub async fn set_master(&self, index: u32, master: u32) -> Result<(), NlError> {
        self.set(
            format!("attaching link {index}"),
            LinkUnspec::new_with_index(index)
                .controller(master)
                .up()
                .build(),
        )
        .await
    }

    /// Frees link `index` from its master.
    pub async fn set_nomaster(&self, index: u32) -> Result<(), NlError> {
        self.set(
            format!("detaching link {index}"),
            LinkUnspec::new_with_index(index).nocontroller().build(),
        )
        .await
    }

    /// Brings link `index` up.
    pub async fn set_up(&self, index: u32) -> Result<(), NlError> {
        self.set(
            format!("bringing link {index} up"),
            LinkUnspec::new_with_index(index).up().build(),
        )
        .await
    }

    /// Sets the MAC of link `index`.
    pub async fn set_mac(&self, index: u32, mac: [u8; 6]) -> Result<(), NlError> {
        self.set(
            format!("setting the MAC of link {index}"),
            LinkUnspec::new_with_index(index)
                .address(mac.to_vec())
                .build(),
        )
        .await
    }

    /// Moves link `index` into the network namespace of process `pid`, renamed `name`.
    pub async fn move_to(&self, index: u32, pid: u32, name: &str) -> Result<(), NlError> {
        self.set(
            format!("moving link {index} into the namespace of pid {pid}"),
            LinkUnspec::new_with_index(index)
                .setns_by_pid(pid)
                .name(name.to_string())
                .build(),
        )
        .await
    }

    /// Deletes link `index`.
    pub async fn delete(&self, index: u32) -> Result<(), NlError> {
        self.handle
            .link()
            .del(index)
            .execute()
            .await
            .map_err(kernel(format!("deleting link {index}")))
    }

    /// Deletes the link called `name` if it exists.
    pub async fn delete_name(&self, name: &str) -> Result<(), NlError> {
        match self.link(name).await? {
            Some(l) => match self.delete(l.index).await {
                Err(e) if e.errno() == Some(libc::ENODEV) => Ok(()),
                r => r,
            },
            None => Ok(()),
        }
    }

    /// Adds an address to link `index`.
    pub async fn addr_add(&self, index: u32, ip: IpAddr, prefix: u8) -> Result<(), NlError> {
        self.handle
            .address()
            .add(index, ip, prefix)
            .execute()
            .await
            .map_err(kernel(format!("adding {ip}/{prefix}")))
    }
}

/// The all-zeros forwarding entry of VXLAN device `index` towards `remote`.
fn vxlan_default_entry(index: u32, remote: IpAddr) -> NeighbourMessage {
    let mut msg = NeighbourMessage::default();
    msg.header.family = AddressFamily::Bridge;
    msg.header.ifindex = index;
    msg.header.state = NeighbourState::Permanent;
    msg.header.flags = NeighbourFlags::Own;
    msg.attributes
        .push(NeighbourAttribute::LinkLayerAddress(vec![0; 6]));
    msg.attributes
        .push(NeighbourAttribute::Destination(match remote {
            IpAddr::V4(a) => NeighbourAddress::Inet(a),
            IpAddr::V6(a) => NeighbourAddress::Inet6(a),
        }));
    msg
}

/// Whether a link kind is a bridge.
pub fn is_bridge(kind: &str) -> bool {
    kind == InfoKind::Bridge.to_string()
}
