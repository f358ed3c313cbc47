//! X-Road wire formats for Musubi: identifiers, SOAP messages and faults,
//! MIME multipart, the transport message between security servers and its
//! XAdES signature.
//!
//! This crate is pure: it takes bytes and returns values or typed errors, and
//! never touches sockets, files, clocks or databases (time comes in as an
//! argument). That keeps every format testable with the X-Road conformance
//! vectors and fuzzable. Cryptography is ring's; canonical XML for signature
//! verification is `xml-sec`'s C14N, the only part of that crate used.
//!
//! Fault codes use X-Road 7.8's snake_case form throughout (see [`fault`]).

#![warn(missing_docs)]

pub mod asic;
pub mod der;
pub mod fault;
pub mod globalconf;
pub mod hashchain;
pub mod identifiers;
pub mod management;
pub mod mime;
pub mod package;
pub mod sharedparams;
pub mod soap;
pub mod transport;
pub mod xades;

pub use fault::{Code, Fault};
pub use identifiers::{ClientId, GlobalGroupId, IdError, LocalGroupId, SecurityServerId, ServiceId};
