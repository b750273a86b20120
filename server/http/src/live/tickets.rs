//! Console tickets: short-lived, single-use secrets bound to one VM (namespace and ID),
//! issued by `POST …/vms/{name}/console` and redeemed by the console WebSocket.
//!
//! A browser cannot put an `Authorization` header on a WebSocket, so the page first asks
//! for a ticket over an ordinary (authorised) request and then presents it in the URL.
//! Redeeming removes it whatever the outcome, so a ticket seen in a log is worthless.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a ticket stays valid.
pub const TICKET_TTL: Duration = Duration::from_secs(30);

/// At most this many tickets are outstanding; more requests are refused until some
/// expire, so nobody can grow the store without bound.
pub const MAX_TICKETS: usize = 4096;

/// What a ticket opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// Namespace of the VM.
    pub namespace: String,
    /// ID of the VM.
    pub id: u64,
    /// Name of the VM when the ticket was issued.
    pub name: String,
    /// The VM's console on a mesh peer; `None` when the VM runs on this host.
    pub peer: Option<ferromega_domain::mesh::console::PeerConsole>,
}

/// Why a ticket was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// Never issued, or already used.
    #[error("unknown or already used console ticket")]
    Unknown,
    /// Issued, but too long ago.
    #[error("expired console ticket")]
    Expired,
    /// Issued for another VM than the one asked for.
    #[error("console ticket is for another vm")]
    WrongVm,
    /// Too many outstanding tickets.
    #[error("too many console tickets outstanding, try again later")]
    Full,
}

struct Entry {
    binding: Binding,
    expires: Instant,
}

/// The outstanding tickets of one server.
pub struct Tickets {
    ttl: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

impl Tickets {
    /// An empty store whose tickets live `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Tickets {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// How long tickets of this store live.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new ticket for `binding`, valid from `now` for the store's TTL.
    pub fn issue(&self, binding: Binding, now: Instant) -> Result<String, TicketError> {
        let mut entries = self.lock();
        entries.retain(|_, e| e.expires > now);
        if entries.len() >= MAX_TICKETS {
            return Err(TicketError::Full);
        }
        // Two v4 UUIDs: 244 random bits from the OS generator.
        let ticket = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        entries.insert(
            ticket.clone(),
            Entry {
                binding,
                expires: now + self.ttl,
            },
        );
        Ok(ticket)
    }

    /// Uses up `ticket`: its binding if it was valid at `now` and, when `want` names a
    /// VM (namespace and name or ID), issued for that VM.
    pub fn redeem(
        &self,
        ticket: &str,
        want: Option<(&str, &str)>,
        now: Instant,
    ) -> Result<Binding, TicketError> {
        let entry = self.lock().remove(ticket).ok_or(TicketError::Unknown)?;
        if entry.expires <= now {
            return Err(TicketError::Expired);
        }
        if let Some((ns, vm)) = want {
            let b = &entry.binding;
            if b.namespace != ns || (b.name != vm && b.id.to_string() != vm) {
                return Err(TicketError::WrongVm);
            }
        }
        Ok(entry.binding)
    }

    /// How many tickets are outstanding (expired ones included until the next issue).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no ticket is outstanding.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    fn vm0() -> Binding {
        Binding {
            namespace: "minimega".into(),
            id: 7,
            name: "vm0".into(),
            peer: None,
        }
    }

    #[test]
    fn a_ticket_opens_its_vm_once() {
        let t = Tickets::new(TICKET_TTL);
        let now = Instant::now();
        let ticket = t.issue(vm0(), now).unwrap();
        assert_eq!(ticket.len(), 64);
        assert_eq!(t.redeem(&ticket, Some(("minimega", "vm0")), now), Ok(vm0()));
        assert_eq!(
            t.redeem(&ticket, Some(("minimega", "vm0")), now),
            Err(TicketError::Unknown)
        );
    }

    #[test]
    fn a_ticket_may_name_its_vm_by_id_or_not_at_all() {
        let t = Tickets::new(TICKET_TTL);
        let now = Instant::now();
        let a = t.issue(vm0(), now).unwrap();
        let b = t.issue(vm0(), now).unwrap();
        assert_ne!(a, b);
        assert_eq!(t.redeem(&a, Some(("minimega", "7")), now), Ok(vm0()));
        assert_eq!(t.redeem(&b, None, now), Ok(vm0()));
    }

    #[test]
    fn an_expired_ticket_is_refused() {
        let t = Tickets::new(TICKET_TTL);
        let now = Instant::now();
        let ticket = t.issue(vm0(), now).unwrap();
        let later = now + TICKET_TTL + Duration::from_millis(1);
        assert_eq!(t.redeem(&ticket, None, later), Err(TicketError::Expired));
        assert_eq!(t.redeem(&ticket, None, now), Err(TicketError::Unknown));
    }

    #[test]
    fn a_ticket_for_another_vm_is_refused_and_used_up() {
        let t = Tickets::new(TICKET_TTL);
        let now = Instant::now();
        let ticket = t.issue(vm0(), now).unwrap();
        assert_eq!(
            t.redeem(&ticket, Some(("minimega", "vm1")), now),
            Err(TicketError::WrongVm)
        );
        assert_eq!(
            t.redeem(&ticket, Some(("other", "vm0")), now),
            Err(TicketError::Unknown)
        );
    }

    #[test]
    fn an_unknown_ticket_is_refused() {
        let t = Tickets::new(TICKET_TTL);
        assert_eq!(
            t.redeem("nope", None, Instant::now()),
            Err(TicketError::Unknown)
        );
    }

    #[test]
    fn the_store_is_bounded_and_expired_tickets_make_room() {
        let t = Tickets::new(Duration::from_secs(1));
        let now = Instant::now();
        for _ in 0..MAX_TICKETS {
            t.issue(vm0(), now).unwrap();
        }
        assert_eq!(t.issue(vm0(), now), Err(TicketError::Full));
        let later = now + Duration::from_secs(2);
        assert!(t.issue(vm0(), later).is_ok());
        assert_eq!(t.len(), 1);
    }
}
