//! offhook's signaling process: a SIP server that real SIP peers can use, built on
//! the project's SIP stack ([`offhook_sip`]): the registrar and the stateful proxy
//! decide with the directory (click-to-call policy, accounts, lines, CDRs), and
//! the relays' health is checked. See DESIGN.md, "Processes".

pub mod config;
pub mod health;
pub mod node;
pub mod server;
